"""Routing through the API (docs/registry.md#deployment, docs/api.md#predict): sticky
champion/challenger assignment, shadows that are logged and never returned, and per-client models
with the global one as fallback."""

import pytest

from mlregistry import services as registry
from predictions import services as serving
from predictions.models import PredictionLog
from predictions.routing import Challenger, challenger_for

LIKES = "engagement-likes"
PREDICT = f"/api/v1/models/{LIKES}/predict"
KEYS = [f"user-{i}" for i in range(40)]


@pytest.fixture
def challenger(demo_models, version_copy):
    """A second version of engagement-likes taking 30 % of the traffic."""
    version = version_copy(of=demo_models.version(LIKES), people=demo_models.people)
    return registry.model_version_deploy(version=version, user=demo_models.people["deployer"],
                                         traffic=30, notes="A/B test")


@pytest.fixture
def shadow(demo_models, version_copy):
    version = version_copy(of=demo_models.version(LIKES), people=demo_models.people)
    return registry.model_version_deploy(version=version, user=demo_models.people["deployer"],
                                         shadow=True, notes="shadow test")


def expected_arm(key: str, challenger) -> str:
    chosen = challenger_for(routing_key=key, model_name=LIKES, challengers=[
        Challenger(version_id=challenger.pk, traffic_percentage=30)])
    return "challenger" if chosen == challenger.pk else "champion"


def predict(api_client, demo_models, key: str) -> dict:
    response = api_client.post_json(PREDICT, {"instances": demo_models.instances(LIKES),
                                              "routing_key": key})
    assert response.status_code == 200, response.json()
    return response.json()["predictions"][0]


def test_routing_key_decides_the_arm_as_the_routing_function_does(demo_models, api_client,
                                                                  challenger):
    champion = demo_models.version(LIKES)
    versions = {"champion": champion.version, "challenger": challenger.version}

    answers = {key: predict(api_client, demo_models, key) for key in KEYS}

    for key, answer in answers.items():
        arm = expected_arm(key, challenger)
        assert (answer["arm"], answer["version"]) == (arm, versions[arm]), key
    assert {answer["arm"] for answer in answers.values()} == {"champion", "challenger"}
    logged = dict(PredictionLog.objects.values_list("arm", "model_version_id").distinct())
    assert logged == {"champion": champion.pk, "challenger": challenger.pk}


def test_same_routing_key_always_gets_the_same_arm_and_version(demo_models, api_client,
                                                               challenger):
    key = next(k for k in KEYS if expected_arm(k, challenger) == "challenger")

    answers = [predict(api_client, demo_models, key) for _ in range(5)]

    assert {(a["arm"], a["version"], a["model_sha256"]) for a in answers} == {
        ("challenger", challenger.version, challenger.model_sha256)}
    assert PredictionLog.objects.filter(arm="challenger").count() == 5


def test_shadow_is_logged_with_the_request_and_never_returned(demo_models, api_client, shadow):
    champion = demo_models.version(LIKES)

    response = api_client.post_json(PREDICT, {"instances": demo_models.instances(LIKES, n=3)},
                                     HTTP_X_REQUEST_ID="shadowed-1")

    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert {(p["arm"], p["version"]) for p in predictions} == {("champion", champion.version)}
    returned = {p["prediction_id"] for p in predictions}
    shadows = PredictionLog.objects.filter(arm="shadow")
    assert shadows.count() == 3
    assert set(shadows.values_list("request_id", flat=True)) == {"shadowed-1"}
    assert set(shadows.values_list("model_version_id", flat=True)) == {shadow.pk}
    assert not returned & {str(pk) for pk in shadows.values_list("prediction_id", flat=True)}
    champion_rows = PredictionLog.objects.filter(arm="champion")
    assert {str(pk) for pk in champion_rows.values_list("prediction_id", flat=True)} == returned
    # The shadow saw the same inputs: same hashes as the champion's rows.
    assert (sorted(shadows.values_list("features_sha256", flat=True))
            == sorted(champion_rows.values_list("features_sha256", flat=True)))


@pytest.fixture
def acme_model(demo_models, version_copy):
    """engagement-likes--acme, acme's own model, in production."""
    version = version_copy(of=demo_models.version(LIKES), people=demo_models.people,
                           name=f"{LIKES}--acme", client_id="acme")
    return registry.model_version_deploy(version=version, user=demo_models.people["deployer"],
                                         notes="acme's model")


def test_client_with_its_own_model_is_served_by_it(demo_models, api_client, acme_model):
    response = api_client.post_json(PREDICT, {"instances": demo_models.instances(LIKES),
                                              "client_id": "acme"})

    assert response.status_code == 200
    body = response.json()
    assert (body["model"], body["served_by"], body["scope"]) == (
        LIKES, f"{LIKES}--acme", "client")
    assert body["predictions"][0]["model_sha256"] == acme_model.model_sha256
    log = PredictionLog.objects.get()
    assert (log.model_version_id, log.client_id) == (acme_model.pk, "acme")


def test_client_without_its_own_model_is_served_by_the_global_one(demo_models, api_client,
                                                                  acme_model):
    response = api_client.post_json(PREDICT, {"instances": demo_models.instances(LIKES),
                                              "client_id": "globex"})

    assert response.status_code == 200
    body = response.json()
    assert (body["served_by"], body["scope"]) == (LIKES, "global")
    log = PredictionLog.objects.get()
    assert (log.model_version_id, log.client_id) == (demo_models.version(LIKES).pk, "globex")


def test_clients_own_model_named_directly_answers_with_client_scope(demo_models, api_client,
                                                                   acme_model):
    response = api_client.post_json(f"/api/v1/models/{LIKES}--acme/predict",
                                    {"instances": demo_models.instances(LIKES)})

    assert response.status_code == 200
    body = response.json()
    assert (body["model"], body["served_by"], body["scope"]) == (
        f"{LIKES}--acme", f"{LIKES}--acme", "client")


def test_client_bound_key_is_served_by_its_clients_model(demo_models, anonymous_client,
                                                         acme_model):
    _, key = serving.api_key_create(name="acme", client_id="acme")

    response = anonymous_client.post_json(PREDICT, demo_models.instances(LIKES),
                                          HTTP_AUTHORIZATION=f"Api-Key {key}")

    assert response.status_code == 200
    assert (response.json()["served_by"], response.json()["scope"]) == (f"{LIKES}--acme",
                                                                        "client")
    assert PredictionLog.objects.get().client_id == "acme"
