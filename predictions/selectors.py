"""Reads: the prediction log, its records, the versions that serve, and API keys (writes
live in services.py)."""

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q

from core.errors import PredictionNotFoundError
from mlregistry import selectors as registry
from mlregistry.models import MLModelVersion
from mlregistry.selectors import LiveVersion
from predictions.models import ClientAPIKey, PredictionLog


def api_key_is_valid(*, key: str) -> bool:
    return ClientAPIKey.objects.is_valid(key)


def _labelled(model_name: str):
    # A shadow row repeats the answered prediction's input and outcome: counted once.
    return (PredictionLog.objects.filter(model_name=model_name, actual_at__isnull=False)
            .exclude(arm=PredictionLog.Arm.SHADOW))


def prediction_feedback_count(*, model_name: str, since: datetime | None = None) -> int:
    """Predictions of the model (any version) whose outcome arrived after `since`."""
    labelled = _labelled(model_name)
    return (labelled.filter(actual_at__gt=since) if since else labelled).count()


def prediction_feedback_chunks(*, model_name: str, chunk_size: int | None = None
                               ) -> Iterator[list[tuple[dict, Any, str, str]]]:
    """Every labelled prediction of the model (any version) as (features, actual,
    client_id, feedback_source), oldest first in a fixed order, a chunk per query.

    Keyset pagination on (created_at, prediction_id): memory holds one chunk, and the
    order (hence a retrain on the rows) is the same however often it is read.
    """
    chunk_size = chunk_size or settings.MONITORING_CHUNK_SIZE
    rows = _labelled(model_name).order_by("created_at", "prediction_id")
    after = Q()
    while True:
        chunk = list(rows.filter(after).values_list(
            "features", "actual", "client_id", "feedback_source", "created_at",
            "prediction_id")[:chunk_size])
        if not chunk:
            return
        yield [row[:4] for row in chunk]
        last_at, last_id = chunk[-1][4], chunk[-1][5]
        after = Q(created_at__gt=last_at) | Q(created_at=last_at, prediction_id__gt=last_id)


def prediction_get(*, prediction_id: str, client_id: str = "") -> PredictionLog:
    """An answered prediction, with its version and model. A key bound to `client_id`
    finds only that client's predictions: another client's prediction id is as unknown as
    a made-up one (404, not 403, so that its existence does not leak). Shadow rows were
    never answered to anyone: their ids are unknown too."""
    try:
        key = uuid.UUID(str(prediction_id))
    except ValueError:
        raise PredictionNotFoundError(f"no prediction {prediction_id!r}") from None
    log = (PredictionLog.objects.exclude(arm=PredictionLog.Arm.SHADOW)
           .select_related("model_version__model__global_model")
           .filter(prediction_id=key).first())
    if log is None or (client_id and log.client_id != client_id):
        raise PredictionNotFoundError(f"no prediction {prediction_id}",
                                      details={"prediction_id": str(prediction_id)})
    return log


def personal_features(schema: dict) -> set[str]:
    """The features a schema marks `pii`: never stored, logged or returned."""
    return {feature["name"] for feature in schema.get("features", []) if feature.get("pii")}


def prediction_record(*, log: PredictionLog) -> dict:
    """What the API returns of a logged prediction (docs/api.md#prediction-records): the
    answer as predict returned it, with its inputs and outcome. Inputs are filtered by the
    version's schema again on the way out: personal features are never returned, whoever
    wrote the row."""
    version = log.model_version
    personal = personal_features(version.feature_schema)
    record = {
        "prediction_id": str(log.prediction_id), "model": log.model_name,
        "version": version.version, "model_sha256": version.model_sha256, "arm": log.arm,
        "request_id": log.request_id, "client_id": log.client_id, "created_at": log.created_at,
        "inputs": {name: value for name, value in log.features.items()
                   if name not in personal},
        "value": log.value,
    }
    if log.probabilities is not None:
        record["probabilities"] = log.probabilities
    if log.anomaly_score is not None:
        record["anomaly_score"] = log.anomaly_score
    record["outcome"] = None if log.actual_at is None else {
        "actual": log.actual, "actual_at": log.actual_at, "source": log.feedback_source}
    return record


def live_version_of(row: MLModelVersion) -> LiveVersion:
    """What serving needs of any version row (as mlregistry.selectors.live_versions_all
    builds it for the live ones): a version named by a pinned request or by a logged
    prediction may no longer be, or never have been, live. `row` comes with its model and
    the model's global model."""
    return LiveVersion(
        version_id=row.pk, model_name=row.model.name,
        global_model_name=row.model.global_model.name if row.model.global_model else "",
        client_id=row.model.client_id, task=row.model.task, version=row.version,
        status=row.status, traffic_percentage=row.traffic_percentage, is_shadow=row.is_shadow,
        model_sha256=row.model_sha256, artifact_manifest=row.artifact_manifest,
        feature_schema=row.feature_schema, recipe=(row.hyperparameters or {}).get("recipe", ""),
    )


def model_version_named(*, name: str, version: str) -> LiveVersion:
    """A model's version by name and number, as serving needs it; 404 `model_not_found` or
    `version_not_found` when there is none."""
    row = registry.model_version_get(name=name, version=version)
    return live_version_of(row)
