"""Writes that bring versions and their artifacts in and out of storage.

Registration stores a bundle and creates its version (training -> testing) under the
model's row lock; artifact clean-up deletes the files no kept version needs. The review
and deployment that follow live in services.py.

Converting a pickle to skops (`artifact_migrate`) compares the two files' answers with
numpy, pandas and the explainers (scikit-learn); they are imported there, not with this
module, which every process imports at start-up.
"""

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core.errors import ConflictError, ValidationError
from core.ml import kinds
from core.ml.kinds import task_kind
from core.ml.schema import next_version
from core.permissions import require_permission
from mlregistry import artifacts, preconditions, selectors, transitions
from mlregistry.models import (
    MODEL_NAME_PATTERN,
    MODEL_NAME_RULE,
    MLModel,
    MLModelVersion,
    Status,
)
from mlregistry.preconditions import REGISTER_PERMISSION
from mlregistry.services import system_user_get

if TYPE_CHECKING:
    import numpy


def model_name_check(name: str) -> None:
    """Refuse a name outside MODEL_NAME_PATTERN: names reach URLs, metric labels, alert
    subjects and file names."""
    if not re.fullmatch(MODEL_NAME_PATTERN, name or ""):
        raise ValidationError(f"invalid model name {name!r}: a model name is {MODEL_NAME_RULE}",
                              details={"field": "name"})


def model_version_bundle(*, estimator: Any, reference_profile: dict,
                         estimation_objects: dict[str, Any] | None = None
                         ) -> artifacts.PreparedBundle:
    """A version's bundle, serialized and not yet stored: a caller that must record the
    files before they are written (to remove them if it dies before the commit) prepares
    it and passes it to `model_version_register`. `estimation_objects` (a calibrator, error
    models: core.ml.estimation) are stored beside the estimator, hashed and in the
    manifest, for performance estimation only; serving never uses them."""
    return artifacts.bundle_prepare(objects={"estimator": estimator, **(estimation_objects or {})},
                                    documents={"reference_profile": reference_profile})


def model_version_register(
    *, name: str, task: str, user: AbstractBaseUser, estimator: Any, feature_schema: dict,
    training_dataset_sha256: str, training_samples: int, training_duration_seconds: float,
    hyperparameters: dict, metrics: dict, reference_profile: dict,
    fairness_report: dict | None = None, gate_results: dict | None = None,
    training_report: dict | None = None, description: str = "", client_id: str = "",
    global_model: MLModel | None = None, notes: str = "", global_importance: dict | None = None,
    bundle: artifacts.PreparedBundle | None = None,
    estimation_objects: dict[str, Any] | None = None,
) -> MLModelVersion:
    """Store the bundle and create the version (training -> testing) in one transaction.

    `bundle` is the one `model_version_bundle` prepared from `estimator` (and
    `estimation_objects`) when the caller needed its paths first; otherwise it is prepared
    here.

    The files are written while the model's row is locked, so artifact clean-up (which
    locks every model) never deletes a shared content-addressed file in between. Files of
    a transaction that fails stay unreferenced until clean-up removes them.
    """
    require_permission(user, REGISTER_PERMISSION, "register model versions")
    task_kind(task)
    model_name_check(name)
    bundle = bundle or model_version_bundle(estimator=estimator,
                                            reference_profile=reference_profile,
                                            estimation_objects=estimation_objects)
    with transaction.atomic():
        model, _ = MLModel.objects.get_or_create(
            name=name, defaults={"task": task, "description": description, "client_id": client_id,
                                 "global_model": global_model}
        )
        model = transitions.lock_model(model.pk)
        if model.task != task:
            raise ValidationError(f"model {name} is a {model.task} model, not {task}")
        artifacts.bundle_save(bundle)
        existing = list(model.versions.values("version", "feature_schema"))
        version = MLModelVersion.objects.create(
            model=model, version=next_version(existing, feature_schema), created_by=user,
            feature_schema=feature_schema, artifact_manifest=bundle.manifest,
            model_sha256=bundle.model_sha256,
            training_dataset_sha256=training_dataset_sha256, training_samples=training_samples,
            training_duration_seconds=training_duration_seconds,
            hyperparameters=hyperparameters, metrics=metrics, reference_profile=reference_profile,
            fairness_report=fairness_report or {}, gate_results=gate_results or {},
            training_report=training_report or {}, global_importance=global_importance,
            status=Status.TRAINING,
        )
        model.feature_schema = feature_schema
        model.save(update_fields=["feature_schema"])
        now = timezone.now()
        transitions.transition_record(
            version=version, actor=user, from_status="", to_status=Status.TRAINING,
            reason="registered", notes=notes, now=now,
        )
        transitions.set_state(version, actor=user, reason="validated",
                              notes="validation metrics recorded", now=now, status=Status.TESTING)
    return version


# --- artifact clean-up --------------------------------------------------------------------


@dataclass(frozen=True)
class CleanupPlan:
    paths: set[str]  # artifact files deleted (or, in a dry run, to be deleted)
    versions: list[str]  # "name version" of each version whose files go
    dry_run: bool


CLEANUP_REASON = "artifacts_cleaned"


def artifact_cleanup(*, dry_run: bool = False,
                     user: AbstractBaseUser | None = None) -> CleanupPlan:
    """Delete artifact files that no kept version needs (docs/registry.md#retention).

    Kept: every version that is not archived, and the ARTIFACT_KEEP_PRIOR_PRODUCTION most
    recent prior production versions of each model, so a rollback always has something to
    restore. Each version whose files go gets `artifacts_deleted_at` and one audit row
    (`artifacts_cleaned`, by `user`, or the system account on the schedule); unreferenced
    files older than ARTIFACT_ORPHAN_GRACE_SECONDS go too. A dry run changes nothing.
    """
    if user is not None:
        preconditions.cleanup_check(user=user)
    with transaction.atomic():
        # Every model's lock, in a fixed order: no registration writes or reuses a file and
        # no rollback picks a target while files are chosen and deleted.
        list(MLModel.objects.select_for_update().order_by("pk").values_list("pk", flat=True))
        to_delete, retired = _artifact_cleanup_plan()
        plan = CleanupPlan(paths=to_delete, dry_run=dry_run,
                           versions=[f"{version.model.name} {version.version}"
                                     for version in retired])
        if dry_run:
            return plan
        now = timezone.now()
        actor = user or system_user_get()
        for version in retired:
            files = len(artifacts.manifest_paths(version.artifact_manifest) & to_delete)
            transitions.transition_record(
                version=version, actor=actor, from_status=version.status,
                to_status=version.status, reason=CLEANUP_REASON, now=now,
                notes=f"artifacts removed by clean-up ({files} file(s) no kept version shares)")
        MLModelVersion.objects.filter(pk__in=[version.pk for version in retired]).update(
            artifacts_deleted_at=now)
        artifacts.artifact_files_delete(paths=to_delete)
    return plan


def _artifact_cleanup_plan() -> tuple[set[str], list[MLModelVersion]]:
    keep_prior = settings.ARTIFACT_KEEP_PRIOR_PRODUCTION
    kept_paths, retired_paths, retired = set(), set(), []
    versions = MLModelVersion.objects.filter(artifacts_deleted_at__isnull=True).select_related(
        "model").order_by("model_id", "-deprecated_at", "-pk")
    prior_seen: dict[int, int] = {}
    for version in versions:
        paths = artifacts.manifest_paths(version.artifact_manifest)
        keep = version.status != Status.ARCHIVED
        if version.status == Status.ARCHIVED and version.deployed_at is not None:
            prior_seen[version.model_id] = prior_seen.get(version.model_id, 0) + 1
            keep = prior_seen[version.model_id] <= keep_prior
        if keep:
            kept_paths |= paths
        else:
            retired_paths |= paths
            retired.append(version)
    # Files nothing references are orphans of failed registrations; the grace period spares
    # those of a first registration of a new model, whose row no lock covered yet.
    orphans = artifacts.artifact_files_older_than(
        seconds=settings.ARTIFACT_ORPHAN_GRACE_SECONDS
    ) - kept_paths - retired_paths
    return (retired_paths - kept_paths) | orphans, retired


# --- converting pickles to skops ----------------------------------------------------------

MIGRATION_SAMPLE_ROWS = 1000


class ArtifactMigrationError(ConflictError):
    """A converted model file does not answer exactly as the pickle it replaces."""

    code = "artifact_migration_failed"


@dataclass(frozen=True)
class ArtifactMigration:
    version: str  # "name version"
    rows_compared: int
    carried_types: list[str]  # types trusted because the pickle was approved as a whole


def _answers(*, task: str, estimator: Any, frame: Any) -> list["numpy.ndarray"]:
    """Everything a version answers for `frame`: predictions, then probabilities or
    anomaly scores."""
    import numpy  # noqa: PLC0415 - see the module docstring

    from core.ml import outputs  # noqa: PLC0415

    answers = [numpy.asarray(estimator.predict(frame))]
    if task in (kinds.BINARY, kinds.MULTICLASS):
        answers.append(numpy.asarray(estimator.predict_proba(frame)))
    if task == kinds.ANOMALY:
        answers.append(outputs.anomaly_scores(estimator=estimator, features=frame))
    return answers


def _identical(left: "numpy.ndarray", right: "numpy.ndarray") -> bool:
    import numpy  # noqa: PLC0415 - see the module docstring

    if left.dtype.kind == "f" and right.dtype.kind == "f":
        return numpy.array_equal(left, right, equal_nan=True)
    return numpy.array_equal(left, right)


def versions_holding_pickles(*, name: str | None = None) -> list[MLModelVersion]:
    """Versions whose stored artifacts include a pickle, oldest first."""
    versions = MLModelVersion.objects.filter(artifacts_deleted_at__isnull=True).select_related(
        "model").order_by("model__name", "pk")
    if name:
        versions = versions.filter(model__name=name)
    return [v for v in versions if artifacts.manifest_holds_pickles(v.artifact_manifest)]


def artifact_migrate(*, version: MLModelVersion, dry_run: bool = False) -> ArtifactMigration:
    """Convert a version's pickled estimator to a skops file (docs/registry.md#safe-model-files).

    The pickle is loaded only after its files and its sealed audit rows check out; the skops
    file is loaded back under the trust rules and must answer exactly as the pickle on
    MIGRATION_SAMPLE_ROWS rows drawn from the version's reference profile. Types outside the
    policy are trusted in the new manifest only if the version was approved (the pickle was
    approved as a whole); a candidate's wait for a reviewer. Then, under the model's lock,
    the manifest and model_sha256 change and one sealed `artifact_migrated` row (by the
    system account) records both hashes. The pickle's files stay until clean-up removes
    them. A dry run converts and compares, and writes nothing.
    """
    if not artifacts.manifest_holds_pickles(version.artifact_manifest):
        raise ValidationError(f"{version} holds no pickle to convert")
    selectors.sealed_artifact_check(version_id=version.pk, model_sha256=version.model_sha256)
    legacy = artifacts.bundle_load(manifest=version.artifact_manifest,
                                   model_sha256=version.model_sha256)
    formats = {entry["name"]: entry["format"] for entry in version.artifact_manifest["artifacts"]}
    approved = version.approved_at is not None
    bundle = artifacts.bundle_prepare(
        objects={name: value for name, value in legacy.objects.items() if formats[name] != "json"},
        documents={name: value for name, value in legacy.objects.items()
                   if formats[name] == "json"},
        trust_found_types=approved)
    carried = bundle.manifest["trusted_types"]
    # The comparison trusts the pickle's own types: it has just been unpickled anyway.
    converted = artifacts.bundle_objects(
        bundle, also_trusted=artifacts.types_needing_review(bundle.manifest))
    rows = _answers_compared(version=version, before=legacy.estimator,
                             after=converted["estimator"])
    result = ArtifactMigration(version=f"{version.model.name} {version.version}",
                               rows_compared=rows, carried_types=carried)
    if dry_run:
        return result
    with transaction.atomic():
        _, locked = transitions.lock_version(version)
        if locked.model_sha256 != version.model_sha256:
            raise ConflictError(f"{version} changed while it was being converted; run again")
        artifacts.bundle_save(bundle)
        previous = locked.model_sha256
        locked.artifact_manifest = bundle.manifest
        locked.model_sha256 = bundle.model_sha256
        locked.save(update_fields=["artifact_manifest", "model_sha256"])
        transitions.transition_record(
            version=locked, actor=system_user_get(), from_status=locked.status,
            to_status=locked.status, reason=selectors.ARTIFACT_MIGRATED_REASON,
            now=timezone.now(),
            notes=(f"pickle converted to skops; identical answers on {rows} rows drawn from "
                   f"its reference profile; model_sha256 {previous} -> {bundle.model_sha256}"
                   + (f"; types trusted with the approved pickle: {', '.join(carried)}"
                      if carried else "")))
    return result


def _answers_compared(*, version: MLModelVersion, before: Any, after: Any) -> int:
    from core.ml.explain import background_from_profile  # noqa: PLC0415 - see the module docstring

    frame = background_from_profile(schema=version.feature_schema,
                                    reference_profile=version.reference_profile,
                                    rows=MIGRATION_SAMPLE_ROWS)
    task = version.model.task
    for old, new in zip(_answers(task=task, estimator=before, frame=frame),
                        _answers(task=task, estimator=after, frame=frame), strict=True):
        if not _identical(old, new):
            raise ArtifactMigrationError(
                f"{version}: the skops file does not answer exactly as the pickle on "
                f"{len(frame)} rows drawn from its reference profile; nothing was changed")
    return len(frame)
