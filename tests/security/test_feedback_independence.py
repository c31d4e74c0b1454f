"""Feedback that cannot steer alone (docs/monitoring.md#independent-evidence).

The attack: one client's key asks for 240 predictions of a model whose challenger has half
the traffic, and posts the true value for every champion answer and the answer plus 100
for every challenger answer. Its outcomes alone must not stop the challenger (nor crown
either arm for "promote winner"); the same test with two honest clients still stops a
clearly worse challenger. Everything goes through the API: predict, then feedback.
"""

import numpy
import pytest
from django.utils import timezone

from mlregistry.models import ModelTransition
from monitoring.ab import NoWinnerError, ab_evaluate, ab_promote_winner
from monitoring.models import ABEvaluation, Alert
from predictions import services as serving
from predictions.models import SCOPES, PredictionLog
from tests.factories import register_deployed_version, registry_state
from tests.predictions.conftest import JSONClient

MODEL = "engagement-likes"
REQUESTS = 240


@pytest.fixture
def ab_test(people):
    """Champion 1.0.0 (likes = followers + hashtags) and challenger 1.1.0 (three times the
    followers) with 50% of the traffic."""
    champion = register_deployed_version(**people, name=MODEL, slope=1.0)
    challenger = register_deployed_version(**people, name=MODEL, slope=3.0, traffic=50)
    return champion, challenger


def client_key(client_id: str) -> JSONClient:
    _, key = serving.api_key_create(name=f"{client_id} integration", client_id=client_id,
                                    scopes=SCOPES)
    return JSONClient(HTTP_AUTHORIZATION=f"Api-Key {key}")


def predict(api: JSONClient, row: dict) -> dict:
    response = api.post_json(f"/api/v1/models/{MODEL}/predict", [row])
    assert response.status_code == 200, response.content
    return response.json()["predictions"][0]


def give_feedback(api: JSONClient, answer: dict, actual: float) -> None:
    response = api.post_json(f"/api/v1/predictions/{answer['prediction_id']}/feedback",
                             {"actual": actual})
    assert response.status_code == 200, response.content


def rows(seed: int):
    rng = numpy.random.default_rng(seed)
    for _ in range(REQUESTS):
        yield {"followers": float(rng.uniform(10, 100)), "hashtags": int(rng.integers(0, 5))}


@pytest.fixture
def lying_client(ab_test):
    """The attack, replayed; returns the model's registry state after it."""
    liar = client_key("mallory")
    for row in rows(seed=1):
        answer = predict(liar, row)
        lie = 100.0 if answer["arm"] == "challenger" else 0.0
        give_feedback(liar, answer, answer["value"] + lie)
    labelled = PredictionLog.objects.filter(actual_at__isnull=False)
    assert set(labelled.values_list("arm", flat=True)) == {"champion", "challenger"}
    assert set(labelled.values_list("feedback_source", flat=True)) == {"client:mallory"}
    return registry_state(ab_test[0].model_id)


def test_one_lying_client_stops_nothing_and_the_report_says_why(ab_test, lying_client):
    champion, challenger = ab_test

    [evaluation] = ab_evaluate(model_name=MODEL, now=timezone.now())

    assert (evaluation.verdict, evaluation.action) == (
        ABEvaluation.Verdict.INSUFFICIENT_INDEPENDENT_EVIDENCE, ABEvaluation.Action.NONE)
    assert "come from 1 client(s), fewer than the 2 required" in evaluation.reason
    assert evaluation.arms["challenger"]["label_sources"] == 1
    assert evaluation.arms["challenger"]["n_counted"] == 0
    assert registry_state(champion.model_id) == lying_client
    challenger.refresh_from_db()
    assert challenger.traffic_percentage == 50
    assert not Alert.objects.exists()


def test_one_lying_client_crowns_no_winner(ab_test, lying_client, deployer):
    ab_evaluate(model_name=MODEL, now=timezone.now())

    with pytest.raises(NoWinnerError, match="insufficient independent evidence"):
        ab_promote_winner(model_name=MODEL, user=deployer)

    assert registry_state(ab_test[0].model_id) == lying_client


def test_two_honest_clients_still_stop_a_clearly_worse_challenger(ab_test):
    _, challenger = ab_test
    clients = [client_key("acme"), client_key("globex")]
    noise = numpy.random.default_rng(2)
    for i, row in enumerate(rows(seed=3)):
        api = clients[i % 2]
        answer = predict(api, row)
        truth = row["followers"] + row["hashtags"] + float(noise.normal(0.0, 1.0))
        give_feedback(api, answer, truth)

    [evaluation] = ab_evaluate(model_name=MODEL, now=timezone.now())

    assert (evaluation.verdict, evaluation.action) == (
        ABEvaluation.Verdict.CHAMPION_BETTER, ABEvaluation.Action.STOPPED)
    assert evaluation.arms["challenger"]["label_sources"] == 2
    challenger.refresh_from_db()
    assert challenger.traffic_percentage == 0
    row = ModelTransition.objects.filter(version=challenger).order_by("-sequence").first()
    assert row.reason == "test_stopped_automatically"
    assert Alert.objects.get().kind == Alert.Kind.PERFORMANCE
