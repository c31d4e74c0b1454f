"""The registry's internal building blocks: row locks, audit rows, traffic rebalancing.

To be called only from mlregistry's service modules (services.py, registration.py), inside
their transactions and after `lock_model` or `lock_version` has locked the model's row:
that lock serialises every change to one model, its versions' traffic and its audit chain.
"""

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F

from core.commands import command_origin
from core.errors import TrafficLimitError
from mlregistry import audit, signals
from mlregistry.models import MLModel, MLModelVersion, ModelTransition, RegistryGeneration, Status


def lock_model(model_id: int) -> MLModel:
    return MLModel.objects.select_for_update().get(pk=model_id)


def lock_version(version: MLModelVersion) -> tuple[MLModel, MLModelVersion]:
    """Lock the model row, then re-read the version inside the transaction."""
    model = lock_model(version.model_id)
    return model, MLModelVersion.objects.select_for_update().get(pk=version.pk)


def _registry_generation_bump() -> None:
    """Serving processes notice every change through this counter (selectors)."""
    if not RegistryGeneration.objects.filter(pk=1).update(generation=F("generation") + 1):
        RegistryGeneration.objects.get_or_create(pk=1, defaults={"generation": 1})


def transition_record(
    *, version: MLModelVersion, actor: AbstractBaseUser, from_status: str, to_status: str,
    reason: str, notes: str = "", traffic_before: int = 0, traffic_after: int = 0,
    now: datetime,
) -> ModelTransition:
    """Append one sealed row about `version` to its model's chain. The caller holds the
    model's row lock."""
    return _sealed_row_append(
        model=version.model, version=version, actor=actor, from_status=from_status,
        to_status=to_status, reason=reason, notes=notes, traffic_before=traffic_before,
        traffic_after=traffic_after, now=now, **version_binding(version))


def model_transition_record(*, model: MLModel, actor: AbstractBaseUser, reason: str,
                            notes: str, now: datetime) -> ModelTransition:
    """Append one sealed row about the model itself (no version). The caller holds the
    model's row lock."""
    return _sealed_row_append(model=model, version=None, actor=actor, from_status="",
                              to_status="", reason=reason, notes=notes, traffic_before=0,
                              traffic_after=0, now=now)


def _sealed_row_append(*, model: MLModel, version: MLModelVersion | None, now: datetime,
                       **fields: Any) -> ModelTransition:
    previous = (
        ModelTransition.objects.filter(model_id=model.pk)
        .order_by("-sequence").values("sequence", "row_sha256").first()
    )
    key_id, key = audit.current_key()
    os_user, host = command_origin.get() or ("", "")
    row = ModelTransition(
        model_id=model.pk, version=version, created_at=now,
        sequence=previous["sequence"] + 1 if previous else 1,
        previous_sha256=previous["row_sha256"] if previous else "",
        identity_sha256=model_identity_sha256(model), os_user=os_user, host=host,
        key_id=key_id, **fields,
    )
    row.row_sha256 = audit.content_seal(row.sealed_content(), key)
    _registry_generation_bump()
    row.save(force_insert=True)
    # After commit, so a change that rolls back is never reported; robust, so a failing
    # receiver (logged by the dispatcher) cannot turn a committed change into an error.
    transaction.on_commit(lambda: signals.transition_sealed.send_robust(
        sender=ModelTransition, transition_id=row.pk))
    return row


def version_binding(version: MLModelVersion) -> dict:
    """What a row binds of its version: the artifact (model_sha256 hashes the manifest,
    which hashes every file), the data, the schema, the gates and the shadow flag."""
    return {"model_sha256": version.model_sha256,
            "dataset_sha256": version.training_dataset_sha256,
            "schema_sha256": audit.json_sha256(version.feature_schema),
            "gates_sha256": audit.json_sha256(version.gate_results),
            "is_shadow": version.is_shadow}


def model_identity_sha256(model: MLModel) -> str:
    """What a row binds of its model: who it serves and what it is."""
    global_model = (MLModel.objects.filter(pk=model.global_model_id)
                    .values_list("name", flat=True).first() if model.global_model_id else None)
    return audit.json_sha256({"name": model.name, "task": model.task,
                              "client_id": model.client_id, "global_model": global_model,
                              "description": model.description})


def set_state(
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
    if version.status != Status.STAGING or not version.traffic_percentage:
        # A test's name and a canary's deadline last as long as its traffic.
        version.experiment, version.canary_until = "", None
    version.save()
    return transition_record(
        version=version, actor=actor, from_status=from_status, to_status=version.status,
        reason=reason, notes=notes, traffic_before=traffic_before,
        traffic_after=version.traffic_percentage, now=now,
    )


def live_tests(model: MLModel, *, exclude_pk: int | None = None):
    tests = MLModelVersion.objects.select_for_update().filter(
        model=model, status=Status.STAGING
    ).exclude(traffic_percentage=0, is_shadow=False)
    return tests.exclude(pk=exclude_pk) if exclude_pk else tests


def champion(model: MLModel) -> MLModelVersion | None:
    return MLModelVersion.objects.select_for_update().filter(
        model=model, status=Status.PRODUCTION
    ).first()


def rebalance_champion(model: MLModel) -> None:
    """The champion carries whatever traffic the challengers leave (docs/registry.md#deployment)."""
    current = champion(model)
    if current is None:
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
    current.traffic_percentage = 100 - challenger_total
    current.save(update_fields=["traffic_percentage"])


def end_tests(model: MLModel, *, actor, reason: str, notes: str, now: datetime,
              exclude_pk: int | None = None) -> list[MLModelVersion]:
    ended = list(live_tests(model, exclude_pk=exclude_pk))
    for test in ended:
        set_state(test, actor=actor, reason=reason, notes=notes, now=now, traffic=0, shadow=False)
    return ended


def make_champion(version: MLModelVersion, model: MLModel, *, actor, reason: str, notes: str,
                  now: datetime) -> MLModelVersion | None:
    """Archive the current champion (if any), end live tests, make `version` the champion."""
    end_tests(model, actor=actor, reason="test_ended", notes=f"ended by {reason}", now=now,
              exclude_pk=version.pk)
    previous = champion(model)
    if previous is not None and previous.pk != version.pk:
        set_state(previous, actor=actor, reason=reason, notes=notes, now=now,
                  status=Status.ARCHIVED, traffic=0, deprecated_at=now)
    set_state(version, actor=actor, reason=reason, notes=notes, now=now,
              status=Status.PRODUCTION, traffic=100, shadow=False, deployed_at=now,
              deprecated_at=None)
    return previous
