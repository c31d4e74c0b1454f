"""Prediction log retention (docs/monitoring.md#schedules): rows older than
PREDICTION_LOG_RETENTION_DAYS are deleted in bounded batches by the scheduled purge; everything
younger stays."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitoring.tasks import prediction_log_purge_task
from predictions.models import PredictionFailure, PredictionLog
from predictions.services import prediction_log_purge

NOW = timezone.now().replace(microsecond=0)
CUTOFF = NOW - timedelta(days=90)


@pytest.fixture
def retention(settings):
    settings.PREDICTION_LOG_RETENTION_DAYS = 90
    settings.MONITORING_CHUNK_SIZE = 2
    return settings


def log_at(version, at, rows: int = 1) -> set[uuid.UUID]:
    logs = PredictionLog.objects.bulk_create([
        PredictionLog(model_version=version, model_name=version.model.name, arm="champion",
                      request_id=uuid.uuid4().hex, routing_key_sha256="0" * 64, features={},
                      features_sha256="0" * 64, value=1.0, latency_ms=1.0, created_at=at)
        for _ in range(rows)
    ])
    return {log.prediction_id for log in logs}


def failure_at(at) -> int:
    return PredictionFailure.objects.create(
        model_name="engagement-likes", endpoint="predict", request_id=uuid.uuid4().hex,
        code="internal_error", status_code=500, created_at=at).pk


def test_purge_deletes_exactly_the_log_rows_older_than_the_retention(retention, champion):
    expired = (log_at(champion, NOW - timedelta(days=400), rows=3)
               | log_at(champion, CUTOFF - timedelta(microseconds=1), rows=2))
    kept = (log_at(champion, CUTOFF) | log_at(champion, NOW - timedelta(days=1), rows=2)
            | log_at(champion, NOW))

    deleted = prediction_log_purge(now=NOW)

    assert deleted == len(expired) == 5
    assert set(PredictionLog.objects.values_list("prediction_id", flat=True)) == kept


def test_purge_deletes_in_batches_of_the_chunk_size(retention, champion):
    log_at(champion, NOW - timedelta(days=100), rows=5)
    table = PredictionLog._meta.db_table

    with CaptureQueriesContext(connection) as queries:
        prediction_log_purge(now=NOW)

    deletes = [q["sql"] for q in queries.captured_queries
               if q["sql"].startswith(f'DELETE FROM "{table}"')]
    assert len(deletes) == 4  # 2 + 2 + 1 rows, then an empty batch ends the loop
    assert all("LIMIT 2" in sql for sql in deletes)
    assert not PredictionLog.objects.exists()


def test_purge_deletes_expired_failures_too_and_counts_only_log_rows(retention, champion):
    log_at(champion, NOW - timedelta(days=100))
    for days in (91, 95, 200):
        failure_at(NOW - timedelta(days=days))
    recent = failure_at(NOW - timedelta(days=10))

    deleted = prediction_log_purge(now=NOW)

    assert deleted == 1
    assert list(PredictionFailure.objects.values_list("pk", flat=True)) == [recent]


def test_purge_with_nothing_expired_deletes_nothing(retention, champion):
    kept = log_at(champion, NOW - timedelta(days=89), rows=3)

    assert prediction_log_purge(now=NOW) == 0
    assert set(PredictionLog.objects.values_list("prediction_id", flat=True)) == kept


def test_purge_task_purges_with_the_current_time(retention, champion):
    log_at(champion, timezone.now() - timedelta(days=91), rows=3)
    kept = log_at(champion, timezone.now() - timedelta(days=89))

    assert prediction_log_purge_task.delay().get() == 3
    assert set(PredictionLog.objects.values_list("prediction_id", flat=True)) == kept
