"""Every error of docs/api.md#errors, from the request that causes it: status, `error.code`, the
request id of the envelope, and no prediction logged."""

import json
import uuid

import pytest
from django.core.cache import cache

from monitoring.models import Alert
from predictions import services as serving
from predictions.api.auth import APIKeyRateThrottle
from predictions.models import ClientAPIKey, PredictionLog
from tests.factories import artifact_tamper, register_deployed_version, register_version

LIKES = "engagement-likes"
PREDICT = f"/api/v1/models/{LIKES}/predict"


def assert_error(response, status: int, code: str) -> dict:
    """The docs/api.md#errors envelope with this status and code; returns `error`."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "request_id", "details"}
    assert error["code"] == code
    assert error["request_id"] == response["X-Request-ID"]
    assert error["message"]
    return error


def feedback_url(prediction_id) -> str:
    return f"/api/v1/predictions/{prediction_id}/feedback"


# --- 400 malformed_json ------------------------------------------------------------------


@pytest.mark.parametrize("raw", ['{"instances": [', "{'instances': []}", "[1, 2,]"])
def test_invalid_json_is_malformed_json(demo_models, api_client, raw):
    response = api_client.post_json(PREDICT, raw=raw)

    assert_error(response, 400, "malformed_json")
    assert PredictionLog.objects.count() == 0


def test_empty_body_is_malformed_json(demo_models, api_client):
    response = api_client.post_json(PREDICT, raw="")

    assert_error(response, 400, "malformed_json")
    assert PredictionLog.objects.count() == 0


# --- 401 not_authenticated / 403 permission_denied ---------------------------------------


def test_request_without_a_key_is_not_authenticated(demo_models, anonymous_client):
    response = anonymous_client.post_json(PREDICT, demo_models.instances(LIKES))

    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Api-Key"
    assert PredictionLog.objects.count() == 0


@pytest.mark.parametrize("header", ["Api-Key not-a-key", "Api-Key abc.def", "Bearer abc.def"])
def test_request_with_a_wrong_key_is_not_authenticated(demo_models, anonymous_client, header):
    response = anonymous_client.post_json(PREDICT, demo_models.instances(LIKES),
                                          HTTP_AUTHORIZATION=header)

    assert_error(response, 401, "not_authenticated")
    assert PredictionLog.objects.count() == 0


def test_request_with_a_revoked_key_is_not_authenticated(demo_models, api_key, api_client):
    ClientAPIKey.objects.filter(pk=api_key[0].pk).update(revoked=True)

    response = api_client.post_json(PREDICT, demo_models.instances(LIKES))

    assert_error(response, 401, "not_authenticated")
    assert PredictionLog.objects.count() == 0


def test_revoked_key_stops_working_once_its_verification_expires(demo_models, api_key,
                                                                  api_client, settings):
    assert api_client.post_json(PREDICT, demo_models.instances(LIKES)).status_code == 200
    ClientAPIKey.objects.filter(pk=api_key[0].pk).update(revoked=True)
    settings.API_KEY_CACHE_SECONDS = 0  # the cached verification has expired

    response = api_client.post_json(PREDICT, demo_models.instances(LIKES))

    assert_error(response, 401, "not_authenticated")


def test_client_bound_key_asking_for_another_client_is_permission_denied(
        demo_models, anonymous_client):
    _, key = serving.api_key_create(name="client a", client_id="a")

    response = anonymous_client.post_json(
        PREDICT, {"instances": demo_models.instances(LIKES), "client_id": "b"},
        HTTP_AUTHORIZATION=f"Api-Key {key}")

    error = assert_error(response, 403, "permission_denied")
    assert error["details"] == {"client_id": "b"}
    assert PredictionLog.objects.count() == 0


def test_client_bound_key_may_act_for_its_own_client(demo_models, anonymous_client):
    _, key = serving.api_key_create(name="client a", client_id="a")

    response = anonymous_client.post_json(
        PREDICT, {"instances": demo_models.instances(LIKES), "client_id": "a"},
        HTTP_AUTHORIZATION=f"Api-Key {key}")

    assert response.status_code == 200
    assert PredictionLog.objects.get().client_id == "a"


# --- 404 ---------------------------------------------------------------------------------


def test_unknown_model_is_model_not_found(demo_models, api_client):
    response = api_client.post_json("/api/v1/models/no-such-model/predict",
                                    demo_models.instances(LIKES))

    error = assert_error(response, 404, "model_not_found")
    assert error["details"] == {"model": "no-such-model"}
    assert PredictionLog.objects.count() == 0


@pytest.mark.parametrize("prediction_id", [uuid.uuid4(), "not-a-uuid"])
def test_feedback_for_an_unknown_prediction_is_prediction_not_found(demo_models, api_client,
                                                                    prediction_id):
    response = api_client.post_json(feedback_url(prediction_id), {"actual": 3.0})

    assert_error(response, 404, "prediction_not_found")
    assert PredictionLog.objects.count() == 0


# --- 409 feedback_exists -----------------------------------------------------------------


def test_second_feedback_is_feedback_exists(demo_models, api_client):
    answered = api_client.post_json(PREDICT, demo_models.instances(LIKES))
    prediction_id = answered.json()["predictions"][0]["prediction_id"]
    assert api_client.post_json(feedback_url(prediction_id), {"actual": 12}).status_code == 200

    response = api_client.post_json(feedback_url(prediction_id), {"actual": 99})

    assert_error(response, 409, "feedback_exists")
    log = PredictionLog.objects.get()
    assert log.actual == 12.0
    assert PredictionLog.objects.count() == 1  # the first request's only


# --- 413 ---------------------------------------------------------------------------------


def test_more_instances_than_predict_max_batch_is_batch_too_large(demo_models, api_client,
                                                                  settings):
    settings.PREDICT_MAX_BATCH = 3

    response = api_client.post_json(PREDICT, demo_models.instances(LIKES, n=4))

    error = assert_error(response, 413, "batch_too_large")
    assert error["details"] == {"limit": 3, "received": 4}
    assert PredictionLog.objects.count() == 0


def test_predict_max_batch_instances_are_served(demo_models, api_client, settings):
    settings.PREDICT_MAX_BATCH = 3

    response = api_client.post_json(PREDICT, demo_models.instances(LIKES, n=3))

    assert response.status_code == 200
    assert PredictionLog.objects.count() == 3


def test_body_over_api_max_body_bytes_is_payload_too_large(demo_models, api_client, settings):
    settings.API_MAX_BODY_BYTES = 100
    body = {"instances": demo_models.instances(LIKES)}

    response = api_client.post_json(PREDICT, body)

    error = assert_error(response, 413, "payload_too_large")
    assert error["details"] == {"limit": 100}
    assert PredictionLog.objects.count() == 0


# --- 415 unsupported_media_type ----------------------------------------------------------


def test_text_plain_body_is_unsupported_media_type(demo_models, api_client):
    response = api_client.post(PREDICT, data="followers=10", content_type="text/plain")

    assert_error(response, 415, "unsupported_media_type")
    assert PredictionLog.objects.count() == 0


# --- 422 validation_error ----------------------------------------------------------------


def likes_instance(demo_models, **changes) -> dict:
    instance = demo_models.instances(LIKES, n=1, start=3)[0]
    instance.update(changes)
    return {key: value for key, value in instance.items() if value is not ...}


# (what to change in a valid instance, as JSON text or a value, field, expected code)
INVALID = [
    pytest.param({"followers": ...}, "followers", "missing", id="missing"),
    pytest.param({"followers": None}, "followers", "missing", id="missing-null"),
    pytest.param({"followers": "many"}, "followers", "wrong_type", id="wrong_type-string"),
    pytest.param({"hour": 3.5}, "hour", "wrong_type", id="wrong_type-fraction-for-int"),
    pytest.param({"has_link": 1}, "has_link", "wrong_type", id="wrong_type-number-for-bool"),
    pytest.param({"platform": "myspace"}, "platform", "unknown_category", id="unknown_category"),
    pytest.param({"hour": 24}, "hour", "out_of_bounds", id="out_of_bounds-above"),
    pytest.param({"sentiment": -1.5}, "sentiment", "out_of_bounds", id="out_of_bounds-below"),
    pytest.param({"colour": "red"}, "colour", "unexpected_field", id="unexpected_field"),
]


@pytest.mark.parametrize(("changes", "field", "code"), INVALID)
def test_invalid_instance_is_a_validation_error_naming_field_and_code(
        demo_models, api_client, changes, field, code):
    response = api_client.post_json(
        PREDICT, {"instances": [demo_models.instances(LIKES)[0],
                                likes_instance(demo_models, **changes)]})

    error = assert_error(response, 422, "validation_error")
    assert [(d["index"], d["field"], d["code"]) for d in error["details"]] == [(1, field, code)]
    assert error["details"][0]["message"]
    assert PredictionLog.objects.count() == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_number_is_not_finite(demo_models, api_client, literal):
    instance = likes_instance(demo_models, sentiment="__SENTINEL__")
    raw = json.dumps({"instances": [instance]}).replace('"__SENTINEL__"', literal)

    response = api_client.post_json(PREDICT, raw=raw)

    error = assert_error(response, 422, "validation_error")
    assert [(d["index"], d["field"], d["code"]) for d in error["details"]] == [
        (0, "sentiment", "not_finite")]
    assert PredictionLog.objects.count() == 0


def test_every_invalid_field_of_a_request_is_reported_at_once(demo_models, api_client):
    instances = [
        likes_instance(demo_models, followers=..., platform="myspace"),
        demo_models.instances(LIKES)[0],
        likes_instance(demo_models, hour=99, colour="red", followers="many"),
    ]

    response = api_client.post_json(PREDICT, {"instances": instances})

    error = assert_error(response, 422, "validation_error")
    assert [(d["index"], d["field"], d["code"]) for d in error["details"]] == [
        (0, "platform", "unknown_category"),
        (0, "followers", "missing"),
        (2, "followers", "wrong_type"),
        (2, "hour", "out_of_bounds"),
        (2, "colour", "unexpected_field"),
    ]
    assert PredictionLog.objects.count() == 0


def test_unexpected_envelope_field_is_a_validation_error(demo_models, api_client):
    response = api_client.post_json(PREDICT, {"instances": demo_models.instances(LIKES),
                                              "debug": True})

    error = assert_error(response, 422, "validation_error")
    assert [(d["field"], d["code"]) for d in error["details"]] == [("debug", "unexpected_field")]
    assert PredictionLog.objects.count() == 0


def test_unexpected_envelope_field_with_a_lone_surrogate_is_echoed_escaped(demo_models,
                                                                           api_client):
    # Found by contract fuzzing: the raw key made rendering the error body fail (500).
    response = api_client.post_json(PREDICT, {"instances": demo_models.instances(LIKES),
                                              "k\ud800": True})

    error = assert_error(response, 422, "validation_error")
    assert [(d["field"], d["code"]) for d in error["details"]] == [
        ("k\\ud800", "unexpected_field")]
    assert PredictionLog.objects.count() == 0


@pytest.mark.parametrize(("field", "value"), [("routing_key", "\ud800"),
                                              ("client_id", "a\x00b"), ("client_id", "\udfff")])
def test_routing_key_or_client_id_that_cannot_be_stored_is_wrong_type(demo_models, api_client,
                                                                      field, value):
    # Found by contract fuzzing: UTF-8 hashing or PostgreSQL refused the text (500).
    response = api_client.post_json(PREDICT, {"instances": demo_models.instances(LIKES),
                                              field: value})

    error = assert_error(response, 422, "validation_error")
    assert [(d["field"], d["code"]) for d in error["details"]] == [(field, "wrong_type")]
    assert PredictionLog.objects.count() == 0


# --- 429 throttled -----------------------------------------------------------------------


@pytest.fixture
def two_requests_a_minute(monkeypatch, settings):
    # DRF reads the rates when the throttle class is defined: patch the class too.
    rates = {"api_key": "2/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    monkeypatch.setattr(APIKeyRateThrottle, "THROTTLE_RATES", rates)
    cache.clear()
    yield
    cache.clear()


def test_requests_over_the_keys_rate_are_throttled(demo_models, api_client,
                                                   two_requests_a_minute):
    assert api_client.get("/api/v1/models").status_code == 200
    assert api_client.get(f"/api/v1/models/{LIKES}").status_code == 200

    response = api_client.post_json(PREDICT, demo_models.instances(LIKES))

    assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) >= 1
    assert PredictionLog.objects.count() == 0


def test_throttling_counts_each_key_apart(demo_models, api_client, anonymous_client,
                                          two_requests_a_minute):
    for _ in range(2):
        api_client.get("/api/v1/models")
    _, other_key = serving.api_key_create(name="another client")

    response = anonymous_client.post_json(PREDICT, demo_models.instances(LIKES),
                                          HTTP_AUTHORIZATION=f"Api-Key {other_key}")

    assert response.status_code == 200
    assert PredictionLog.objects.count() == 1


def test_an_unreachable_throttle_cache_does_not_refuse_requests(demo_models, api_client,
                                                                 settings):
    from tests.servers import free_port

    settings.CACHES = {"default": {  # CACHE_URL pointing at a Redis that is not there
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }}

    response = api_client.post_json(PREDICT, demo_models.instances(LIKES))

    assert response.status_code == 200
    assert PredictionLog.objects.count() == 1


# --- 503 ---------------------------------------------------------------------------------


def test_model_without_a_production_version_is_model_not_ready(demo_models, api_client,
                                                               data_scientist):
    register_version(user=data_scientist, name="fresh-model")  # in testing

    response = api_client.post_json("/api/v1/models/fresh-model/predict",
                                    [{"followers": 1.0, "hashtags": 2}])

    error = assert_error(response, 503, "model_not_ready")
    assert error["details"] == {"model": "fresh-model"}
    assert PredictionLog.objects.count() == 0


@pytest.fixture
def tampered_model(people, artifact_dir):
    """A live model whose estimator file was altered after registration (restored after)."""
    version = register_deployed_version(**people, name="tampered-likes", slope=7.25)
    path, original = artifact_tamper(version)
    yield version
    path.write_bytes(original)


def test_tampered_artifact_is_model_integrity_error(demo_models, api_client, tampered_model):
    response = api_client.post_json("/api/v1/models/tampered-likes/predict",
                                    [{"followers": 1.0, "hashtags": 2}])

    error = assert_error(response, 503, "model_integrity_error")
    assert error["details"] == {"version": tampered_model.version}
    assert PredictionLog.objects.count() == 0


def test_tampered_artifact_raises_a_critical_integrity_alert(demo_models, api_client,
                                                             tampered_model):
    api_client.post_json("/api/v1/models/tampered-likes/predict",
                         [{"followers": 1.0, "hashtags": 2}])

    alert = Alert.objects.get(kind="integrity", model_name="tampered-likes")
    assert alert.severity == "critical"
    assert alert.version == tampered_model.version
    assert alert.resolved_at is None


def test_tampered_artifact_makes_ready_answer_503(demo_models, api_client, tampered_model):
    response = api_client.get("/api/v1/ready")

    error = assert_error(response, 503, "model_not_ready")
    assert set(error["details"]) == {"tampered-likes"}
    assert Alert.objects.filter(kind="integrity", model_name="tampered-likes").exists()


def test_a_probe_without_a_key_learns_only_that_the_process_is_not_ready(
        demo_models, anonymous_client, tampered_model):
    response = anonymous_client.get("/api/v1/ready")

    assert (response.status_code, response.json()) == (503, {"status": "not_ready"})


# --- 500 internal_error ------------------------------------------------------------------


def test_unexpected_exception_is_internal_error_without_a_trace(demo_models, api_client,
                                                                monkeypatch):
    def explode(**kwargs):
        raise RuntimeError("secret-database-password in /srv/app/predictions/services.py")

    monkeypatch.setattr(serving, "prediction_make", explode)

    response = api_client.post_json(PREDICT, demo_models.instances(LIKES))

    error = assert_error(response, 500, "internal_error")
    text = response.content.decode()
    assert "secret-database-password" not in text
    assert "RuntimeError" not in text and "Traceback" not in text and ".py" not in text
    assert error["details"] == {}
    assert PredictionLog.objects.count() == 0
