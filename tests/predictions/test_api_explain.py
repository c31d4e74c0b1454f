"""POST /api/v1/models/{name}/explain (docs/api.md#explain): SHAP contributions that add up to the
model's own value, keyed by the input features, for one instance or up to 100."""

import pytest
from scipy.special import logit

from core.ml.compiled import CompiledModel
from predictions.loader import model_cache
from predictions.models import PredictionLog

LIKES, LEADS = "engagement-likes", "lead-conversion"


def explain_url(name: str) -> str:
    return f"/api/v1/models/{name}/explain"


def assert_adds_up(explanation: dict) -> None:
    value = explanation["value"]
    total = explanation["base_value"] + sum(explanation["contributions"].values())
    assert abs(total - value) <= 1e-6 * max(1.0, abs(value))


def test_regression_explanations_add_up_to_the_predicted_value(demo_models, api_client):
    instances = demo_models.instances(LIKES, n=20, start=40)

    response = api_client.post_json(explain_url(LIKES), {"instances": instances})

    assert response.status_code == 200, response.json()
    explanations = response.json()["explanations"]
    predicted = demo_models.estimator(LIKES).predict(demo_models.frame_of(LIKES, instances))
    assert len(explanations) == 20
    for explanation, value in zip(explanations, predicted, strict=True):
        assert explanation["output_space"] == "raw"
        assert explanation["value"] == pytest.approx(value, rel=1e-9)
        assert explanation["version"] == demo_models.version(LIKES).version
        assert "probability" not in explanation
        assert_adds_up(explanation)


def test_classifier_explanations_add_up_in_log_odds_beside_the_probability(demo_models,
                                                                           api_client):
    instances = demo_models.instances(LEADS, n=20, start=40)

    response = api_client.post_json(explain_url(LEADS), {"instances": instances})

    assert response.status_code == 200, response.json()
    probabilities = demo_models.estimator(LEADS).predict_proba(
        demo_models.frame_of(LEADS, instances))[:, 1]
    for explanation, probability in zip(response.json()["explanations"], probabilities,
                                        strict=True):
        assert explanation["output_space"] == "log_odds"
        assert explanation["probability"] == pytest.approx(probability, abs=1e-12)
        assert explanation["value"] == pytest.approx(logit(probability), abs=1e-6)
        assert_adds_up(explanation)


@pytest.mark.parametrize("name", [LIKES, LEADS])
def test_contributions_are_keyed_by_the_models_input_features(demo_models, api_client, name):
    response = api_client.post_json(explain_url(name),
                                    {"instance": demo_models.instances(name)[0]})

    assert response.status_code == 200
    (explanation,) = response.json()["explanations"]
    assert list(explanation["contributions"]) == demo_models.input_names(name)
    contributions = explanation["contributions"]
    positive = [c for c in contributions.values() if c > 0]
    negative = [c for c in contributions.values() if c < 0]
    assert [t["contribution"] for t in explanation["top_positive"]] == sorted(
        positive, reverse=True)[:3]
    assert [t["contribution"] for t in explanation["top_negative"]] == sorted(negative)[:3]
    for top in explanation["top_positive"] + explanation["top_negative"]:
        assert contributions[top["feature"]] == top["contribution"]


def test_single_instance_form_gives_one_explanation_in_the_envelope(demo_models, api_client):
    instance = demo_models.instances(LIKES, n=1, start=5)[0]

    response = api_client.post_json(explain_url(LIKES), {"instance": instance},
                                    HTTP_X_REQUEST_ID="explain-1")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"schema_version", "request_id", "model", "served_by", "scope",
                         "explanations"}
    assert (body["schema_version"], body["request_id"], body["model"]) == (
        "v1", "explain-1", LIKES)
    assert len(body["explanations"]) == 1
    assert set(body["explanations"][0]) == {"version", "output_space", "base_value", "value",
                                            "contributions", "top_positive", "top_negative"}


def test_instance_and_instances_forms_explain_alike(demo_models, api_client):
    instance = demo_models.instances(LEADS, n=1, start=9)[0]

    single = api_client.post_json(explain_url(LEADS), {"instance": instance})
    batch = api_client.post_json(explain_url(LEADS), {"instances": [instance, instance]})

    assert single.status_code == batch.status_code == 200
    (one,) = single.json()["explanations"]
    for explanation in batch.json()["explanations"]:
        assert explanation["version"] == one["version"]
        assert explanation["value"] == pytest.approx(one["value"], rel=1e-9)
        assert explanation["base_value"] == pytest.approx(one["base_value"], rel=1e-9)
        assert explanation["contributions"] == pytest.approx(one["contributions"], rel=1e-9,
                                                             abs=1e-12)


def test_explaining_logs_no_prediction(demo_models, api_client):
    response = api_client.post_json(explain_url(LIKES), {"instances":
                                                         demo_models.instances(LIKES, n=2)})

    assert response.status_code == 200
    assert PredictionLog.objects.count() == 0


def test_at_most_100_instances_are_explained(demo_models, api_client):
    response = api_client.post_json(explain_url(LIKES),
                                    {"instances": demo_models.instances(LIKES, n=100)})

    assert response.status_code == 200
    assert len(response.json()["explanations"]) == 100


def test_more_than_100_instances_is_batch_too_large(demo_models, api_client):
    response = api_client.post_json(explain_url(LIKES),
                                    {"instances": demo_models.instances(LIKES, n=101)})

    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "batch_too_large"
    assert error["details"] == {"limit": 100, "received": 101}
    assert error["request_id"] == response["X-Request-ID"]
    assert PredictionLog.objects.count() == 0


def test_instance_and_instances_together_is_a_validation_error(demo_models, api_client):
    instance = demo_models.instances(LIKES)[0]

    response = api_client.post_json(explain_url(LIKES), {"instance": instance,
                                                         "instances": [instance]})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [(d["field"], d["code"]) for d in error["details"]] == [
        ("instance", "unexpected_field")]


def test_invalid_instance_is_a_validation_error_naming_the_field(demo_models, api_client):
    instance = {**demo_models.instances(LEADS)[0], "region": "mars"}

    response = api_client.post_json(explain_url(LEADS), {"instance": instance})

    assert response.status_code == 422
    assert [(d["index"], d["field"], d["code"]) for d in response.json()["error"]["details"]] \
        == [(0, "region", "unknown_category")]


@pytest.mark.parametrize("name", [LIKES, LEADS])
def test_explain_encodes_through_the_compiled_path(demo_models, api_client, name):
    response = api_client.post_json(explain_url(name),
                                    {"instances": demo_models.instances(name, n=1)})

    assert response.status_code == 200, response.json()
    live, _ = model_cache.live_model(model_name=name)
    served = model_cache.served(live.champion)
    assert isinstance(served.model, CompiledModel)
    assert served.explainer.preprocessing is served.model
