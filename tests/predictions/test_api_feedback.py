"""POST /api/v1/predictions/{prediction_id}/feedback (docs/api.md#feedback): the observed outcome,
recorded once, in the model's terms, and given to the shadows of the same request too."""

import importlib

import pytest
from django.apps import apps as django_apps
from django.utils import timezone

from mlregistry import services as registry
from predictions import services as serving
from predictions.models import SCOPES, PredictionLog
from tests.factories import labelled_logs_create

LIKES, LEADS, ANOMALY = "engagement-likes", "lead-conversion", "engagement-anomaly"


def feedback_url(prediction_id) -> str:
    return f"/api/v1/predictions/{prediction_id}/feedback"


def answered(api_client, demo_models, name: str, n: int = 1) -> list[str]:
    response = api_client.post_json(f"/api/v1/models/{name}/predict",
                                    {"instances": demo_models.instances(name, n=n)})
    assert response.status_code == 200, response.json()
    return [p["prediction_id"] for p in response.json()["predictions"]]


@pytest.mark.parametrize(("name", "actual", "stored"), [
    (LIKES, 42, 42.0), (LIKES, 17.5, 17.5), (LEADS, 1, 1), (LEADS, 0, 0),
    (ANOMALY, True, True), (ANOMALY, False, False),
])
def test_feedback_records_the_actual_outcome(demo_models, api_client, name, actual, stored):
    (prediction_id,) = answered(api_client, demo_models, name)

    response = api_client.post_json(feedback_url(prediction_id), {"actual": actual})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["prediction_id"], body["actual"]) == (prediction_id, stored)
    log = PredictionLog.objects.get(prediction_id=prediction_id)
    assert log.actual == stored
    assert log.actual_at is not None
    assert body["actual_at"].replace("Z", "+00:00") == log.actual_at.isoformat()


def test_feedback_is_recorded_once(demo_models, api_client):
    (prediction_id,) = answered(api_client, demo_models, LIKES)
    first = api_client.post_json(feedback_url(prediction_id), {"actual": 10})
    recorded_at = PredictionLog.objects.get().actual_at

    second = api_client.post_json(feedback_url(prediction_id), {"actual": 20})

    assert first.status_code == 200
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "feedback_exists"
    log = PredictionLog.objects.get()
    assert (log.actual, log.actual_at) == (10.0, recorded_at)


def test_feedback_touches_only_its_own_prediction(demo_models, api_client):
    first, second = answered(api_client, demo_models, LIKES, n=2)

    api_client.post_json(feedback_url(first), {"actual": 5})

    assert PredictionLog.objects.get(prediction_id=second).actual_at is None


# (model, an actual it cannot take, expected code)
WRONG_ACTUALS = [
    pytest.param(LIKES, "many", "wrong_type", id="regression-string"),
    pytest.param(LIKES, True, "wrong_type", id="regression-bool"),
    pytest.param(LIKES, [1], "wrong_type", id="regression-list"),
    pytest.param(LIKES, None, "missing", id="regression-null"),
    pytest.param(LEADS, 7, "unknown_category", id="classifier-unknown-class"),
    pytest.param(LEADS, {"label": 1}, "unknown_category", id="classifier-object"),
    pytest.param(ANOMALY, 1, "wrong_type", id="anomaly-number"),
    pytest.param(ANOMALY, "true", "wrong_type", id="anomaly-string"),
]


@pytest.mark.parametrize(("name", "actual", "code"), WRONG_ACTUALS)
def test_actual_of_the_wrong_kind_is_a_validation_error(demo_models, api_client, name, actual,
                                                        code):
    (prediction_id,) = answered(api_client, demo_models, name)

    response = api_client.post_json(feedback_url(prediction_id), {"actual": actual})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [(d["field"], d["code"]) for d in error["details"]] == [("actual", code)]
    assert PredictionLog.objects.get().actual_at is None


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "1e400"])
def test_non_finite_actual_is_not_finite(demo_models, api_client, literal):
    (prediction_id,) = answered(api_client, demo_models, LIKES)

    response = api_client.post_json(feedback_url(prediction_id), raw=f'{{"actual": {literal}}}')

    assert response.status_code == 422
    assert [d["code"] for d in response.json()["error"]["details"]] == ["not_finite"]
    assert PredictionLog.objects.get().actual_at is None


@pytest.mark.parametrize("body", [{}, {"actual": 1, "note": "x"}, [1]])
def test_body_must_be_exactly_actual(demo_models, api_client, body):
    (prediction_id,) = answered(api_client, demo_models, LIKES)

    response = api_client.post_json(feedback_url(prediction_id), body)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert PredictionLog.objects.get().actual_at is None


@pytest.fixture
def shadow(demo_models, version_copy):
    version = version_copy(of=demo_models.version(LIKES), people=demo_models.people)
    return registry.model_version_deploy(version=version, user=demo_models.people["deployer"],
                                         shadow=True, notes="shadow test")


def test_shadow_rows_of_the_request_receive_the_actual_too(demo_models, api_client, shadow):
    first, second = answered(api_client, demo_models, LIKES, n=2)
    shadows = PredictionLog.objects.filter(arm="shadow")
    assert shadows.count() == 2
    first_hash = PredictionLog.objects.get(prediction_id=first).features_sha256

    response = api_client.post_json(feedback_url(first), {"actual": 33})

    assert response.status_code == 200
    assert list(shadows.filter(features_sha256=first_hash).values_list("actual", flat=True)) \
        == [33.0]
    assert shadows.exclude(features_sha256=first_hash).get().actual_at is None
    assert PredictionLog.objects.get(prediction_id=second).actual_at is None


def test_shadow_rows_of_another_clients_request_with_the_same_id_keep_no_actual(
        demo_models, anonymous_client, shadow):
    instances = demo_models.instances(LIKES, n=1)
    keys = {client: serving.api_key_create(name=client, client_id=client, scopes=SCOPES)[1]
            for client in ("acme", "globex")}
    answers = {client: anonymous_client.post_json(
        f"/api/v1/models/{LIKES}/predict", {"instances": instances},
        HTTP_AUTHORIZATION=f"Api-Key {key}", HTTP_X_REQUEST_ID="same-request-id",
    ).json()["predictions"][0]["prediction_id"] for client, key in keys.items()}

    response = anonymous_client.post_json(feedback_url(answers["acme"]), {"actual": 33},
                                          HTTP_AUTHORIZATION=f"Api-Key {keys['acme']}")

    assert response.status_code == 200
    shadows = PredictionLog.objects.filter(arm="shadow")
    assert dict(shadows.values_list("client_id", "actual")) == {"acme": 33.0, "globex": None}
    assert shadows.get(client_id="acme").feedback_source == "client:acme"


def test_feedback_records_the_client_that_vouched_for_it(demo_models, api_client, api_key):
    (prediction_id,) = answered(api_client, demo_models, LIKES)

    api_client.post_json(feedback_url(prediction_id), {"actual": 33})

    logged = PredictionLog.objects.get(prediction_id=prediction_id)
    assert logged.feedback_source == f"key:{api_key[0].prefix}"


def test_feedback_for_a_shadow_row_is_prediction_not_found(demo_models, api_client, shadow):
    answered(api_client, demo_models, LIKES)
    shadow_row = PredictionLog.objects.get(arm="shadow")

    response = api_client.post_json(feedback_url(shadow_row.prediction_id), {"actual": 3})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "prediction_not_found"
    shadow_row.refresh_from_db()
    assert shadow_row.actual_at is None


def test_feedback_label_is_stored_in_the_type_of_the_models_labels(demo_models, api_client):
    (prediction_id,) = answered(api_client, demo_models, LEADS)

    api_client.post_json(feedback_url(prediction_id), {"actual": "1"})

    assert PredictionLog.objects.get(prediction_id=prediction_id).actual == 1


def test_outcomes_posted_before_sources_were_recorded_count_per_client(champion):
    migration = importlib.import_module("predictions.migrations.0005_prediction_feedback_source")
    rows = labelled_logs_create(version=champion, values=[1.0] * 3, actuals=[1.0, 2.0, None],
                                created_at=timezone.now(), feedback_sources=[""] * 3)
    PredictionLog.objects.filter(pk=rows[0].pk).update(client_id="acme")

    migration.attribute_earlier_feedback(django_apps, None)

    assert [PredictionLog.objects.get(pk=row.pk).feedback_source for row in rows] == [
        "client:acme", "key:unknown", ""]
