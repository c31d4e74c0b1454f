"""`status [NAME] [--json]` (docs/operations.md#status-at-a-glance): a
read-only overview of each model from the registry and the last scheduled checks."""

import json
from datetime import timedelta

import pytest
from django.core.management import CommandError
from django.utils import timezone

from mlregistry.models import ModelTransition
from monitoring.alerts import alert_raise
from monitoring.models import (
    ABEvaluation,
    Alert,
    DriftReport,
    FairnessReport,
    PerformanceReport,
    SLOReport,
)
from tests.commands import command_output
from tests.factories import register_deployed_version, register_version

pytestmark = pytest.mark.usefixtures("no_alert_delivery_channels")


def window() -> dict:
    now = timezone.now()
    return {"window_start": now - timedelta(hours=1), "window_end": now, "created_at": now}


@pytest.fixture
def ab_test(people, champion):
    """engagement-likes: champion 1.0.0 (80%) and challenger 1.1.0 (20%), each checked once,
    with one open alert."""
    challenger = register_deployed_version(**people, slope=2.0, traffic=20)
    for version, psi_drifted in ((champion, False), (challenger, True)):
        DriftReport.objects.create(
            model_version=version, model_name="engagement-likes", version=version.version,
            n_reference=1000, n_current=500, status=DriftReport.Status.OK,
            dataset_drift=psi_drifted, features={"followers": {"drifted": psi_drifted},
                                                 "hour": {"drifted": False}},
            prediction={"drifted": False}, **window())
        PerformanceReport.objects.create(
            model_version=version, model_name="engagement-likes", version=version.version,
            arm="champion" if version == champion else "challenger", n_labelled=120,
            metrics={"mae": 1.25}, **window())
    FairnessReport.objects.create(model_version=champion, model_name="engagement-likes",
                                  version="1.0.0", n_labelled=120, passed=True, **window())
    SLOReport.objects.create(model_name="engagement-likes", requests=400, errors=2,
                             error_rate=0.005, latency_p50_ms=20.0, latency_p95_ms=85.0,
                             breaches=[], **window())
    ABEvaluation.objects.create(
        model_name="engagement-likes", champion=champion, challenger=challenger,
        arms={"champion": {"version": "1.0.0"}, "challenger": {"version": "1.1.0"}},
        metric="mae", test="welch_t", p_value=0.31,
        verdict=ABEvaluation.Verdict.INCONCLUSIVE, **window())
    alert_raise(kind="drift", severity="warning", model_name="engagement-likes",
                version="1.1.0", message="followers drifted")
    return challenger


def test_status_json_holds_live_versions_results_and_open_alerts(ab_test):
    (model,) = json.loads(command_output("status", "engagement-likes", "--json"))

    assert (model["model"], model["task"], model["client_id"]) == (
        "engagement-likes", "regression", "")
    assert [(live["version"], live["role"], live["traffic_percentage"])
            for live in model["live"]] == [("1.0.0", "champion", 80), ("1.1.0", "challenger", 20)]
    champion, challenger = model["live"]
    assert challenger["drift"] | {"checked_at": None} == {
        "checked_at": None, "status": "ok", "dataset_drift": True, "n_current": 500,
        "drifted_features": ["followers"], "prediction_drifted": False}
    assert [(report["arm"], report["n_labelled"], report["metrics"])
            for report in champion["performance"]] == [("champion", 120, {"mae": 1.25})]
    assert champion["fairness"]["passed"] is True
    assert challenger["fairness"] is None
    assert (model["ab_test"]["challenger"], model["ab_test"]["champion"],
            model["ab_test"]["verdict"], model["ab_test"]["p_value"]) == (
        "1.1.0", "1.0.0", "inconclusive", 0.31)
    assert set(model["ab_test"]["arms"]) == {"champion", "challenger"}
    assert (model["slo"]["latency_p95_ms"], model["slo"]["error_rate"]) == (85.0, 0.005)
    assert [(alert["kind"], alert["version"]) for alert in model["open_alerts"]] == [
        ("drift", "1.1.0")]


def test_status_prints_one_block_per_model(ab_test):
    output = command_output("status")

    assert output.startswith("engagement-likes (regression)\n  1.0.0 champion 80%\n"
                             "    drift ok at ")
    assert ": nothing drifted\n    performance as champion at " in output
    assert " on 120 labelled: mae 1.25\n    fairness passed at " in output
    assert "  1.1.0 challenger 20%\n    drift ok at " in output
    assert ": followers drifted\n" in output
    assert "    fairness never audited\n" in output
    assert "  A/B test: 1.1.0 against 1.0.0: inconclusive (mae, p = 0.31) at " in output
    assert "p95 85 ms, error rate 0.50% of 400 requests; breaches: none" in output
    assert "  open alerts: 1\n    #" in output
    assert "[warning] drift 1.1.0: followers drifted" in output


def test_status_reads_and_changes_nothing(ab_test):
    before = (ModelTransition.objects.count(), Alert.objects.count(),
              DriftReport.objects.count(), SLOReport.objects.count())

    command_output("status", "--json")

    assert before == (ModelTransition.objects.count(), Alert.objects.count(),
                      DriftReport.objects.count(), SLOReport.objects.count())


def test_status_of_a_model_without_live_version_says_so(data_scientist):
    register_version(user=data_scientist)

    (model,) = json.loads(command_output("status", "engagement-likes", "--json"))
    output = command_output("status", "engagement-likes")

    assert (model["live"], model["ab_test"], model["slo"], model["open_alerts"]) == (
        [], None, None, [])
    assert "  no live version\n  SLO never checked\n  open alerts: 0\n" in output


def test_status_of_an_unknown_model_fails_with_its_code(db):
    with pytest.raises(CommandError, match=r"^model_not_found: "):
        command_output("status", "no-such-model")
