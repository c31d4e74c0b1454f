"""The registry's state machine: every write, each one atomic.

Every service locks the model's row first (SELECT ... FOR UPDATE), so all changes to one
model, its versions' traffic and its audit chain are serialised; the admin, the commands
and the Celery tasks all come through here.

    training -> testing (validated) -> staging (approved) -> production (deployed)
    staging -> testing (approval withdrawn); any -> archived; archived -> production by rollback
"""

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from mlregistry import artifacts, audit, selectors
from mlregistry.models import (
    MLModel,
    MLModelVersion,
    ModelTransition,
    RegistryGeneration,
    Status,
    Task,
)
from mlregistry.schema import next_version
from mlregistry.training import datasets, external, validation
from pulselytics.errors import (
    FourEyesError,
    GateFailedError,
    IllegalTransitionError,
    PermissionDeniedError,
    RollbackUnavailableError,
    TrafficLimitError,
    ValidationError,
)

APPROVE_PERMISSION = "mlregistry.approve_mlmodelversion"
DEPLOY_PERMISSION = "mlregistry.deploy_mlmodelversion"
REGISTER_PERMISSION = "mlregistry.add_mlmodelversion"


def require_permission(user: AbstractBaseUser, permission: str, action: str) -> None:
    if not (user.is_active and user.has_perm(permission)):
        raise PermissionDeniedError(
            f"{user.get_username()} may not {action} (needs {permission})",
            details={"permission": permission},
        )


def _require_text(value: str, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError(f"{what} must not be empty", details={"field": what})
    return value


def _lock_model(model_id: int) -> MLModel:
    return MLModel.objects.select_for_update().get(pk=model_id)


def _lock_version(version: MLModelVersion) -> tuple[MLModel, MLModelVersion]:
    """Lock the model row, then re-read the version inside the transaction."""
    model = _lock_model(version.model_id)
    return model, MLModelVersion.objects.select_for_update().get(pk=version.pk)


def _registry_generation_bump() -> None:
    """Serving processes notice every change through this counter (selectors)."""
    if not RegistryGeneration.objects.filter(pk=1).update(generation=F("generation") + 1):
        RegistryGeneration.objects.get_or_create(pk=1, defaults={"generation": 1})


def _transition_record(
    *, version: MLModelVersion, actor: AbstractBaseUser, from_status: str, to_status: str,
    reason: str, notes: str = "", traffic_before: int = 0, traffic_after: int = 0,
    now: datetime,
) -> ModelTransition:
    """Append one row to the model's hash chain. The caller holds the model's row lock."""
    previous = (
        ModelTransition.objects.filter(model_id=version.model_id)
        .order_by("-sequence").values("sequence", "row_sha256").first()
    )
    sequence = previous["sequence"] + 1 if previous else 1
    previous_sha256 = previous["row_sha256"] if previous else ""
    content = audit.transition_content(
        model_id=version.model_id, version_id=version.pk, version=version.version,
        sequence=sequence, actor_id=actor.pk, created_at=now, from_status=from_status,
        to_status=to_status, notes=notes, reason=reason, traffic_before=traffic_before,
        traffic_after=traffic_after, previous_sha256=previous_sha256,
    )
    _registry_generation_bump()
    return ModelTransition.objects.create(
        model_id=version.model_id, version=version, sequence=sequence, actor=actor,
        created_at=now, from_status=from_status, to_status=to_status, notes=notes,
        reason=reason, traffic_before=traffic_before, traffic_after=traffic_after,
        previous_sha256=previous_sha256, row_sha256=audit.content_sha256(content),
    )


def _set_state(
    version: MLModelVersion, *, actor: AbstractBaseUser, reason: str, notes: str, now: datetime,
    status: str | None = None, traffic: int | None = None, shadow: bool | None = None,
    **fields: Any,
) -> ModelTransition:
    """Change a locked version's status/traffic/shadow flag and record it."""
    from_status, traffic_before = version.status, version.traffic_percentage
    version.status = status or version.status
    version.traffic_percentage = traffic_before if traffic is None else traffic
    version.is_shadow = version.is_shadow if shadow is None else shadow
    for name, value in fields.items():
        setattr(version, name, value)
    version.save()
    return _transition_record(
        version=version, actor=actor, from_status=from_status, to_status=version.status,
        reason=reason, notes=notes, traffic_before=traffic_before,
        traffic_after=version.traffic_percentage, now=now,
    )


def _live_tests(model: MLModel, *, exclude_pk: int | None = None):
    tests = MLModelVersion.objects.select_for_update().filter(
        model=model, status=Status.STAGING
    ).exclude(traffic_percentage=0, is_shadow=False)
    return tests.exclude(pk=exclude_pk) if exclude_pk else tests


def _champion(model: MLModel) -> MLModelVersion | None:
    return MLModelVersion.objects.select_for_update().filter(
        model=model, status=Status.PRODUCTION
    ).first()


def _rebalance_champion(model: MLModel) -> None:
    """The champion carries whatever traffic the challengers leave (SPEC §3)."""
    champion = _champion(model)
    if champion is None:
        return
    challenger_total = sum(
        MLModelVersion.objects.filter(model=model, status=Status.STAGING)
        .values_list("traffic_percentage", flat=True)
    )
    if challenger_total > 100:
        raise TrafficLimitError(
            f"live traffic of {model.name} would be {challenger_total}% before the champion",
            details={"challenger_traffic": challenger_total},
        )
    champion.traffic_percentage = 100 - challenger_total
    champion.save(update_fields=["traffic_percentage"])


def _end_tests(model: MLModel, *, actor, reason: str, notes: str, now: datetime,
               exclude_pk: int | None = None) -> list[MLModelVersion]:
    ended = list(_live_tests(model, exclude_pk=exclude_pk))
    for test in ended:
        _set_state(test, actor=actor, reason=reason, notes=notes, now=now, traffic=0, shadow=False)
    return ended


def _make_champion(version: MLModelVersion, model: MLModel, *, actor, reason: str, notes: str,
                   now: datetime) -> MLModelVersion | None:
    """Archive the current champion (if any), end live tests, make `version` the champion."""
    _end_tests(model, actor=actor, reason="test_ended", notes=f"ended by {reason}", now=now,
               exclude_pk=version.pk)
    previous = _champion(model)
    if previous is not None and previous.pk != version.pk:
        _set_state(previous, actor=actor, reason=reason, notes=notes, now=now,
                   status=Status.ARCHIVED, traffic=0, deprecated_at=now)
    _set_state(version, actor=actor, reason=reason, notes=notes, now=now,
               status=Status.PRODUCTION, traffic=100, shadow=False, deployed_at=now,
               deprecated_at=None)
    return previous


# --- registration -------------------------------------------------------------------------


def _bundle(estimator: Any, reference_profile: dict) -> dict:
    return {"objects": {"estimator": estimator},
            "documents": {"reference_profile": reference_profile}}


def model_version_artifact_paths(*, estimator: Any, reference_profile: dict) -> set[str]:
    """The artifact files `model_version_register` will write for this bundle (writes
    nothing): a caller records them first to remove them if it dies before the commit."""
    return artifacts.bundle_paths(**_bundle(estimator, reference_profile))


def model_version_register(
    *, name: str, task: str, user: AbstractBaseUser, estimator: Any, feature_schema: dict,
    training_dataset_sha256: str, training_samples: int, training_duration_seconds: float,
    hyperparameters: dict, metrics: dict, reference_profile: dict,
    fairness_report: dict | None = None, gate_results: dict | None = None,
    training_report: dict | None = None, description: str = "", client_id: str = "",
    global_model: MLModel | None = None, notes: str = "",
) -> MLModelVersion:
    """Store the bundle and create the version (training -> testing) in one transaction.

    The files are written while the model's row is locked, so artifact clean-up (which
    locks every model) never deletes a shared content-addressed file in between. Files of
    a transaction that fails stay unreferenced until clean-up removes them.
    """
    require_permission(user, REGISTER_PERMISSION, "register model versions")
    if task not in Task.values:
        raise ValidationError(f"unknown task {task!r}; one of {', '.join(Task.values)}")
    with transaction.atomic():
        model, _ = MLModel.objects.get_or_create(
            name=name, defaults={"task": task, "description": description, "client_id": client_id,
                                 "global_model": global_model}
        )
        model = _lock_model(model.pk)
        if model.task != task:
            raise ValidationError(f"model {name} is a {model.task} model, not {task}")
        manifest, model_sha256 = artifacts.bundle_save(**_bundle(estimator, reference_profile))
        existing = list(model.versions.values("version", "feature_schema"))
        version = MLModelVersion.objects.create(
            model=model, version=next_version(existing, feature_schema), created_by=user,
            feature_schema=feature_schema, artifact_manifest=manifest, model_sha256=model_sha256,
            training_dataset_sha256=training_dataset_sha256, training_samples=training_samples,
            training_duration_seconds=training_duration_seconds,
            hyperparameters=hyperparameters, metrics=metrics, reference_profile=reference_profile,
            fairness_report=fairness_report or {}, gate_results=gate_results or {},
            training_report=training_report or {},
            status=Status.TRAINING,
        )
        model.feature_schema = feature_schema
        model.save(update_fields=["feature_schema"])
        now = timezone.now()
        _transition_record(version=version, actor=user, from_status="", to_status=Status.TRAINING,
                           reason="registered", notes=notes, now=now)
        _set_state(version, actor=user, reason="validated", notes="validation metrics recorded",
                   now=now, status=Status.TESTING)
    return version


def model_version_register_external(
    *, name: str, task: str, user: AbstractBaseUser, artifact_path: str, data_path: str,
    target: str, protected: list[str] | None = None, client_id: str = "", description: str = "",
) -> MLModelVersion:
    """Register an estimator or Pipeline trained outside the project (saved with joblib).

    Schema, dataset hash, reference profile and validation metrics come from the given
    data; the validation gate compares it with the current production version, the
    fairness gate audits the protected columns. Lands in `testing`.
    """
    require_permission(user, REGISTER_PERMISSION, "register model versions")
    dataset = datasets.dataset_load(data_path)
    try:
        # The operator's own file: loading it is the point of the command.
        estimator = joblib.load(artifact_path)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the same user error
        raise ValidationError(f"cannot load {artifact_path} with joblib: {exc}") from exc
    started = time.monotonic()
    evaluated = external.external_model_evaluate(
        estimator=estimator, frame=dataset.frame, target=target, task=task,
        protected=protected or [],
    )
    production = MLModelVersion.objects.filter(model__name=name, status=Status.PRODUCTION).first()
    gates = validation.gates_evaluate(
        task=task, metrics=evaluated.metrics,
        production_metrics=production.metrics if production else None,
    )
    gates.update(validation.fairness_gate(evaluated.fairness_report))
    return model_version_register(
        name=name, task=task, user=user, estimator=estimator, feature_schema=evaluated.schema,
        training_dataset_sha256=dataset.sha256, training_samples=evaluated.samples,
        training_duration_seconds=round(time.monotonic() - started, 3),
        hyperparameters={"external": True, "estimator": type(estimator).__name__,
                         "params": external.estimator_params(estimator)},
        metrics=evaluated.metrics, reference_profile=evaluated.reference_profile,
        fairness_report=evaluated.fairness_report,
        gate_results=gates, description=description, client_id=client_id,
        notes=f"registered from {Path(artifact_path).name} and {Path(data_path).name}",
    )


# --- review -------------------------------------------------------------------------------


def model_version_approve(
    *, version: MLModelVersion, user: AbstractBaseUser, notes: str,
    override_justification: str = "",
) -> MLModelVersion:
    """testing -> staging, by a reviewer who is not the creator."""
    require_permission(user, APPROVE_PERMISSION, "approve model versions")
    notes = _require_text(notes, "approval notes")
    with transaction.atomic():
        _, version = _lock_version(version)
        if version.created_by_id == user.pk:
            raise FourEyesError(
                f"{user.get_username()} created {version} and may not approve it (four eyes)"
            )
        if version.status != Status.TESTING:
            raise IllegalTransitionError(
                f"cannot approve {version}: {version.status} -> staging is not allowed "
                "(only testing versions can be approved)",
                details={"from": version.status, "to": Status.STAGING},
            )
        failed = selectors.failed_gates(version)
        justification = (override_justification or "").strip()
        if failed and not justification:
            raise GateFailedError(
                f"cannot approve {version}: gate(s) {', '.join(failed)} failed; an override "
                "needs a written justification",
                details={"failed_gates": failed},
            )
        now = timezone.now()
        transition_notes = notes if not failed else f"{notes}\nOverride of {', '.join(failed)}: {justification}"
        _set_state(version, actor=user, reason="approved", notes=transition_notes, now=now,
                   status=Status.STAGING, approved_by=user, approved_at=now,
                   approval_notes=notes, override_justification=justification if failed else "")
    return version


def model_version_reject(*, version: MLModelVersion, user: AbstractBaseUser, notes: str) -> MLModelVersion:
    """A rejected candidate is archived with the reviewer's notes."""
    require_permission(user, APPROVE_PERMISSION, "reject model versions")
    notes = _require_text(notes, "rejection notes")
    with transaction.atomic():
        model, version = _lock_version(version)
        if version.status not in (Status.TESTING, Status.STAGING):
            raise IllegalTransitionError(
                f"cannot reject {version}: {version.status} -> archived is not allowed "
                "(only testing or staging versions can be rejected)",
                details={"from": version.status, "to": Status.ARCHIVED},
            )
        _set_state(version, actor=user, reason="rejected", notes=notes, now=timezone.now(),
                   status=Status.ARCHIVED, traffic=0, shadow=False, approval_notes=notes)
        _rebalance_champion(model)
    return version


AUTO_DEPLOY_NOTES = "auto-deployed (AUTO_DEPLOY)"


def model_version_auto_deploy(*, version: MLModelVersion, user: AbstractBaseUser) -> MLModelVersion:
    """The platform's own approval and deployment of a retrained candidate (SPEC §6).

    Not a path for people, who approve and deploy above: four eyes cannot apply to a
    version no person made, so instead it demands that settings.AUTO_DEPLOY is on, that
    `user` is the system account that trained the version, and that every gate passed.
    testing -> staging -> production in one transaction; both audit rows say
    "auto-deployed (AUTO_DEPLOY)".
    """
    if not settings.AUTO_DEPLOY:
        raise PermissionDeniedError("automatic deployment is off (AUTO_DEPLOY)",
                                    details={"setting": "AUTO_DEPLOY"})
    with transaction.atomic():
        model, version = _lock_version(version)
        if user.get_username() != settings.SYSTEM_USERNAME or version.created_by_id != user.pk:
            raise PermissionDeniedError(
                f"only the system account deploys its own retrained versions automatically; "
                f"{user.get_username()} may not auto-deploy {version}",
                details={"user": user.get_username()},
            )
        if version.status != Status.TESTING:
            raise IllegalTransitionError(
                f"cannot auto-deploy {version}: it is {version.status}, not testing",
                details={"from": version.status, "to": Status.PRODUCTION},
            )
        failed = selectors.failed_gates(version)
        if failed:
            raise GateFailedError(
                f"cannot auto-deploy {version}: gate(s) {', '.join(failed)} failed",
                details={"failed_gates": failed},
            )
        now = timezone.now()
        _set_state(version, actor=user, reason="auto_approved", notes=AUTO_DEPLOY_NOTES,
                   now=now, status=Status.STAGING, approved_by=user, approved_at=now,
                   approval_notes=AUTO_DEPLOY_NOTES)
        _make_champion(version, model, actor=user, reason="auto_deployed",
                       notes=AUTO_DEPLOY_NOTES, now=now)
    return version


def model_version_withdraw_approval(*, version: MLModelVersion, user: AbstractBaseUser,
                                    notes: str) -> MLModelVersion:
    """staging -> testing; a live test of the version ends with it."""
    require_permission(user, APPROVE_PERMISSION, "withdraw approvals")
    notes = _require_text(notes, "notes")
    with transaction.atomic():
        model, version = _lock_version(version)
        if version.status != Status.STAGING:
            raise IllegalTransitionError(
                f"cannot withdraw approval of {version}: {version.status} -> testing is not "
                "allowed (only staging versions can go back to testing)",
                details={"from": version.status, "to": Status.TESTING},
            )
        _set_state(version, actor=user, reason="approval_withdrawn", notes=notes,
                   now=timezone.now(), status=Status.TESTING, traffic=0, shadow=False,
                   approved_by=None, approved_at=None)
        _rebalance_champion(model)
    return version


# --- deployment ---------------------------------------------------------------------------


def model_version_deploy(
    *, version: MLModelVersion, user: AbstractBaseUser, notes: str = "",
    traffic: int | None = None, shadow: bool = False,
) -> MLModelVersion:
    """Deploy a staging version.

    Plain: it becomes the champion with 100% of traffic; the old champion is archived and
    live tests end. `traffic=P`: it becomes a challenger with P% beside the champion.
    `shadow=True`: it receives copies of requests and no traffic.
    """
    require_permission(user, DEPLOY_PERMISSION, "deploy model versions")
    if traffic is not None and shadow:
        raise ValidationError("a version is either a challenger (traffic) or a shadow, not both")
    if traffic is not None and not 1 <= traffic <= 99:
        raise ValidationError("challenger traffic must be between 1 and 99 percent",
                              details={"traffic": traffic})
    with transaction.atomic():
        model, version = _lock_version(version)
        if version.status != Status.STAGING:
            raise IllegalTransitionError(
                f"cannot deploy {version}: {version.status} -> production is not allowed "
                "(only approved (staging) versions can be deployed; archived ones come back "
                "through rollback)",
                details={"from": version.status, "to": Status.PRODUCTION},
            )
        now = timezone.now()
        notes = (notes or "").strip()
        if traffic is None and not shadow:
            _make_champion(version, model, actor=user, reason="deployed", notes=notes, now=now)
            return version
        if _champion(model) is None:
            raise IllegalTransitionError(
                f"cannot start a test of {version}: {model.name} has no production version",
                details={"from": version.status, "to": Status.STAGING},
            )
        if shadow:
            _set_state(version, actor=user, reason="shadow_started", notes=notes, now=now,
                       traffic=0, shadow=True)
        else:
            others = sum(_live_tests(model, exclude_pk=version.pk)
                         .values_list("traffic_percentage", flat=True))
            if others + traffic > 100:
                raise TrafficLimitError(
                    f"{model.name} challengers already take {others}%; {traffic}% more "
                    "exceeds 100%",
                    details={"challenger_traffic": others, "requested": traffic},
                )
            _set_state(version, actor=user, reason="ab_test_started", notes=notes, now=now,
                       traffic=traffic, shadow=False)
        _rebalance_champion(model)
    return version


def model_version_end_test(*, version: MLModelVersion, user: AbstractBaseUser,
                           notes: str = "") -> MLModelVersion:
    """Stop an A/B or shadow test: the version stays approved, its traffic returns."""
    require_permission(user, DEPLOY_PERMISSION, "end tests")
    with transaction.atomic():
        model, version = _lock_version(version)
        if version.status != Status.STAGING or not (version.traffic_percentage or version.is_shadow):
            raise IllegalTransitionError(
                f"cannot end a test of {version}: {version.status} -> staging is not allowed "
                "(it is not in a live A/B or shadow test)",
                details={"from": version.status, "to": Status.STAGING},
            )
        _set_state(version, actor=user, reason="test_ended", notes=(notes or "").strip(),
                   now=timezone.now(), traffic=0, shadow=False)
        _rebalance_champion(model)
    return version


def model_version_test_stop(*, version: MLModelVersion, reason: str) -> MLModelVersion:
    """Stop a challenger's A/B test on the platform's own authority (monitoring's automatic
    stop when it breaks the SLO or loses clearly): no permission check, the system user as
    actor, `reason` (why, with the figures) as the audit row's notes. Its traffic returns
    to the champion; the version stays approved."""
    # mlregistry.training.services imports this module.
    from mlregistry.training.services import system_user_get

    notes = _require_text(reason, "reason")
    with transaction.atomic():
        model, version = _lock_version(version)
        if version.status != Status.STAGING or not version.traffic_percentage:
            raise IllegalTransitionError(
                f"cannot stop a test of {version}: {version.status} -> staging is not allowed "
                "(it is not a challenger in a live A/B test)",
                details={"from": version.status, "to": Status.STAGING},
            )
        _set_state(version, actor=system_user_get(), reason="test_stopped_automatically",
                   notes=notes, now=timezone.now(), traffic=0, shadow=False)
        _rebalance_champion(model)
    return version


def model_version_archive(*, version: MLModelVersion, user: AbstractBaseUser, reason: str) -> MLModelVersion:
    require_permission(user, DEPLOY_PERMISSION, "archive model versions")
    reason = _require_text(reason, "reason")
    with transaction.atomic():
        model, version = _lock_version(version)
        if version.status == Status.ARCHIVED:
            raise IllegalTransitionError(
                f"cannot archive {version}: archived -> archived is not allowed "
                "(it is already archived)",
                details={"from": version.status, "to": Status.ARCHIVED},
            )
        now = timezone.now()
        was_champion = version.status == Status.PRODUCTION
        if was_champion:
            # Tests compare against a champion; without one they end.
            _end_tests(model, actor=user, reason="test_ended", notes="champion archived", now=now)
        _set_state(version, actor=user, reason="archived", notes=reason, now=now,
                   status=Status.ARCHIVED, traffic=0, shadow=False,
                   deprecated_at=now if was_champion else version.deprecated_at)
        _rebalance_champion(model)
    return version


@dataclass(frozen=True)
class RollbackPlan:
    model: str
    from_version: str | None
    to_version: str
    ended_tests: list[str]
    dry_run: bool


def _rollback_target(model: MLModel, to_version: str | None) -> MLModelVersion:
    candidates = MLModelVersion.objects.filter(
        model=model, status=Status.ARCHIVED, deployed_at__isnull=False
    )
    if to_version:
        target = MLModelVersion.objects.filter(model=model, version=to_version).first()
        if target is None:
            raise RollbackUnavailableError(f"{model.name} has no version {to_version}")
        if not candidates.filter(pk=target.pk).exists():
            raise RollbackUnavailableError(
                f"cannot roll back {model.name} to {to_version}: it is {target.status} and "
                "only archived versions that were once in production can be restored"
            )
        if target.artifacts_deleted_at is not None:
            raise RollbackUnavailableError(
                f"cannot roll back {model.name} to {to_version}: its artifacts were removed "
                f"by clean-up on {target.artifacts_deleted_at:%Y-%m-%d}"
            )
        return target
    target = candidates.filter(artifacts_deleted_at__isnull=True).order_by(
        "-deprecated_at", "-pk").first()
    if target is None:
        raise RollbackUnavailableError(
            f"{model.name} has no previous production version to roll back to"
        )
    return target


def model_rollback(
    *, model: MLModel, user: AbstractBaseUser, reason: str, to_version: str | None = None,
    dry_run: bool = False,
) -> RollbackPlan:
    """Restore the previous production version (or `to_version`) in one transaction.

    The target's artifacts are verified first: a rollback never restores a version that
    could not be served.
    """
    require_permission(user, DEPLOY_PERMISSION, "roll back models")
    reason = _require_text(reason, "reason")
    with transaction.atomic():
        model = _lock_model(model.pk)
        target = _rollback_target(model, to_version)
        artifacts.bundle_verify(manifest=target.artifact_manifest, model_sha256=target.model_sha256)
        current = _champion(model)
        tests = [test.version for test in _live_tests(model)]
        plan = RollbackPlan(model=model.name, from_version=current.version if current else None,
                            to_version=target.version, ended_tests=tests, dry_run=dry_run)
        if dry_run:
            return plan
        target = MLModelVersion.objects.select_for_update().get(pk=target.pk)
        _make_champion(target, model, actor=user, reason="rollback", notes=reason,
                       now=timezone.now())
    return plan


# --- artifacts ----------------------------------------------------------------------------


def artifact_cleanup(*, dry_run: bool = False) -> set[str]:
    """Delete artifact files that no kept version needs; returns the paths (to be) deleted.

    Kept: every version that is not archived, and the ARTIFACT_KEEP_PRIOR_PRODUCTION most
    recent prior production versions of each model, so a rollback always has something to
    restore. Versions whose files go are marked with `artifacts_deleted_at`.
    """
    with transaction.atomic():
        # Every model's lock, in a fixed order: no registration writes or reuses a file and
        # no rollback picks a target while files are chosen and deleted.
        list(MLModel.objects.select_for_update().order_by("pk").values_list("pk", flat=True))
        to_delete, retired_pks = _artifact_cleanup_plan()
        if not dry_run:
            MLModelVersion.objects.filter(pk__in=retired_pks).update(
                artifacts_deleted_at=timezone.now()
            )
            artifacts.artifact_files_delete(paths=to_delete)
    return to_delete


def _artifact_cleanup_plan() -> tuple[set[str], list[int]]:
    keep_prior = settings.ARTIFACT_KEEP_PRIOR_PRODUCTION
    kept_paths, retired_paths, retired_pks = set(), set(), []
    versions = MLModelVersion.objects.filter(artifacts_deleted_at__isnull=True).only(
        "pk", "model_id", "status", "deployed_at", "deprecated_at", "artifact_manifest"
    ).order_by("model_id", "-deprecated_at", "-pk")
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
            retired_pks.append(version.pk)
    # Files nothing references are orphans of failed registrations; the grace period spares
    # those of a first registration of a new model, whose row no lock covered yet.
    orphans = artifacts.artifact_files_older_than(
        seconds=settings.ARTIFACT_ORPHAN_GRACE_SECONDS
    ) - kept_paths - retired_paths
    return (retired_paths - kept_paths) | orphans, retired_pks
