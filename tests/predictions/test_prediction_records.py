"""GET /api/v1/predictions/{prediction_id} and .../explanation (docs/api.md#prediction-records):
the logged record of an answered prediction, and its explanation by the version that
answered it, live or not, after verifying that version's artifacts."""

import numpy
import pandas
import pytest
from django.utils import timezone

from core.ml.profile import reference_profile_build
from core.ml.schema import feature_spec
from mlregistry import registration
from mlregistry import services as registry
from monitoring.models import Alert
from predictions import services as serving
from predictions.models import SCOPE_EXPLAIN, SCOPE_PREDICT, SCOPE_READ, SCOPES, PredictionLog
from tests.factories import SCHEMA, artifact_tamper, register_deployed_version
from tests.predictions.conftest import JSONClient

MODEL = "record-likes"
# An audit-only personal feature: accepted in a request, never stored or returned.
PERSONAL_SCHEMA = {**SCHEMA, "features": [
    *SCHEMA["features"],
    feature_spec(name="email", dtype="category", pii=True, input=False)]}
EMAIL = "ada@example.com"


@pytest.fixture(autouse=True)
def artifact_dir(tmp_path, settings):
    """Each test stores artifacts in its own folder (tests/predictions/conftest.py shares
    one per module): these tests tamper with files and clean them up."""
    settings.STORAGES = {**settings.STORAGES, "artifacts": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "artifacts")}}}


def training_profile(schema: dict) -> dict:
    """A reference profile of rows like the tiny estimator's: the explainer's background."""
    rng = numpy.random.default_rng(0)
    frame = pandas.DataFrame({"followers": rng.normal(10.0, 3.0, 200),
                              "hashtags": rng.poisson(3.0, 200)})
    return reference_profile_build(frame=frame, schema=schema, seed=0,
                                   outputs=2.0 * frame["followers"] + frame["hashtags"])


def deployed(people, *, slope: float, schema: dict = SCHEMA):
    """A version answering `slope * followers + hashtags`, deployed as the champion."""
    return register_deployed_version(**people, name=MODEL, slope=slope, schema=schema,
                                     reference_profile=training_profile(schema))


def key_client(*, client_id: str = "", scopes=SCOPES) -> JSONClient:
    _, key = serving.api_key_create(name=f"records {client_id or 'any'}", client_id=client_id,
                                    scopes=scopes)
    return JSONClient(HTTP_AUTHORIZATION=f"Api-Key {key}")


def predicted(client: JSONClient, instance: dict, **envelope) -> dict:
    response = client.post_json(f"/api/v1/models/{MODEL}/predict",
                                {"instances": [instance], **envelope},
                                HTTP_X_REQUEST_ID="record-request-1")
    assert response.status_code == 200, response.json()
    return response.json()["predictions"][0]


def record_url(prediction_id: str) -> str:
    return f"/api/v1/predictions/{prediction_id}"


def explanation_url(prediction_id: str) -> str:
    return f"/api/v1/predictions/{prediction_id}/explanation"


INSTANCE = {"followers": 12.5, "hashtags": 4}


# --- the record --------------------------------------------------------------------------


def test_record_is_the_logged_answer_with_its_version_and_request(people, api_client):
    version = deployed(people, slope=2.0)
    answer = predicted(api_client, INSTANCE)

    response = api_client.get(record_url(answer["prediction_id"]))

    assert response.status_code == 200, response.json()
    record = response.json()
    log = PredictionLog.objects.get(prediction_id=answer["prediction_id"])
    assert record == {
        "prediction_id": answer["prediction_id"], "model": MODEL, "version": version.version,
        "model_sha256": version.model_sha256, "arm": "champion",
        "request_id": "record-request-1", "client_id": "",
        "created_at": log.created_at.isoformat().replace("+00:00", "Z"),
        "inputs": INSTANCE, "value": answer["value"], "outcome": None,
    }


def test_record_carries_the_outcome_once_it_is_posted(people, api_client, api_key):
    deployed(people, slope=2.0)
    answer = predicted(api_client, INSTANCE)
    posted = api_client.post_json(f"{record_url(answer['prediction_id'])}/feedback",
                                  {"actual": 30})
    assert posted.status_code == 200

    response = api_client.get(record_url(answer["prediction_id"]))

    assert response.status_code == 200
    assert response.json()["outcome"] == {"actual": 30.0, "actual_at": posted.json()["actual_at"],
                                          "source": f"key:{api_key[0].prefix}"}


def test_record_never_returns_a_personal_feature_of_the_request(people, api_client):
    deployed(people, slope=2.0, schema=PERSONAL_SCHEMA)
    answer = predicted(api_client, {**INSTANCE, "email": EMAIL})

    response = api_client.get(record_url(answer["prediction_id"]))

    assert response.status_code == 200
    assert response.json()["inputs"] == INSTANCE
    assert EMAIL not in response.content.decode()


def test_record_leaves_out_a_personal_feature_whatever_wrote_the_row(people, api_client):
    version = deployed(people, slope=2.0, schema=PERSONAL_SCHEMA)
    log = PredictionLog.objects.create(
        model_version=version, model_name=MODEL, arm="champion", request_id="imported",
        routing_key_sha256="0" * 64, features={**INSTANCE, "email": EMAIL},
        features_sha256="0" * 64, value=29.0, latency_ms=1.0, created_at=timezone.now())

    response = api_client.get(record_url(log.prediction_id))

    assert response.status_code == 200
    assert response.json()["inputs"] == INSTANCE
    assert EMAIL not in response.content.decode()


def test_record_of_another_clients_prediction_is_not_found(people, api_client):
    deployed(people, slope=2.0)
    answer = predicted(api_client, INSTANCE, client_id="acme")

    response = key_client(client_id="globex").get(record_url(answer["prediction_id"]))

    # 404 as for an id never issued: a 403 would tell globex that the prediction exists.
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "prediction_not_found"


def test_record_of_its_own_clients_prediction_is_found_by_a_bound_key(people, api_client):
    deployed(people, slope=2.0)
    answer = predicted(api_client, INSTANCE, client_id="acme")

    response = key_client(client_id="acme").get(record_url(answer["prediction_id"]))

    assert response.status_code == 200
    assert response.json()["client_id"] == "acme"


def test_record_of_a_shadow_prediction_is_not_found(people, api_client):
    deployed(people, slope=2.0)
    shadow = register_deployed_version(**people, name=MODEL, slope=5.0, shadow=True,
                                       reference_profile=training_profile(SCHEMA))
    predicted(api_client, INSTANCE)
    shadow_row = PredictionLog.objects.get(model_version=shadow)

    response = api_client.get(record_url(shadow_row.prediction_id))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "prediction_not_found"


def test_record_needs_the_read_scope(people, api_client):
    deployed(people, slope=2.0)
    answer = predicted(api_client, INSTANCE)

    response = key_client(scopes=[SCOPE_PREDICT, SCOPE_EXPLAIN]).get(
        record_url(answer["prediction_id"]))

    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"scope": SCOPE_READ}


# --- its explanation ---------------------------------------------------------------------


def test_explanation_after_a_rollback_is_by_the_version_that_answered(people, api_client):
    restored = deployed(people, slope=1.0)
    answering = deployed(people, slope=3.0)
    answer = predicted(api_client, INSTANCE)
    registry.model_rollback(model=answering.model, user=people["deployer"], reason="test")
    live_answer = predicted(api_client, INSTANCE)

    response = api_client.get(explanation_url(answer["prediction_id"]))

    assert response.status_code == 200, response.json()
    body = response.json()
    explanation = body["explanation"]
    assert (body["version"], body["model_sha256"]) == (answering.version,
                                                       answering.model_sha256)
    assert explanation["version"] == answering.version
    assert explanation["value"] == pytest.approx(answer["value"], rel=1e-9)
    # The live version answers the same instance otherwise: it was not the one explained.
    assert live_answer["version"] == restored.version
    assert live_answer["value"] != pytest.approx(answer["value"])
    total = explanation["base_value"] + sum(explanation["contributions"].values())
    assert total == pytest.approx(explanation["value"], rel=1e-6)


def test_explanation_after_artifact_cleanup_is_gone(people, api_client, settings):
    answering = deployed(people, slope=1.0)
    answer = predicted(api_client, INSTANCE)
    deployed(people, slope=3.0)
    settings.ARTIFACT_KEEP_PRIOR_PRODUCTION = 0
    registration.artifact_cleanup()

    response = api_client.get(explanation_url(answer["prediction_id"]))

    assert response.status_code == 410
    error = response.json()["error"]
    assert error["code"] == "version_unavailable"
    assert error["details"]["version"] == answering.version


def test_explanation_by_a_tampered_retired_version_is_refused(people, api_client):
    answering = deployed(people, slope=1.0)
    answer = predicted(api_client, INSTANCE)
    deployed(people, slope=3.0)
    artifact_tamper(answering)

    response = api_client.get(explanation_url(answer["prediction_id"]))

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_integrity_error"
    assert Alert.objects.filter(kind="integrity", version=answering.version).exists()


def test_explanation_of_another_clients_prediction_is_not_found(people, api_client):
    deployed(people, slope=2.0)
    answer = predicted(api_client, INSTANCE, client_id="acme")

    response = key_client(client_id="globex").get(explanation_url(answer["prediction_id"]))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "prediction_not_found"


def test_explanation_needs_the_explain_scope(people, api_client):
    deployed(people, slope=2.0)
    answer = predicted(api_client, INSTANCE)

    response = key_client(scopes=[SCOPE_READ]).get(explanation_url(answer["prediction_id"]))

    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"scope": SCOPE_EXPLAIN}


def test_explanation_of_a_version_with_a_personal_input_is_unsupported(people, api_client):
    schema = {**SCHEMA, "features": [{**SCHEMA["features"][0], "pii": True},
                                     SCHEMA["features"][1]]}
    version = deployed(people, slope=2.0, schema=schema)
    log = PredictionLog.objects.create(
        model_version=version, model_name=MODEL, arm="champion", request_id="r",
        routing_key_sha256="0" * 64, features={"hashtags": 4}, features_sha256="0" * 64,
        value=29.0, latency_ms=1.0, created_at=timezone.now())

    response = api_client.get(explanation_url(log.prediction_id))

    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("explanation_unsupported",
                                                 {"features": ["followers"]})
