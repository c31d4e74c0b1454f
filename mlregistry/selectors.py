"""Registry reads."""

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from django.db.models import Q, QuerySet

from core.errors import ApplicationError, ModelNotFoundError, VersionNotFoundError
from mlregistry import artifacts, transitions
from mlregistry.models import (
    MLModel,
    MLModelVersion,
    ModelTransition,
    RegistryGeneration,
    Status,
)


def model_get(*, name: str) -> MLModel:
    try:
        return MLModel.objects.get(name=name)
    except MLModel.DoesNotExist:
        raise ModelNotFoundError(f"no model named {name!r}", details={"model": name}) from None


def model_summary(*, model: MLModel) -> dict:
    production = model_production_version(model=model)
    return {"name": model.name, "task": model.task, "description": model.description,
            "client_id": model.client_id,
            "production_version": production.version if production else None}


def model_detail(*, model: MLModel, client_id: str = "") -> dict:
    """Schema, production version and live tests of a model, for the API; with `client_id`
    (a client-bound API key) only that client's own model is listed among client_models."""
    client_models = model.client_models.order_by("name")
    if client_id:
        client_models = client_models.filter(client_id=client_id)
    live = list(model.versions.filter(status__in=[Status.PRODUCTION, Status.STAGING])
                .exclude(status=Status.STAGING, traffic_percentage=0, is_shadow=False))
    production = next((v for v in live if v.status == Status.PRODUCTION), None)
    return {
        **model_summary(model=model),
        "feature_schema": production.feature_schema if production else model.feature_schema,
        "production": None if production is None else {
            "version": production.version, "status": production.status,
            "model_sha256": production.model_sha256,
            "traffic_percentage": production.traffic_percentage,
            "is_shadow": False, "created_at": production.created_at,
            "deployed_at": production.deployed_at, "metrics": production.metrics,
        },
        "live_tests": [{"version": v.version, "kind": "shadow" if v.is_shadow else "challenger",
                        "traffic_percentage": v.traffic_percentage}
                       for v in live if v.status == Status.STAGING],
        "client_models": list(client_models.values_list("name", flat=True)),
    }


def model_exists(*, name: str) -> bool:
    return MLModel.objects.filter(name=name).exists()


def model_version_get(*, name: str, version: str) -> MLModelVersion:
    model = model_get(name=name)
    try:
        return MLModelVersion.objects.select_related("model", "created_by", "approved_by").get(
            model=model, version=version
        )
    except MLModelVersion.DoesNotExist:
        raise VersionNotFoundError(
            f"model {name} has no version {version!r}", details={"model": name, "version": version}
        ) from None


def model_versions_list(*, name: str) -> QuerySet[MLModelVersion]:
    model = model_get(name=name)
    return MLModelVersion.objects.filter(model=model).select_related(
        "model", "created_by", "approved_by"
    ).order_by("-created_at", "-pk")


@dataclass(frozen=True)
class LiveVersion:
    """What serving needs of a live version (champion, challenger or shadow)."""

    version_id: int
    model_name: str
    global_model_name: str  # the model a per-client model specialises ("" for global ones)
    client_id: str
    task: str
    version: str
    status: str
    traffic_percentage: int
    is_shadow: bool
    model_sha256: str
    artifact_manifest: dict
    feature_schema: dict
    recipe: str
    # A named A/B test or canary ("" otherwise), and a canary's promotion time.
    experiment: str = ""
    canary_until: datetime | None = None


def live_versions_all() -> list[LiveVersion]:
    """Every champion, challenger and shadow of every model, in one query."""
    rows = (
        MLModelVersion.objects.filter(
            Q(status=Status.PRODUCTION)
            | Q(status=Status.STAGING, traffic_percentage__gt=0)
            | Q(status=Status.STAGING, is_shadow=True)
        )
        .select_related("model", "model__global_model")
        .order_by("model__name", "pk")
    )
    return [
        LiveVersion(
            version_id=row.pk, model_name=row.model.name,
            global_model_name=row.model.global_model.name if row.model.global_model else "",
            client_id=row.model.client_id, task=row.model.task, version=row.version,
            status=row.status, traffic_percentage=row.traffic_percentage,
            is_shadow=row.is_shadow, model_sha256=row.model_sha256,
            artifact_manifest=row.artifact_manifest, feature_schema=row.feature_schema,
            recipe=(row.hyperparameters or {}).get("recipe", ""),
            experiment=row.experiment, canary_until=row.canary_until,
        )
        for row in rows
    ]


def registry_generation() -> int:
    """A number that changes whenever any version changes state or traffic."""
    return RegistryGeneration.objects.filter(pk=1).values_list("generation", flat=True).first() or 0


def failed_gates(version: MLModelVersion) -> list[str]:
    """Names of the version's gates that did not pass (validation, fairness)."""
    return sorted(name for name, gate in (version.gate_results or {}).items()
                  if not gate.get("passed", False))


def model_production_version(*, model: MLModel) -> MLModelVersion | None:
    return MLModelVersion.objects.filter(model=model, status=Status.PRODUCTION).first()


def model_production_at(*, name: str, at: datetime) -> MLModelVersion | None:
    """The version that answered for the model at instant `at`, in one query.

    The newest audit row at or before `at` that entered or left production decides: if it
    entered production, its version was the champion; if it left, there was none. A deploy
    writes the old champion's exit before the new one's entry.
    """
    model = model_get(name=name)
    row = (
        ModelTransition.objects.filter(model=model, created_at__lte=at)
        .filter(Q(to_status=Status.PRODUCTION) | Q(from_status=Status.PRODUCTION))
        .select_related("version").order_by("-sequence").first()
    )
    if row is None or row.to_status != Status.PRODUCTION:
        return None
    return row.version


@dataclass(frozen=True)
class AuditResult:
    model: str
    rows: int
    broken_row_id: int | None = None
    broken_sequence: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


# The only rows at which a version's artifact (its model_sha256) may change: a reviewer
# trusting types (a new manifest over the same files) and a pickle converted to skops.
TYPES_TRUSTED_REASON = "types_trusted"
ARTIFACT_MIGRATED_REASON = "artifact_migrated"
ARTIFACT_CHANGE_REASONS = (TYPES_TRUSTED_REASON, ARTIFACT_MIGRATED_REASON)


def _binding_problem(row: ModelTransition, bindings: dict[int, dict],
                     last_sha_of_version: dict[int, str]) -> str:
    """What of the version differs from what its sealed row binds, or "". `bindings` keeps
    each version's binding for the walk: hashing its schema and gates once is enough. The
    artifact is checked against the version's previous row (it may change only at an
    ARTIFACT_CHANGE_REASONS row); the last row's against the version (`_artifact_problem`)."""
    if row.version_id is None:  # a row about the model itself binds no version
        return ""
    if row.version_id not in bindings:
        bindings[row.version_id] = transitions.version_binding(row.version)
    bound = bindings[row.version_id]
    changed = [name for name in ("dataset_sha256", "schema_sha256", "gates_sha256")
               if getattr(row, name) != bound[name]]
    previous_sha = last_sha_of_version.get(row.version_id, row.model_sha256)
    if row.model_sha256 != previous_sha and row.reason not in ARTIFACT_CHANGE_REASONS:
        changed.insert(0, "model_sha256")
    if not changed:
        return ""
    return (f"version {row.version.version}'s {', '.join(changed)} differs from what this row "
            "sealed (the version was changed outside the registry)")


def _artifact_problem(version: MLModelVersion, last: ModelTransition) -> str:
    if last.model_sha256 == version.model_sha256:
        return ""
    return (f"version {version.version}'s model_sha256 differs from what its last audit row "
            "sealed (the artifact was changed outside the registry)")


def audit_verify_model(*, model: MLModel) -> AuditResult:
    """Walk a model's chain; report the first row whose hash or link does not hold."""
    expected_previous, count, last_row_of_version, last_row = "", 0, {}, None
    bindings: dict[int, dict] = {}
    last_sha_of_version: dict[int, str] = {}
    for count, row in enumerate(
        ModelTransition.objects.filter(model=model).select_related("version").order_by("sequence")
        .iterator(chunk_size=1000),
        start=1,
    ):
        problem = ""
        if row.sequence != count:
            problem = f"sequence {row.sequence} where {count} was expected (a row is missing)"
        elif row.previous_sha256 != expected_previous:
            problem = "previous_sha256 does not match the previous row"
        elif not row.seal_valid:
            problem = ("content does not match its seal (the row was edited, or was not sealed "
                       f"with audit key {row.key_id or '(none)'})")
        else:
            problem = _binding_problem(row, bindings, last_sha_of_version)
        if problem:
            return AuditResult(model=model.name, rows=count, broken_row_id=row.pk,
                               broken_sequence=row.sequence, problem=problem)
        expected_previous = row.row_sha256
        last_row_of_version[row.version_id] = row
        last_sha_of_version[row.version_id] = row.model_sha256
        last_row = row
    if count and last_row.identity_sha256 != transitions.model_identity_sha256(model):
        return AuditResult(
            model=model.name, rows=count, broken_row_id=last_row.pk,
            broken_sequence=last_row.sequence,
            problem="the model's name, task, client, global model or description differs from "
                    "what its last audit row sealed (the model was changed outside the "
                    "registry)")
    # A chain cut short at its end still links up; the versions' own states give it away.
    for version in MLModelVersion.objects.filter(model=model).order_by("pk"):
        last = last_row_of_version.get(version.pk)
        if last is not None and (problem := _artifact_problem(version, last)):
            return AuditResult(model=model.name, rows=count, broken_row_id=last.pk,
                               broken_sequence=last.sequence, problem=problem)
        if last is None or last.to_status != version.status:
            return AuditResult(
                model=model.name, rows=count, broken_row_id=last.pk if last else None,
                broken_sequence=last.sequence if last else None,
                problem=f"version {version.version} is {version.status} but its last audit row "
                        f"says {last.to_status if last else 'nothing'} (rows missing, or the "
                        "version was changed outside the registry)",
            )
    return AuditResult(model=model.name, rows=count)


def models_for(name: str | None) -> list[MLModel]:
    return [model_get(name=name)] if name else list(MLModel.objects.order_by("name"))


@dataclass(frozen=True)
class ArtifactCheck:
    version: MLModelVersion
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


APPROVAL_REASONS = ("approved", "auto_approved")


def sealed_artifact_check(*, version_id: int, model_sha256: str,
                          approved: bool = False) -> None:
    """Raise ArtifactIntegrityError unless every audit row of the version is sealed by the
    audit key and the rows bind this very artifact (`model_sha256` hashes the manifest, which
    hashes every file): the last row binds it, and it differs from what earlier rows bound
    only through sealed ARTIFACT_CHANGE_REASONS rows. With `approved`, one row must be its
    approval. Serving asks this before loading anything: only what was approved answers."""
    rows = list(ModelTransition.objects.filter(version_id=version_id)
                .select_related("version__model").order_by("sequence"))
    bound = rows[0].model_sha256 if rows else model_sha256
    for row in rows:
        label = f"{row.version}: audit row #{row.sequence} ({row.reason})"
        if not row.seal_valid:
            raise artifacts.ArtifactIntegrityError(
                f"{label} is not sealed by the audit key", details={"sequence": row.sequence})
        if row.model_sha256 != bound and row.reason not in ARTIFACT_CHANGE_REASONS:
            raise artifacts.ArtifactIntegrityError(
                f"{label} sealed artifact {row.model_sha256[:12]} where the row before it "
                f"sealed {bound[:12]}", details={"sequence": row.sequence})
        bound = row.model_sha256
    if bound != model_sha256:
        last = rows[-1]
        raise artifacts.ArtifactIntegrityError(
            f"{last.version}: audit row #{last.sequence} ({last.reason}) sealed artifact "
            f"{bound[:12]}, not {model_sha256[:12]}",
            details={"sequence": last.sequence, "sealed": bound, "actual": model_sha256})
    if approved and not any(row.reason in APPROVAL_REASONS for row in rows):
        raise artifacts.ArtifactIntegrityError(
            f"version {version_id} has no sealed approval", details={"version_id": version_id})


def artifacts_verify_model(*, model: MLModel) -> list[ArtifactCheck]:
    """Check every stored version's manifest and files byte for byte, and that its audit rows
    sealed this artifact (unpickles nothing)."""
    checks = []
    versions = MLModelVersion.objects.filter(model=model, artifacts_deleted_at__isnull=True)
    for version in versions.select_related("model").order_by("created_at", "pk"):
        try:
            sealed_artifact_check(version_id=version.pk, model_sha256=version.model_sha256)
            artifacts.bundle_verify(manifest=version.artifact_manifest,
                                    model_sha256=version.model_sha256)
        except artifacts.ArtifactIntegrityError as exc:
            checks.append(ArtifactCheck(version=version, error=exc.message))
        else:
            checks.append(ArtifactCheck(version=version))
    return checks


LIVE_TEST_STARTS = ("ab_test_started", "canary_started")


def ab_test_started_at(*, version: MLModelVersion) -> datetime | None:
    """When the version's latest A/B test or canary started (its last `ab_test_started` or
    `canary_started` audit row)."""
    return (ModelTransition.objects.filter(version=version, reason__in=LIVE_TEST_STARTS)
            .order_by("-sequence").values_list("created_at", flat=True).first())


# --- the admin index's work lists ---------------------------------------------------------


def versions_awaiting_review() -> list[MLModelVersion]:
    """Versions in testing, the longest waiting first."""
    return list(MLModelVersion.objects.filter(status=Status.TESTING)
                .select_related("model", "created_by").order_by("created_at", "pk"))


def versions_in_live_test() -> list[MLModelVersion]:
    """Staging versions taking part in an A/B test (a share of traffic) or a shadow test,
    by model."""
    return list(MLModelVersion.objects.filter(status=Status.STAGING)
                .filter(Q(traffic_percentage__gt=0) | Q(is_shadow=True))
                .select_related("model").order_by("model__name", "version"))


# --- evidence for the version admin and the model card ------------------------------------


def version_production_counterpart(*, version: MLModelVersion) -> MLModelVersion | None:
    """The production version a candidate is compared with (None: none, or it is itself)."""
    return (MLModelVersion.objects.filter(model_id=version.model_id, status=Status.PRODUCTION)
            .exclude(pk=version.pk).first())


def version_transitions(*, version: MLModelVersion) -> list[ModelTransition]:
    """The version's audit rows, oldest first, with their actors."""
    return list(ModelTransition.objects.filter(version=version).select_related("actor")
                .order_by("sequence"))


@dataclass(frozen=True)
class VersionEvidence:
    """What the version's change view shows beside its model card."""

    transitions: list[ModelTransition]
    audit: AuditResult
    broken_version: str  # version string of the first broken row ("" if none or unknown)
    artifacts: list[dict]


def model_version_evidence(*, version: MLModelVersion) -> VersionEvidence:
    """The version's audit rows, its model's chain status and its manifest's artifacts.

    Reads only the registry: nothing is loaded from artifact storage.
    """
    audit_result = audit_verify_model(model=version.model)
    broken_version = ""
    if audit_result.broken_row_id is not None:
        broken_version = (ModelTransition.objects.filter(pk=audit_result.broken_row_id)
                          .values_list("version__version", flat=True).first() or "")
    manifest = version.artifact_manifest or {}
    return VersionEvidence(
        transitions=version_transitions(version=version), audit=audit_result,
        broken_version=broken_version,
        artifacts=[{"name": entry.get("name", ""), "format": entry.get("format", ""),
                    "path": entry.get("path", ""), "sha256": entry.get("sha256", ""),
                    "size": entry.get("size")} for entry in manifest.get("artifacts", [])],
    )


@dataclass(frozen=True)
class InferencePath:
    """How serving answers for a version (docs/api.md#compiled-inference): `path`
    "compiled" or "pipeline" ("" when its files cannot be loaded here), and why not
    compiled."""

    path: str
    why: str


@lru_cache(maxsize=32)
def _inference_path(version_id: int, model_sha256: str, manifest_json: str, task: str,
                    schema_json: str) -> InferencePath:
    from core.ml import compiled  # noqa: PLC0415 - imports scikit-learn: only for this page

    try:
        loaded = artifacts.bundle_load(manifest=json.loads(manifest_json),
                                       model_sha256=model_sha256)
    except ApplicationError as exc:
        return InferencePath(path="", why=f"not loaded: {exc.message}")
    compilation = compiled.version_compile(
        estimator=loaded.estimator, task=task, schema=json.loads(schema_json),
        reference_profile=loaded.objects.get("reference_profile", {}))
    return InferencePath(path=compilation.path, why=compilation.why)


def model_version_inference_path(*, version: MLModelVersion) -> InferencePath:
    """Compile the version as a serving process does at load, for its evidence page. Loads
    its files only when serving would (approved, sealed, verified); remembered per process
    and model file."""
    try:
        sealed_artifact_check(version_id=version.pk, model_sha256=version.model_sha256,
                              approved=True)
    except ApplicationError as exc:
        return InferencePath(path="", why=f"not loaded: {exc.message}")
    return _inference_path(version.pk, version.model_sha256,
                           json.dumps(version.artifact_manifest or {}, sort_keys=True),
                           version.model.task,
                           json.dumps(version.feature_schema or {}, sort_keys=True))
