"""Shadow tests (monitoring.shadow): the shadow's answers paired with the champion's to the
same requests, agreement and differences, a paired test once outcomes exist, a verdict, and
"promote shadow" through the registry services."""

import json
import uuid
from datetime import timedelta

import numpy
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from scipy import stats

from mlregistry.models import MLModelVersion, ModelTransition
from monitoring.ab import NoWinnerError
from monitoring.shadow import shadow_evaluate, shadow_promote
from predictions.models import PredictionLog
from tests.commands import command_output
from tests.factories import register_deployed_classifier, register_deployed_version

pytestmark = pytest.mark.django_db


def fresh(version: MLModelVersion) -> MLModelVersion:
    return MLModelVersion.objects.get(pk=version.pk)


def answered_in_pairs(champion, shadow, *, champion_values, shadow_values, actuals,
                      champion_arm="champion") -> None:
    """One request per pair: the champion's answer (to the client) and the shadow's copy,
    with the request id, time and feature hash they share; the outcome on both."""
    at = timezone.now()
    rows = []
    for i, (mine, theirs, actual) in enumerate(zip(champion_values, shadow_values, actuals,
                                                   strict=True)):
        shared = {"model_name": champion.model.name, "request_id": uuid.uuid4().hex,
                  "routing_key_sha256": "0" * 64, "features": {"followers": float(i)},
                  "features_sha256": f"{i:064d}", "latency_ms": 1.0, "created_at": at,
                  "actual": actual, "actual_at": None if actual is None else at}
        rows += [PredictionLog(model_version=champion, arm=champion_arm, value=mine, **shared),
                 PredictionLog(model_version=shadow, arm="shadow", value=theirs, **shared)]
    PredictionLog.objects.bulk_create(rows)


def later():
    return timezone.now() + timedelta(minutes=1)


@pytest.fixture
def regression_shadow(champion, people):
    return register_deployed_version(**people, slope=3.0, shadow=True)


def test_a_better_regression_shadow_wins_by_the_wilcoxon_test(champion, regression_shadow):
    rng = numpy.random.default_rng(0)
    actual = rng.normal(100.0, 20.0, 40)
    mine, theirs = actual + rng.normal(0, 10.0, 40), actual + rng.normal(0, 2.0, 40)
    answered_in_pairs(champion, regression_shadow, champion_values=mine.tolist(),
                      shadow_values=theirs.tolist(), actuals=actual.tolist())

    [evaluation] = shadow_evaluate(model_name=champion.model.name, now=later())

    champion_errors, shadow_errors = numpy.abs(mine - actual), numpy.abs(theirs - actual)
    expected = stats.wilcoxon(shadow_errors, champion_errors)
    assert (evaluation.pairs, evaluation.labelled) == (40, 40)
    assert (evaluation.test, evaluation.verdict) == ("wilcoxon_signed_rank", "shadow_better")
    assert evaluation.p_value == pytest.approx(expected.pvalue)
    assert (evaluation.champion_metric, evaluation.shadow_metric) == (
        pytest.approx(champion_errors.mean()), pytest.approx(shadow_errors.mean()))
    differences = numpy.abs(theirs - mine)
    assert evaluation.mean_abs_difference == pytest.approx(differences.mean())
    assert evaluation.p95_abs_difference == pytest.approx(numpy.percentile(differences, 95))


def test_promote_shadow_makes_it_the_champion_with_one_audit_row(champion, regression_shadow,
                                                                 deployer):
    rng = numpy.random.default_rng(1)
    actual = rng.normal(100.0, 20.0, 40)
    answered_in_pairs(champion, regression_shadow,
                      champion_values=(actual + rng.normal(0, 10.0, 40)).tolist(),
                      shadow_values=(actual + rng.normal(0, 1.0, 40)).tolist(),
                      actuals=actual.tolist())
    [evaluation] = shadow_evaluate(model_name=champion.model.name, now=later())
    rows_before = ModelTransition.objects.filter(version=regression_shadow).count()

    winner = shadow_promote(model_name=champion.model.name, user=deployer)

    assert winner.pk == regression_shadow.pk
    shadow = fresh(regression_shadow)
    assert (shadow.status, shadow.traffic_percentage, shadow.is_shadow) == (
        "production", 100, False)
    assert fresh(champion).status == "archived"
    [row] = ModelTransition.objects.filter(version=shadow).order_by("sequence")[rows_before:]
    assert (row.reason, row.actor_id) == ("deployed", deployer.pk)
    assert f"shadow evaluation #{evaluation.pk}" in row.notes


def test_a_disagreeing_classifier_shadow_gets_a_verdict_by_mcnemars_test(people):
    champion = register_deployed_classifier(**people)
    shadow = register_deployed_classifier(**people, shadow=True)
    actual = [1] * 30 + [0] * 30
    mine = [1] * 30 + [1] * 20 + [0] * 10  # 40 right
    theirs = [1] * 28 + [0] * 2 + [0] * 30  # 58 right
    answered_in_pairs(champion, shadow, champion_values=mine, shadow_values=theirs,
                      actuals=actual)

    [evaluation] = shadow_evaluate(model_name=champion.model.name, now=later())

    assert evaluation.agreement == pytest.approx(sum(
        m == t for m, t in zip(mine, theirs, strict=True)) / 60)
    # Discordant pairs: 2 where only the champion is right, 20 where only the shadow is.
    assert evaluation.p_value == pytest.approx(stats.binomtest(20, 22, 0.5).pvalue)
    assert (evaluation.test, evaluation.statistic) == ("mcnemar_exact", 18.0)
    assert evaluation.verdict == "shadow_better"
    assert (evaluation.champion_metric, evaluation.shadow_metric) == (
        pytest.approx(40 / 60), pytest.approx(58 / 60))


def test_without_outcomes_the_disagreement_is_reported_and_the_verdict_waits(people, deployer):
    champion = register_deployed_classifier(**people)
    shadow = register_deployed_classifier(**people, shadow=True)
    answered_in_pairs(champion, shadow, champion_values=[1, 1, 0, 0],
                      shadow_values=[1, 0, 1, 0], actuals=[None] * 4)

    [evaluation] = shadow_evaluate(model_name=champion.model.name, now=later())

    assert (evaluation.pairs, evaluation.labelled, evaluation.agreement) == (4, 0, 0.5)
    assert evaluation.verdict == "inconclusive"
    assert "0 answer pairs with outcomes" in evaluation.reason
    with pytest.raises(NoWinnerError, match="inconclusive"):
        shadow_promote(model_name=champion.model.name, user=deployer)
    assert fresh(shadow).is_shadow


def test_only_the_champions_answers_are_paired(champion, regression_shadow, people):
    register_deployed_version(**people, slope=4.0, traffic=20)
    answered_in_pairs(champion, regression_shadow, champion_values=[1.0], shadow_values=[2.0],
                      actuals=[None])
    answered_in_pairs(champion, regression_shadow, champion_values=[1.0], shadow_values=[9.0],
                      actuals=[None], champion_arm="pinned")

    [evaluation] = shadow_evaluate(model_name=champion.model.name, now=later())

    assert (evaluation.pairs, evaluation.mean_abs_difference) == (1, 1.0)


def test_promote_shadow_command_refuses_without_a_winner(champion, regression_shadow,
                                                         deployer):
    shadow_evaluate(model_name=champion.model.name, now=later())

    with pytest.raises(CommandError, match="no_winner: the latest shadow evaluation"):
        call_command("promote_shadow", champion.model.name, "--user", deployer.username,
                     "--shadow", regression_shadow.version)
    assert fresh(regression_shadow).is_shadow


def test_status_and_dashboard_show_the_shadow_verdict(champion, regression_shadow, reviewer,
                                                      client):
    answered_in_pairs(champion, regression_shadow, champion_values=[1.0, 2.0],
                      shadow_values=[1.5, 2.5], actuals=[None, None])
    shadow_evaluate(model_name=champion.model.name, now=later())

    [model] = json.loads(command_output("status", champion.model.name, "--json"))
    client.force_login(reviewer)
    page = client.get("/admin/monitoring/dashboard/", {"model": champion.model.name})

    [shadow] = model["shadow_tests"]
    assert (shadow["shadow"], shadow["verdict"], shadow["pairs"]) == ("1.1.0", "inconclusive", 2)
    assert shadow["mean_abs_difference"] == 0.5
    assert 'data-shadow="1.1.0"' in page.content.decode()
