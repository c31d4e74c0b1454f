"""Reads for other apps: the prediction log and API keys (writes live in services.py)."""

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q

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
