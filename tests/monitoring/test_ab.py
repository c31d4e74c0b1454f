"""A/B evaluation (monitoring.ab): verdicts, the automatic stop and "promote winner"."""

from datetime import timedelta
from io import StringIO

import numpy
import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.utils import timezone
from sklearn import metrics as skm

from mlregistry import services
from mlregistry.models import MLModelVersion, ModelTransition, Status
from monitoring import selectors
from monitoring.ab import (
    NoWinnerError,
    ab_evaluate,
    ab_evaluate_all,
    ab_evaluate_challenger,
    ab_promote_winner,
)
from monitoring.models import ABEvaluation, Alert
from monitoring.significance import welch_t_test
from tests.factories import (
    labelled_logs_create,
    register_deployed_classifier,
    register_deployed_version,
    registry_state,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def challenger(champion, people):
    """Version 1.1.0 in an A/B test with 20% of traffic beside the champion."""
    return register_deployed_version(**people, slope=3.0, traffic=20)


def fresh(version: MLModelVersion) -> MLModelVersion:
    return MLModelVersion.objects.get(pk=version.pk)


def log_errors(version, *, arm, n, noise, seed, latency_ms=5.0, labelled=True):
    """`n` answered predictions of `version` made now, off their outcome by N(0, noise)."""
    rng = numpy.random.default_rng(seed)
    actual = rng.normal(100.0, 20.0, n)
    predicted = actual + rng.normal(0.0, noise, n)
    labelled_logs_create(version=version, arm=arm, values=predicted.tolist(),
                         actuals=actual.tolist() if labelled else [None] * n,
                         created_at=timezone.now(), latency_ms=latency_ms)
    return numpy.abs(actual - predicted)


def later():
    return timezone.now() + timedelta(minutes=1)


def test_clearly_worse_challenger_is_stopped_automatically(champion, challenger):
    champion_errors = log_errors(champion, arm="champion", n=40, noise=2.0, seed=1)
    challenger_errors = log_errors(challenger, arm="challenger", n=40, noise=12.0, seed=2)

    [evaluation] = ab_evaluate(model_name=champion.model.name, now=later())

    assert (evaluation.verdict, evaluation.action) == ("champion_better", "stopped")
    assert (evaluation.metric, evaluation.test) == ("mae", "welch_t")
    expected = welch_t_test(champion_errors=champion_errors, challenger_errors=challenger_errors)
    assert evaluation.p_value == pytest.approx(expected.p_value, rel=1e-9)
    assert evaluation.arms["challenger"]["metric"] == pytest.approx(challenger_errors.mean())
    assert (fresh(champion).status, fresh(champion).traffic_percentage) == ("production", 100)
    assert (fresh(challenger).status, fresh(challenger).traffic_percentage) == ("staging", 0)
    row = ModelTransition.objects.filter(version=challenger).order_by("-sequence").first()
    assert row.reason == "test_stopped_automatically"
    assert row.actor.username == django_settings.SYSTEM_USERNAME
    assert (row.traffic_before, row.traffic_after) == (20, 0)
    assert f"{challenger_errors.mean():.4f}" in row.notes
    assert f"{champion_errors.mean():.4f}" in row.notes and "mae" in row.notes
    assert evaluation.reason == row.notes
    alert = Alert.objects.get()
    assert (alert.kind, alert.model_name, alert.version) == (
        "performance", champion.model.name, challenger.version)
    assert alert.payload["ab_evaluation_id"] == evaluation.pk
    assert ABEvaluation.objects.get().pk == evaluation.pk


def test_verdict_is_inconclusive_with_too_few_labels(champion, challenger, settings):
    settings.AB_MIN_LABELLED = 30
    log_errors(champion, arm="champion", n=10, noise=2.0, seed=1)
    log_errors(challenger, arm="challenger", n=10, noise=12.0, seed=2)
    before = registry_state(champion.model_id)

    [evaluation] = ab_evaluate(model_name=champion.model.name, now=later())

    assert evaluation.p_value < settings.AB_SIGNIFICANCE_LEVEL  # the gap is real, yet
    assert (evaluation.verdict, evaluation.action) == ("inconclusive", "none")
    assert evaluation.arms["challenger"]["n_labelled"] == 10
    assert registry_state(champion.model_id) == before
    assert not Alert.objects.exists()


def test_challenger_better_is_promoted_by_promote_winner(champion, challenger, deployer):
    log_errors(champion, arm="champion", n=40, noise=12.0, seed=1)
    log_errors(challenger, arm="challenger", n=40, noise=2.0, seed=2)

    [evaluation] = ab_evaluate(model_name=champion.model.name, now=later())
    winner = ab_promote_winner(model_name=champion.model.name, user=deployer)

    assert (evaluation.verdict, evaluation.action) == ("challenger_better", "none")
    assert winner.pk == challenger.pk
    assert (fresh(challenger).status, fresh(challenger).traffic_percentage) == ("production", 100)
    assert fresh(champion).status == "archived"
    row = ModelTransition.objects.filter(version=challenger).order_by("-sequence").first()
    assert row.reason == "deployed" and row.actor_id == deployer.pk
    assert f"A/B evaluation #{evaluation.pk}" in row.notes


def test_promote_winner_ends_the_test_when_the_champion_wins(champion, challenger, deployer,
                                                             settings):
    settings.AB_MAX_DEGRADATION = 100.0  # worse, but not enough to stop it automatically
    log_errors(champion, arm="champion", n=40, noise=2.0, seed=1)
    log_errors(challenger, arm="challenger", n=40, noise=12.0, seed=2)

    [evaluation] = ab_evaluate(model_name=champion.model.name, now=later())
    winner = ab_promote_winner(model_name=champion.model.name, user=deployer)

    assert (evaluation.verdict, evaluation.action) == ("champion_better", "none")
    assert winner.pk == champion.pk and winner.traffic_percentage == 100
    assert (fresh(challenger).status, fresh(challenger).traffic_percentage) == ("staging", 0)
    assert ModelTransition.objects.filter(version=challenger).order_by(
        "-sequence").first().reason == "test_ended"


def test_promote_winner_with_inconclusive_verdict_raises_no_winner(champion, challenger,
                                                                   deployer):
    ab_evaluate(model_name=champion.model.name, now=later())  # no labels at all
    before = registry_state(champion.model_id)

    with pytest.raises(NoWinnerError) as error:
        ab_promote_winner(model_name=champion.model.name, user=deployer)

    assert error.value.code == "no_winner" and error.value.http_status == 409
    assert registry_state(champion.model_id) == before


def test_promote_winner_without_a_running_test_raises_no_winner(champion, deployer):
    with pytest.raises(NoWinnerError):
        ab_promote_winner(model_name=champion.model.name, user=deployer)


def test_challenger_breaching_the_slo_is_stopped(champion, challenger, settings):
    settings.SLO_MIN_REQUESTS = 20
    log_errors(champion, arm="champion", n=25, noise=2.0, seed=1, labelled=False)
    log_errors(challenger, arm="challenger", n=25, noise=2.0, seed=2, labelled=False,
               latency_ms=settings.SLO_P95_LATENCY_MS + 200)

    [evaluation] = ab_evaluate_all(now=later())

    assert (evaluation.verdict, evaluation.action) == ("inconclusive", "stopped")
    assert evaluation.arms["challenger"]["latency_p95_ms"] == settings.SLO_P95_LATENCY_MS + 200
    assert evaluation.arms["challenger"]["requests"] == 25
    assert fresh(challenger).traffic_percentage == 0
    assert fresh(champion).traffic_percentage == 100
    row = ModelTransition.objects.filter(version=challenger).order_by("-sequence").first()
    assert row.reason == "test_stopped_automatically" and "p95 latency 500.0 ms" in row.notes
    alert = Alert.objects.get()
    assert (alert.kind, alert.version) == ("slo", challenger.version)


def test_window_starts_when_the_test_started(champion, challenger):
    labelled_logs_create(version=champion, values=[1.0] * 5, actuals=[2.0] * 5,
                         created_at=timezone.now() - timedelta(days=1))
    log_errors(champion, arm="champion", n=3, noise=2.0, seed=1)

    [evaluation] = ab_evaluate(model_name=champion.model.name, now=later())

    started = ModelTransition.objects.get(version=challenger, reason="ab_test_started")
    assert evaluation.window_start == started.created_at
    assert evaluation.arms["champion"]["n"] == 3


def test_classifier_test_compares_accuracy_with_two_proportion_z_test(people):
    champion = register_deployed_classifier(**people)
    challenger = register_deployed_classifier(**people, traffic=30)
    for version, arm, correct in ((champion, "champion", 36), (challenger, "challenger", 12)):
        labelled_logs_create(version=version, arm=arm, values=[1] * 40,
                             actuals=[1] * correct + [0] * (40 - correct),
                             probabilities=[{"0": 0.2, "1": 0.8}] * 40, created_at=timezone.now())

    [evaluation] = ab_evaluate(model_name=champion.model.name, now=later())

    assert (evaluation.metric, evaluation.test) == ("accuracy", "two_proportion_z")
    assert evaluation.arms["champion"]["metric"] == skm.accuracy_score([1] * 36 + [0] * 4,
                                                                       [1] * 40)
    assert evaluation.statistic < 0  # the challenger is less accurate
    assert (evaluation.verdict, evaluation.action) == ("champion_better", "stopped")
    assert fresh(challenger).traffic_percentage == 0


def test_evaluate_ab_command_prints_the_verdicts(champion, challenger):
    log_errors(champion, arm="champion", n=40, noise=12.0, seed=1)
    log_errors(challenger, arm="challenger", n=40, noise=2.0, seed=2)
    out = StringIO()

    call_command("evaluate_ab", "--model", champion.model.name, stdout=out)

    assert (f"{champion.model.name}: challenger {challenger.version} against champion "
            f"{champion.version}: challenger_better") in out.getvalue()
    assert selectors.ab_evaluation_latest(model_name=champion.model.name).verdict == (
        "challenger_better")


def test_only_running_challengers_are_evaluated(champion, people):
    register_deployed_version(**people, slope=3.0, shadow=True)

    assert ab_evaluate(model_name=champion.model.name) == []
    assert MLModelVersion.objects.filter(status=Status.PRODUCTION).count() == 1


def test_test_ended_meanwhile_is_recorded_without_a_stop(champion, challenger, deployer):
    log_errors(champion, arm="champion", n=40, noise=2.0, seed=1)
    log_errors(challenger, arm="challenger", n=40, noise=12.0, seed=2)
    stale = fresh(challenger)
    services.model_version_end_test(version=challenger, user=deployer, notes="ended by hand")

    evaluation = ab_evaluate_challenger(champion=fresh(champion), challenger=stale, now=later())

    assert (evaluation.verdict, evaluation.action) == ("champion_better", "none")
    assert evaluation.reason.startswith("not stopped, the test had already ended")
    assert not ModelTransition.objects.filter(reason="test_stopped_automatically").exists()
    assert not Alert.objects.exists()
