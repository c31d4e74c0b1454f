"""SLOs per model (docs/monitoring.md#slos): serving figures against numpy on logged rows, breaches
and their alerts, the minimum request count, and every live model checked."""

import uuid
from datetime import timedelta

import numpy
import pytest
from django.utils import timezone

from monitoring import selectors
from monitoring.models import Alert, SLOReport
from monitoring.slo import serving_stats, slo_check, slo_check_all
from predictions.models import PredictionFailure, PredictionLog
from tests.factories import register_deployed_version, register_version

NOW = timezone.now().replace(microsecond=0)
START = NOW - timedelta(hours=1)


def log_request(version, *, latency_ms: float, at=None, rows: int = 1, arm: str = "champion",
                request_id: str | None = None) -> str:
    """One answered request of `rows` instances, as prediction_make logs it."""
    request_id = request_id or uuid.uuid4().hex
    PredictionLog.objects.bulk_create([
        PredictionLog(model_version=version, model_name=version.model.name, arm=arm,
                      request_id=request_id, routing_key_sha256="0" * 64,
                      features={"followers": 1.0, "hashtags": 1}, features_sha256="0" * 64,
                      value=1.0, latency_ms=latency_ms,
                      created_at=at or NOW - timedelta(minutes=5))
        for _ in range(rows)
    ])
    return request_id


def log_failure(model_name: str, *, version: str = "", at=None, code: str = "internal_error",
                status_code: int = 500) -> PredictionFailure:
    return PredictionFailure.objects.create(
        model_name=model_name, version=version, arm="champion" if version else "",
        endpoint="predict", request_id=uuid.uuid4().hex, code=code, status_code=status_code,
        created_at=at or NOW - timedelta(minutes=5))


@pytest.fixture
def slo_settings(settings):
    settings.SLO_WINDOW_MINUTES = 60
    settings.SLO_P95_LATENCY_MS = 100.0
    settings.SLO_MAX_ERROR_RATE = 0.05
    settings.SLO_MIN_REQUESTS = 10
    return settings


# --- serving_stats --------------------------------------------------------------------------


def test_serving_stats_match_numpy_over_one_latency_per_request(champion):
    latencies = numpy.random.default_rng(7).gamma(2.0, 20.0, size=37)
    for i, latency in enumerate(latencies):
        log_request(champion, latency_ms=float(latency), rows=1 + i % 4)

    stats = serving_stats(model_name=champion.model.name, start=START, end=NOW)

    assert stats.requests == 37
    assert stats.errors == 0
    assert stats.error_rate == 0.0
    assert stats.latency_p50_ms == pytest.approx(numpy.percentile(latencies, 50), rel=1e-12)
    assert stats.latency_p95_ms == pytest.approx(numpy.percentile(latencies, 95), rel=1e-12)


def test_serving_stats_count_a_batch_as_one_request(champion):
    log_request(champion, latency_ms=10.0, rows=50)
    log_request(champion, latency_ms=30.0, rows=1)

    stats = serving_stats(model_name=champion.model.name, start=START, end=NOW)

    assert stats.requests == 2
    assert stats.latency_p50_ms == pytest.approx(numpy.percentile([10.0, 30.0], 50))
    assert stats.latency_p95_ms == pytest.approx(numpy.percentile([10.0, 30.0], 95))


def test_serving_stats_count_a_reused_request_id_once_per_request(champion):
    log_request(champion, latency_ms=10.0, request_id="client-id",
                at=NOW - timedelta(minutes=5))
    log_request(champion, latency_ms=20.0, request_id="client-id",
                at=NOW - timedelta(minutes=4))

    stats = serving_stats(model_name=champion.model.name, start=START, end=NOW)

    assert stats.requests == 2
    assert stats.latency_p50_ms == pytest.approx(15.0)


def test_serving_stats_ignore_shadow_rows(people, champion):
    shadow = register_deployed_version(**people, slope=3.0, shadow=True)
    request_id = log_request(champion, latency_ms=10.0)
    log_request(shadow, latency_ms=5000.0, arm="shadow", request_id=request_id)

    stats = serving_stats(model_name=champion.model.name, start=START, end=NOW)

    assert stats.requests == 1
    assert stats.latency_p95_ms == pytest.approx(10.0)


def test_serving_stats_count_failures_as_failed_requests(champion):
    for latency in (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0):
        log_request(champion, latency_ms=latency)
    log_failure(champion.model.name, version=champion.version)
    log_failure(champion.model.name, code="model_not_ready", status_code=503)

    stats = serving_stats(model_name=champion.model.name, start=START, end=NOW)

    assert (stats.requests, stats.errors) == (10, 2)
    assert stats.error_rate == pytest.approx(0.2)
    expected = numpy.percentile([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0], [50, 95])
    assert [stats.latency_p50_ms, stats.latency_p95_ms] == pytest.approx(expected)


def test_serving_stats_respect_the_window_bounds(champion):
    name = champion.model.name
    log_request(champion, latency_ms=1.0, at=START)  # first instant: in
    log_request(champion, latency_ms=2.0, at=NOW - timedelta(microseconds=1))  # in
    log_request(champion, latency_ms=900.0, at=START - timedelta(microseconds=1))  # before
    log_request(champion, latency_ms=900.0, at=NOW)  # end is excluded
    log_failure(name, at=START)
    log_failure(name, at=START - timedelta(microseconds=1))
    log_failure(name, at=NOW)

    stats = serving_stats(model_name=name, start=START, end=NOW)

    assert (stats.requests, stats.errors) == (3, 1)
    assert stats.latency_p95_ms == pytest.approx(numpy.percentile([1.0, 2.0], 95))


def test_serving_stats_ignore_other_models(people, champion):
    other = register_deployed_version(**people, name="engagement-comments")
    log_request(champion, latency_ms=10.0)
    log_request(other, latency_ms=500.0)
    log_failure("engagement-comments")

    stats = serving_stats(model_name=champion.model.name, start=START, end=NOW)

    assert (stats.requests, stats.errors) == (1, 0)
    assert stats.latency_p95_ms == pytest.approx(10.0)


def test_serving_stats_of_one_version_count_only_its_requests_and_failures(people, champion):
    challenger = register_deployed_version(**people, slope=2.0, traffic=20)
    for latency in (10.0, 20.0, 30.0):
        log_request(champion, latency_ms=latency)
    for latency in (200.0, 400.0):
        log_request(challenger, latency_ms=latency, arm="challenger")
    log_failure(champion.model.name, version=challenger.version)
    log_failure(champion.model.name, version=champion.version)
    log_failure(champion.model.name)  # failed before a version was chosen

    stats = serving_stats(model_name=champion.model.name, start=START, end=NOW,
                          version_id=challenger.pk)

    assert (stats.requests, stats.errors) == (3, 1)
    assert stats.error_rate == pytest.approx(1 / 3)
    assert stats.latency_p50_ms == pytest.approx(300.0)
    assert stats.latency_p95_ms == pytest.approx(numpy.percentile([200.0, 400.0], 95))


def test_serving_stats_without_requests_have_no_figures(champion):
    stats = serving_stats(model_name=champion.model.name, start=START, end=NOW)

    assert (stats.requests, stats.errors) == (0, 0)
    assert stats.error_rate is None
    assert stats.latency_p50_ms is None and stats.latency_p95_ms is None


# --- slo_check ------------------------------------------------------------------------------


def test_slo_check_slow_model_breaches_latency_with_a_warning_alert(slo_settings, champion):
    for i in range(12):
        log_request(champion, latency_ms=150.0 + i)

    report = slo_check(model_name=champion.model.name, now=NOW)

    assert report.breaches == ["latency"]
    assert report.requests == 12 and report.errors == 0
    p95 = numpy.percentile(150.0 + numpy.arange(12), 95)
    assert report.latency_p95_ms == pytest.approx(p95)
    assert (report.window_start, report.window_end) == (NOW - timedelta(minutes=60), NOW)
    alert = Alert.objects.get()
    assert (alert.kind, alert.severity) == ("slo", "warning")
    assert (alert.model_name, alert.version) == (champion.model.name, "")
    assert f"p95 latency {p95:.1f} ms (objective 100 ms)" in alert.message
    assert alert.payload["breaches"] == ["latency"]
    assert alert.payload["slo_report_id"] == report.pk


def test_slo_check_failing_model_breaches_error_rate_with_a_critical_alert(slo_settings,
                                                                         champion):
    for _ in range(18):
        log_request(champion, latency_ms=20.0)
    log_failure(champion.model.name, version=champion.version)
    log_failure(champion.model.name, version=champion.version)

    report = slo_check(model_name=champion.model.name, now=NOW)

    assert report.breaches == ["error_rate"]
    assert (report.requests, report.errors) == (20, 2)
    assert report.error_rate == pytest.approx(0.1)
    alert = Alert.objects.get()
    assert (alert.kind, alert.severity) == ("slo", "critical")
    assert "error rate 10.00%" in alert.message
    assert alert.payload["errors"] == 2 and alert.payload["requests"] == 20


def test_slo_check_within_objectives_raises_no_alert(slo_settings, champion):
    for _ in range(20):
        log_request(champion, latency_ms=20.0)

    report = slo_check(model_name=champion.model.name, now=NOW)

    assert report.breaches == []
    assert SLOReport.objects.count() == 1
    assert not Alert.objects.exists()


def test_slo_check_under_the_minimum_requests_judges_nothing(slo_settings, champion):
    for _ in range(5):
        log_request(champion, latency_ms=5000.0)
    for _ in range(4):
        log_failure(champion.model.name)

    report = slo_check(model_name=champion.model.name, now=NOW)

    assert report.requests == 9
    assert report.error_rate == pytest.approx(4 / 9)
    assert report.breaches == []
    assert not Alert.objects.exists()


def test_slo_check_all_checks_every_model_with_a_live_version(slo_settings, people, champion):
    register_deployed_version(**people, name="lead-conversion")
    register_version(user=people["user"], name="engagement-comments")  # in testing: not live
    log_request(champion, latency_ms=20.0)

    reports = slo_check_all(now=NOW)

    assert [r.model_name for r in reports] == ["engagement-likes", "lead-conversion"]
    assert [r.requests for r in reports] == [1, 0]
    assert set(SLOReport.objects.values_list("model_name", flat=True)) == {
        "engagement-likes", "lead-conversion"}


def test_slo_reports_recent_lists_the_models_reports_since_oldest_first(slo_settings, champion):
    slo_check(model_name=champion.model.name, now=NOW - timedelta(hours=3))
    middle = slo_check(model_name=champion.model.name, now=NOW - timedelta(hours=1))
    last = slo_check(model_name=champion.model.name, now=NOW)
    slo_check(model_name="lead-conversion", now=NOW)

    reports = selectors.slo_reports_recent(model_name=champion.model.name,
                                           since=NOW - timedelta(hours=2))

    assert [r.pk for r in reports] == [middle.pk, last.pk]
