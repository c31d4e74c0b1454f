"""POST /api/v1/models/{name}/predict (docs/api.md#predict): answers equal the model's own output,
in the documented shape, and every answered prediction is logged once (PII dropped)."""

import uuid

import numpy
import pytest

from core.ml.compiled import CompiledModel
from core.ml.schema import feature_spec, output_lower_bound
from predictions.loader import model_cache
from predictions.models import PredictionFailure, PredictionLog
from tests.factories import register_deployed_version, tiny_estimator

REGRESSIONS = ["engagement-likes", "engagement-comments"]
ALL_MODELS = [*REGRESSIONS, "lead-conversion", "engagement-anomaly"]
BATCH = 50


def predict_url(name: str) -> str:
    return f"/api/v1/models/{name}/predict"


def assert_matches_estimator(demo_models, name: str, instances: list[dict], predictions: list):
    estimator = demo_models.estimator(name)
    frame = demo_models.frame_of(name, instances)
    values = [p["value"] for p in predictions]
    task = demo_models.version(name).model.task
    if task == "regression":
        # A count is never answered below 0 (docs/training.md#count-targets).
        raw = numpy.asarray(estimator.predict(frame), dtype=float)
        lower = output_lower_bound(demo_models.schema(name))
        assert values == (raw if lower is None else numpy.maximum(raw, lower)).tolist()
        assert all("probabilities" not in p and "anomaly_score" not in p for p in predictions)
    elif task == "binary_classification":
        assert values == estimator.predict(frame).tolist()
        expected = estimator.predict_proba(frame)
        labels = [str(label) for label in estimator.classes_.tolist()]
        assert [p["probabilities"] for p in predictions] == [
            dict(zip(labels, row.tolist(), strict=True)) for row in expected]
    else:
        assert values == (estimator.predict(frame) == -1).tolist()
        assert [p["anomaly_score"] for p in predictions] == estimator.decision_function(
            frame).tolist()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_predict_single_instance_equals_the_estimators_output(demo_models, api_client, name):
    instances = demo_models.instances(name, n=1, start=7)

    response = api_client.post_json(predict_url(name), {"instances": instances})

    assert response.status_code == 200, response.json()
    assert_matches_estimator(demo_models, name, instances, response.json()["predictions"])
    assert PredictionLog.objects.count() == 1


@pytest.mark.parametrize("name", ALL_MODELS)
def test_predict_batch_equals_the_estimators_output_row_by_row(demo_models, api_client, name):
    instances = demo_models.instances(name, n=BATCH, start=100)

    response = api_client.post_json(predict_url(name), {"instances": instances})

    assert response.status_code == 200, response.json()
    predictions = response.json()["predictions"]
    assert len(predictions) == BATCH
    assert_matches_estimator(demo_models, name, instances, predictions)
    assert PredictionLog.objects.count() == BATCH


@pytest.mark.parametrize("name", ALL_MODELS)
def test_demo_models_answer_through_the_compiled_path(demo_models, api_client, name):
    api_client.post_json(predict_url(name), {"instances": demo_models.instances(name, n=1)})

    live, _ = model_cache.live_model(model_name=name)
    served = model_cache.served(live.champion)
    assert isinstance(served.model, CompiledModel), served.not_compiled_because


def test_predict_accepts_a_bare_array_of_instances(demo_models, api_client):
    instances = demo_models.instances("lead-conversion", n=3)

    response = api_client.post_json(predict_url("lead-conversion"), instances)

    assert response.status_code == 200, response.json()
    assert_matches_estimator(demo_models, "lead-conversion", instances,
                             response.json()["predictions"])
    assert PredictionLog.objects.count() == 3


def test_predict_response_has_exactly_the_documented_fields(demo_models, api_client):
    version = demo_models.version("lead-conversion")

    response = api_client.post_json(predict_url("lead-conversion"),
                                    {"instances": demo_models.instances("lead-conversion", n=2)},
                                    HTTP_X_REQUEST_ID="req-fields-1")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"schema_version", "request_id", "model", "served_by", "scope",
                         "predictions"}
    assert body["schema_version"] == "v1"
    assert body["request_id"] == "req-fields-1" == response["X-Request-ID"]
    assert body["model"] == "lead-conversion"
    assert (body["served_by"], body["scope"]) == ("lead-conversion", "global")
    for prediction in body["predictions"]:
        assert set(prediction) == {"prediction_id", "version", "model_sha256", "arm", "value",
                                   "probabilities"}
        uuid.UUID(prediction["prediction_id"])
        assert prediction["version"] == version.version
        assert prediction["model_sha256"] == version.model_sha256
        assert prediction["arm"] == "champion"
        assert set(prediction["probabilities"]) == {"0", "1"}


def test_anomaly_prediction_has_a_boolean_value_and_a_score(demo_models, api_client):
    response = api_client.post_json(predict_url("engagement-anomaly"),
                                    {"instances": demo_models.instances("engagement-anomaly")})

    assert response.status_code == 200
    (prediction,) = response.json()["predictions"]
    assert set(prediction) == {"prediction_id", "version", "model_sha256", "arm", "value",
                               "anomaly_score"}
    assert isinstance(prediction["value"], bool)
    assert isinstance(prediction["anomaly_score"], float)


def test_every_answered_prediction_is_logged_once_under_its_id(demo_models, api_client):
    instances = demo_models.instances("engagement-likes", n=5, start=20)
    version = demo_models.version("engagement-likes")

    response = api_client.post_json(predict_url("engagement-likes"),
                                    {"instances": instances, "routing_key": "user-42",
                                     "client_id": "globex"},
                                    HTTP_X_REQUEST_ID="req-logged-1")

    assert response.status_code == 200
    predictions = response.json()["predictions"]
    logs = {str(log.prediction_id): log for log in PredictionLog.objects.all()}
    assert set(logs) == {p["prediction_id"] for p in predictions}
    for prediction, instance in zip(predictions, instances, strict=True):
        log = logs[prediction["prediction_id"]]
        assert log.model_version_id == version.pk
        assert (log.arm, log.request_id, log.client_id) == ("champion", "req-logged-1", "globex")
        assert log.value == prediction["value"]
        assert log.features == instance
        assert log.actual is None and log.actual_at is None


# The factories' tiny LinearRegression was fitted on an array; served a frame, it warns.
tiny_model = pytest.mark.filterwarnings("ignore:X has feature names:UserWarning")


@pytest.fixture
def pii_model(people):
    """A live model whose schema carries a PII attribute (audit-only, never logged)."""
    schema = {"target": "likes", "features": [
        feature_spec(name="followers", dtype="float"),
        feature_spec(name="hashtags", dtype="int"),
        feature_spec(name="email", dtype="category", pii=True, input=False),
    ]}
    return register_deployed_version(**people, name="pii-likes", schema=schema)


@tiny_model
def test_predict_drops_pii_fields_from_the_log(pii_model, api_client):
    instance = {"followers": 120.0, "hashtags": 3, "email": "ana@example.com"}

    response = api_client.post_json(predict_url("pii-likes"), {"instances": [instance]})

    assert response.status_code == 200, response.json()
    log = PredictionLog.objects.get()
    assert str(log.prediction_id) == response.json()["predictions"][0]["prediction_id"]
    assert log.features == {"followers": 120.0, "hashtags": 3}
    assert "ana@example.com" not in str(log.features)


@tiny_model
def test_predict_is_served_when_the_models_explainer_cannot_be_built(people, api_client):
    # Without a reference profile the explainer's background is all missing values, which
    # a bare LinearRegression refuses: explaining fails, predicting must not.
    register_deployed_version(**people, name="unexplainable", slope=3.0)

    response = api_client.post_json(predict_url("unexplainable"),
                                    [{"followers": 2.0, "hashtags": 1}])

    assert response.status_code == 200, response.json()
    expected = tiny_estimator(3.0).predict(numpy.array([[2.0, 1.0]]))[0]
    assert response.json()["predictions"][0]["value"] == pytest.approx(expected)
    assert PredictionLog.objects.count() == 1


@tiny_model
def test_a_model_answering_a_value_that_is_not_a_number_fails_and_logs_nothing(
        people, api_client):
    register_deployed_version(**people, name="broken-likes", slope=3.0)
    instance = {"followers": 2.0, "hashtags": 1}
    assert api_client.post_json(predict_url("broken-likes"), [instance]).status_code == 200
    live_model, _ = model_cache.live_model(model_name="broken-likes", client_id="")
    model_cache.served(live_model.champion).estimator.coef_[:] = numpy.nan  # answers NaN

    response = api_client.post_json(predict_url("broken-likes"), [instance])

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert PredictionLog.objects.count() == 1
    assert PredictionFailure.objects.get().code == "internal_error"
