"""Production's live figures on the version page (monitoring.evidence, through the registry's
extension point mlregistry.evidence_panels): the live performance, live fairness and open
alerts of the version a candidate would replace, as a reviewer sees them in the admin."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from sklearn import metrics as skm

from core.ml.schema import feature_spec
from monitoring.alerts import alert_acknowledge, alert_raise, alert_resolve
from monitoring.fairness import fairness_audit
from monitoring.performance import performance_evaluate
from tests.factories import (
    UserFactory,
    labelled_logs_create,
    register_deployed_version,
    register_version,
)
from tests.pages import section

CHANGE_PAGE = "/admin/mlregistry/mlmodelversion/{pk}/change/"
MODEL = "engagement-likes"
SCHEMA = {"target": "likes", "features": [
    feature_spec(name="followers", dtype="float"),
    feature_spec(name="hashtags", dtype="int"),
    feature_spec(name="region", dtype="category", protected=True, input=False),
]}


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def production(people):
    """Version 1.0.0 in production, validated at r2 0.9, mae 1.0, rmse 1.5 (the factory's)."""
    return register_deployed_version(**people, slope=1.0, schema=SCHEMA)


@pytest.fixture
def candidate(production, people):
    return register_version(user=people["user"], slope=3.0, schema=SCHEMA)


@pytest.fixture
def reviewer_client(client, reviewer):
    client.force_login(reviewer)
    return client


def change_page(client, version):
    response = client.get(CHANGE_PAGE.format(pk=version.pk))
    assert response.status_code == 200
    return response


def log_outcomes(version, *, values, actuals, created_at, regions=None):
    """Labelled predictions of `version`, each row in its region ("apac" unless given)."""
    regions = regions or ["apac"] * len(values)
    labelled_logs_create(version=version, values=values, actuals=actuals, created_at=created_at,
                         features=[{"followers": 1.0, "hashtags": 1, "region": region}
                                   for region in regions])


def log_region_skew(version, *, created_at):
    """30 labelled predictions per region, apac predicted 4 and emea 6 (each 1 below the
    outcome): parity ratio 4 / 6 = 0.6667, below the gate's 0.8."""
    log_outcomes(version, values=[4.0] * 30 + [6.0] * 30, actuals=[5.0] * 30 + [7.0] * 30,
                 regions=["apac"] * 30 + ["emea"] * 30, created_at=created_at)


def test_candidate_page_shows_production_live_metrics_beside_validation(
        reviewer_client, production, candidate, now):
    actual = [i + 0.5 for i in range(40)]
    predicted = [float(i) for i in range(40)]
    log_outcomes(production, values=predicted, actuals=actual,
                 created_at=now - timedelta(hours=1))
    performance_evaluate(version_id=production.pk, now=now)

    text = section(change_page(reviewer_client, candidate), "production-live-performance")

    r2 = skm.r2_score(actual, predicted)
    assert "Live, champion (40 labelled)" in text
    assert f"r2 (primary) ↑ 0.9000 {r2:.4f}" in text
    assert "mae ↓ 1.0000 0.5000" in text
    assert "rmse ↓ 1.5000 0.5000" in text
    assert "degraded" not in text


def test_candidate_page_marks_production_primary_metric_degraded_as_the_check_judges_it(
        reviewer_client, production, candidate, now):
    log_outcomes(production, values=[20.0] * 40, actuals=[float(i) for i in range(40)],
                 created_at=now - timedelta(hours=1))
    performance_evaluate(version_id=production.pk, now=now)

    text = section(change_page(reviewer_client, candidate), "production-live-performance")

    assert "r2 (primary) ↑ 0.9000 -0.0019 degraded" in text


def test_candidate_page_shows_production_live_fairness_breach_with_group_counts(
        reviewer_client, production, candidate, now):
    log_region_skew(production, created_at=now - timedelta(hours=1))
    fairness_audit(version_id=production.pk, now=now)

    text = section(change_page(reviewer_client, candidate), "production-live-fairness")

    assert "over 60 labelled predictions" in text
    assert "gate failed" in text
    assert ("Parity ratio 0.6667 breaks the gate: parity ratio at least 0.8, parity "
            "difference 2.0000") in text
    assert "apac 30 4 5" in text  # group, rows, mean prediction, mean actual
    assert "emea 30 6 7" in text


def test_candidate_page_shows_production_open_alert_with_link(
        reviewer_client, production, candidate):
    alert = alert_raise(kind="drift", severity="critical", model_name=MODEL,
                        version=production.version, message="followers drifted (PSI 0.31)")

    page = change_page(reviewer_client, candidate)

    text = section(page, "production-open-alerts")
    assert "critical drift 1.0.0 (production) followers drifted (PSI 0.31)" in text
    assert f'href="/admin/monitoring/alert/{alert.pk}/change/"' in page.content.decode()


def test_candidate_page_leaves_out_resolved_alerts(reviewer_client, reviewer, production,
                                                   candidate):
    resolved = alert_raise(kind="slo", severity="warning", model_name=MODEL,
                           message="p95 latency 480 ms above 300 ms")
    alert_resolve(alert_id=resolved.pk, user=reviewer)

    text = section(change_page(reviewer_client, candidate), "production-open-alerts")

    assert "p95 latency 480 ms" not in text
    assert "No open alerts." in text


def test_candidate_page_shows_who_acknowledged_an_open_alert(reviewer_client, reviewer,
                                                             production, candidate):
    # Acknowledging stops reminders, not the problem: the alert is open until resolved.
    alert = alert_raise(kind="drift", severity="warning", model_name=MODEL,
                        version=production.version, message="hashtags drifted (PSI 0.12)")
    alert_acknowledge(alert_id=alert.pk, user=reviewer)

    text = section(change_page(reviewer_client, candidate), "production-open-alerts")

    assert "hashtags drifted (PSI 0.12)" in text
    assert "by rita at" in text


def test_candidate_page_says_production_has_no_live_figures_yet(reviewer_client, production,
                                                                 candidate):
    page = change_page(reviewer_client, candidate)

    assert "No live figures yet" in section(page, "production-live-performance")
    assert "No live figures yet" in section(page, "production-live-fairness")
    assert "No open alerts." in section(page, "production-open-alerts")


def test_production_page_shows_its_own_live_figures(reviewer_client, production, now):
    log_region_skew(production, created_at=now - timedelta(hours=1))
    performance_evaluate(version_id=production.pk, now=now)

    page = change_page(reviewer_client, production)

    assert "Production version 1.0.0 live (this version)" in section(page, "production-live")
    assert "Live, champion (60 labelled)" in section(page, "production-live-performance")


def test_page_without_production_version_says_so(reviewer_client, people):
    testing = register_version(user=people["user"], schema=SCHEMA)

    page = change_page(reviewer_client, testing)

    text = section(page, "production-live")
    assert f"No version of {MODEL} is in production" in text
    assert 'id="production-live-performance"' not in page.content.decode()
    assert 'id="production-live-fairness"' not in page.content.decode()


def test_page_without_production_version_still_lists_the_model_open_alerts(
        reviewer_client, people):
    testing = register_version(user=people["user"], schema=SCHEMA)
    alert_raise(kind="retrain_failed", severity="warning", model_name=MODEL,
                message="retraining job 7 failed: worker lost")

    text = section(change_page(reviewer_client, testing), "production-open-alerts")

    assert "retrain_failed – retraining job 7 failed: worker lost" in text


def test_times_are_shown_in_the_time_zone_with_its_name(reviewer_client, production,
                                                         candidate, now, settings):
    settings.TIME_ZONE = "Asia/Tokyo"  # JST all year: no summer time to trip on
    log_region_skew(production, created_at=now - timedelta(hours=1))
    performance_evaluate(version_id=production.pk, now=now)

    text = section(change_page(reviewer_client, candidate), "production-live-performance")

    assert f"Checked {now.astimezone(ZoneInfo('Asia/Tokyo')):%Y-%m-%d %H:%M} JST" in text


def test_page_queries_do_not_grow_with_open_alerts(reviewer_client, production, candidate,
                                                   now):
    def acknowledged_alert(kind: str, who: str) -> None:
        alert = alert_raise(kind=kind, severity="warning", model_name=MODEL,
                            version=production.version, message=f"{kind} on 1.0.0")
        alert_acknowledge(alert_id=alert.pk, user=UserFactory(username=who,
                                                              groups=["Reviewers"]))

    log_region_skew(production, created_at=now - timedelta(hours=1))
    performance_evaluate(version_id=production.pk, now=now)
    fairness_audit(version_id=production.pk, now=now)  # opens a fairness alert
    acknowledged_alert("drift", "ann")
    change_page(reviewer_client, candidate)  # the first request also fills per-process caches
    with CaptureQueriesContext(connection) as one_acknowledged:
        change_page(reviewer_client, candidate)
    acknowledged_alert("slo", "ben")
    acknowledged_alert("integrity", "cal")

    with CaptureQueriesContext(connection) as three_acknowledged:
        page = change_page(reviewer_client, candidate)

    assert section(page, "production-open-alerts").count("by ") == 3  # ann, ben, cal
    assert len(three_acknowledged) == len(one_acknowledged)
