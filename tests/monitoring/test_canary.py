"""Guarded rollouts (monitoring.canary): a canary takes a share of traffic, is rolled back
by the system at the first breach (SLO, error rate against the champion, drift) with an
alert, and promoted by the system once healthy through its bake time. Time is driven by
the test (`now`), never waited for."""

import json
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from core.errors import IllegalTransitionError, ValidationError
from mlregistry import selectors as registry
from mlregistry import services
from mlregistry.models import MLModelVersion, ModelTransition
from monitoring.ab import ab_evaluate
from monitoring.canary import canary_check, canary_check_all
from monitoring.models import Alert, CanaryCheck
from predictions.models import PredictionFailure
from tests.factories import (
    drift_frame,
    drift_outputs,
    labelled_logs_create,
    prediction_logs_create,
    register_approved_version,
    register_deployed_version,
    register_profiled_version,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def guard_settings(settings):
    settings.SLO_MIN_REQUESTS = 20
    settings.SLO_MAX_ERROR_RATE = 0.05
    settings.SLO_P95_LATENCY_MS = 300.0
    settings.CANARY_MAX_ERROR_RATE_INCREASE = 0.01
    return settings


def fresh(version: MLModelVersion) -> MLModelVersion:
    return MLModelVersion.objects.get(pk=version.pk)


def canary_start(version, deployer, *, traffic=20, bake_minutes=30, experiment=""):
    return services.model_version_deploy(version=version, user=deployer, canary=traffic,
                                         bake_minutes=bake_minutes, experiment=experiment)


@pytest.fixture
def canary(champion, people, deployer):
    """Version 1.1.0 as a canary with 20 % of traffic for 30 minutes."""
    return canary_start(register_approved_version(**people, slope=3.0), deployer)


def answered(version, *, arm, n):
    labelled_logs_create(version=version, arm=arm, values=[1.0] * n, actuals=[None] * n,
                         created_at=timezone.now())


def failed(version, *, n):
    PredictionFailure.objects.bulk_create([
        PredictionFailure(model_name=version.model.name, version=version.version,
                          arm="challenger", endpoint="predict", request_id=uuid.uuid4().hex,
                          code="internal_error", status_code=500, created_at=timezone.now())
        for _ in range(n)])


def after_bake(version) -> timezone.datetime:
    return fresh(version).canary_until + timedelta(minutes=1)


def last_row(version) -> ModelTransition:
    return ModelTransition.objects.filter(version=version).order_by("-sequence").first()


def test_canary_start_takes_its_share_and_records_the_plan(champion, canary):
    canary = fresh(canary)

    assert (canary.status, canary.traffic_percentage) == ("staging", 20)
    assert fresh(champion).traffic_percentage == 80
    row = last_row(canary)
    assert row.reason == "canary_started" and (row.traffic_before, row.traffic_after) == (0, 20)
    assert "20% of traffic for 30 min" in row.notes
    assert canary.canary_until - row.created_at == timedelta(minutes=30)


def test_canary_with_an_injected_error_rate_is_rolled_back_with_an_alert(champion, canary):
    answered(champion, arm="champion", n=200)
    answered(canary, arm="challenger", n=40)
    failed(canary, n=10)  # 20 % of the canary's requests fail

    [check] = canary_check_all(now=timezone.now() + timedelta(minutes=5))

    assert check.decision == "rolled_back"
    assert set(check.breaches) == {"slo_error_rate", "error_rate_increase"}
    canary = fresh(canary)
    assert (canary.status, canary.traffic_percentage, canary.canary_until) == ("staging", 0,
                                                                              None)
    assert fresh(champion).traffic_percentage == 100
    row = last_row(canary)
    assert (row.reason, row.actor.username) == ("canary_rolled_back",
                                                django_settings.SYSTEM_USERNAME)
    assert (row.traffic_before, row.traffic_after) == (20, 0)
    assert "error rate 20.00%" in row.notes and "50 requests" in row.notes
    alert = Alert.objects.get()
    assert (alert.kind, alert.severity, alert.version) == ("canary", "critical", "1.1.0")
    assert alert.payload["canary_check_id"] == check.pk
    assert registry.audit_verify_model(model=champion.model).ok


def test_an_error_rate_over_the_champions_by_more_than_the_margin_rolls_back(
        champion, canary, settings):
    settings.SLO_MAX_ERROR_RATE = 0.5  # within the SLO: only the comparison can catch it
    answered(champion, arm="champion", n=200)
    answered(canary, arm="challenger", n=97)
    failed(canary, n=3)  # 3 % against the champion's 0 %

    check = canary_check(canary=fresh(canary), now=timezone.now() + timedelta(minutes=5))

    assert (check.decision, check.breaches) == ("rolled_back", ["error_rate_increase"])
    assert "against the champion's 0.00%" in check.reason


def test_a_healthy_canary_bakes_then_is_promoted_by_the_system(champion, canary):
    answered(champion, arm="champion", n=200)
    answered(canary, arm="challenger", n=50)

    early = canary_check(canary=fresh(canary), now=timezone.now() + timedelta(minutes=5))
    assert early.decision == "baking"
    assert fresh(canary).traffic_percentage == 20

    check = canary_check(canary=fresh(canary), now=after_bake(canary))

    assert check.decision == "promoted" and check.breaches == []
    canary = fresh(canary)
    assert (canary.status, canary.traffic_percentage, canary.canary_until) == (
        "production", 100, None)
    assert fresh(champion).status == "archived"
    row = last_row(canary)
    assert (row.reason, row.actor.username) == ("canary_promoted",
                                                django_settings.SYSTEM_USERNAME)
    assert "1.1.0: 50 requests, 0 failed" in row.notes
    assert "1.0.0: 200 requests" in row.notes
    assert not Alert.objects.exists()
    assert registry.audit_verify_model(model=champion.model).ok


def test_a_canary_with_too_few_requests_is_held_at_the_end_of_its_bake(champion, canary):
    answered(canary, arm="challenger", n=5)

    check = canary_check(canary=fresh(canary), now=after_bake(canary))

    assert check.decision == "held"
    assert "only 5 requests" in check.reason
    assert (fresh(canary).status, fresh(canary).traffic_percentage) == ("staging", 20)


def test_a_canary_whose_inputs_drift_alone_is_rolled_back(people, deployer, settings):
    settings.DRIFT_MIN_SAMPLES = 100
    champion = register_profiled_version(**people)
    canary = register_profiled_version(**people, seed=1, canary=20, bake_minutes=60)
    at = timezone.now()
    prediction_logs_create(version=champion, frame=(frame := drift_frame(n=300, seed=5)),
                           values=drift_outputs(frame), created_at=at)
    shifted = drift_frame(n=150, seed=6, shift={"followers": 800.0})
    prediction_logs_create(version=canary, frame=shifted, values=drift_outputs(shifted),
                           created_at=at, arm="challenger")

    check = canary_check(canary=fresh(canary), now=at + timedelta(minutes=5))

    assert check.breaches == ["drift"] and check.decision == "rolled_back"
    assert "followers" in check.reason
    assert check.arms["champion"]["drift"]["alarming"] is False
    assert Alert.objects.get().kind == "canary"


def test_drift_of_the_traffic_itself_is_not_the_canarys_fault(people, deployer, settings):
    settings.DRIFT_MIN_SAMPLES = 100
    champion = register_profiled_version(**people)
    canary = register_profiled_version(**people, seed=1, canary=20, bake_minutes=60)
    at = timezone.now()
    for version, arm, seed in ((champion, "champion", 5), (canary, "challenger", 6)):
        shifted = drift_frame(n=150, seed=seed, shift={"followers": 800.0})
        prediction_logs_create(version=version, frame=shifted, values=drift_outputs(shifted),
                               created_at=at, arm=arm)

    check = canary_check(canary=fresh(canary), now=at + timedelta(minutes=5))

    assert check.arms["canary"]["drift"]["alarming"] is True
    assert (check.decision, check.breaches) == ("baking", [])


def test_the_guard_leaves_a_canary_that_was_ended_meanwhile(champion, canary, deployer):
    answered(canary, arm="challenger", n=40)
    failed(canary, n=10)
    stale = fresh(canary)
    services.model_version_end_test(version=stale, user=deployer)

    check = canary_check(canary=stale, now=timezone.now() + timedelta(minutes=5))

    assert check.decision == "ended"
    assert last_row(canary).reason == "test_ended"
    assert not Alert.objects.exists()


def test_a_canary_needs_a_bake_time_within_the_limit(champion, people, deployer, settings):
    settings.CANARY_MAX_BAKE_MINUTES = 120
    version = register_approved_version(**people, slope=3.0)

    with pytest.raises(ValidationError, match="both its traffic share and its bake time"):
        services.model_version_deploy(version=version, user=deployer, canary=20)
    with pytest.raises(ValidationError, match="between 1 and 120 minutes"):
        canary_start(version, deployer, bake_minutes=121)
    assert fresh(version).traffic_percentage == 0


def test_one_canary_per_model(champion, canary, people, deployer):
    second = register_approved_version(**people, slope=4.0)

    with pytest.raises(IllegalTransitionError, match=r"1\.1\.0 is already a canary"):
        canary_start(second, deployer, traffic=10)


def test_an_experiment_name_names_the_ab_test_in_its_evaluation_and_alert(
        champion, people, deployer, settings):
    settings.SLO_MIN_REQUESTS = 10
    challenger = register_deployed_version(**people, slope=3.0, traffic=20)
    services.model_version_end_test(version=challenger, user=deployer)
    services.model_version_deploy(version=challenger, user=deployer, traffic=20,
                                  experiment="spring-pricing")
    answered(challenger, arm="challenger", n=10)
    failed(challenger, n=10)

    [evaluation] = ab_evaluate(model_name=champion.model.name,
                               now=timezone.now() + timedelta(minutes=1))

    assert evaluation.experiment == "spring-pricing"
    assert "A/B test spring-pricing stopped automatically" in Alert.objects.get().message
    assert "experiment spring-pricing" in ModelTransition.objects.filter(
        version=challenger, reason="ab_test_started").last().notes
    assert fresh(challenger).experiment == ""  # the name lasts as long as the test


@pytest.mark.parametrize(("experiment", "mode"), [("spring pricing!", {"traffic": 20}),
                                                  ("spring", {"shadow": True}),
                                                  ("spring", {})])
def test_an_experiment_name_is_refused_where_it_names_nothing_or_is_malformed(
        champion, people, deployer, experiment, mode):
    version = register_approved_version(**people, slope=3.0)

    with pytest.raises(ValidationError):
        services.model_version_deploy(version=version, user=deployer, experiment=experiment,
                                      **mode)
    assert fresh(version).status == "staging" and fresh(version).traffic_percentage == 0


def test_deploy_command_starts_a_named_canary(champion, people, deployer):
    version = register_approved_version(**people, slope=3.0)
    out = StringIO()

    call_command("deploy", champion.model.name, version.version, "--user", deployer.username,
                 "--canary", "15", "--bake-minutes", "45", "--experiment", "fall-fit",
                 stdout=out)

    assert "deployed as canary with 15% of traffic, promoted at" in out.getvalue()
    assert "(experiment fall-fit)" in out.getvalue()
    assert (fresh(version).traffic_percentage, fresh(version).experiment) == (15, "fall-fit")


def test_check_canaries_and_status_report_the_canary(champion, canary):
    answered(canary, arm="challenger", n=5)
    out, status = StringIO(), StringIO()

    call_command("check_canaries", "--model", champion.model.name, stdout=out)
    call_command("status", champion.model.name, "--json", stdout=status)

    assert f"{champion.model.name} 1.1.0: baking" in out.getvalue()
    [model] = json.loads(status.getvalue())
    assert model["canary"]["decision"] == "baking" and model["canary"]["canary"] == "1.1.0"
    live = {entry["version"]: entry for entry in model["live"]}
    assert live["1.1.0"]["canary_until"] is not None


def test_the_admin_starts_a_canary_and_the_dashboard_shows_it(champion, people, deployer,
                                                             reviewer, client):
    version = register_approved_version(**people, slope=3.0)
    client.force_login(deployer)

    response = client.post(reverse("admin:mlregistry_mlmodelversion_canary", args=[version.pk]),
                           {"traffic": "25", "bake_minutes": "60", "experiment": "autumn",
                            "notes": "watch it"})

    assert response.status_code == 302
    assert (fresh(version).traffic_percentage, fresh(version).experiment) == (25, "autumn")
    canary_check_all()
    client.force_login(reviewer)
    page = client.get("/admin/monitoring/dashboard/", {"model": champion.model.name})
    text = page.content.decode()
    assert "canary, promoted at" in text and "autumn" in text
    assert 'id="canary-decision">Baking' in text
    assert CanaryCheck.objects.get().experiment == "autumn"
