"""Request ids, Prometheus metrics and structured logs of the API (docs/api.md#metrics)."""

import json
import logging
import re
import uuid

import pytest

from predictions.models import PredictionLog
from tests.logs import JsonLines

LIKES = "engagement-likes"
PREDICT = f"/api/v1/models/{LIKES}/predict"


@pytest.mark.parametrize("request_id", ["a", "A-z_0.9", "x" * 64,
                                        "3f2b9c1e-1d2a-4c55-9a0e-2b8f0d7e6a10"])
def test_valid_request_id_is_echoed(anonymous_client, request_id):
    response = anonymous_client.get("/api/v1/health", HTTP_X_REQUEST_ID=request_id)

    assert response.status_code == 200
    assert response["X-Request-ID"] == request_id


@pytest.mark.parametrize("request_id", ["x" * 65, "has space", "semi;colon", "ünïcode", ""])
def test_invalid_request_id_is_replaced_by_a_uuid(anonymous_client, request_id):
    response = anonymous_client.get("/api/v1/health", HTTP_X_REQUEST_ID=request_id)

    assert response.status_code == 200
    assert response["X-Request-ID"] != request_id
    assert str(uuid.UUID(response["X-Request-ID"])) == response["X-Request-ID"]


def test_request_without_an_id_gets_a_uuid(anonymous_client):
    response = anonymous_client.get("/api/v1/health")

    uuid.UUID(response["X-Request-ID"])


def test_error_responses_carry_the_request_id(demo_models, anonymous_client):
    response = anonymous_client.post_json(PREDICT, [], HTTP_X_REQUEST_ID="err-1")

    assert response.status_code == 401
    assert response["X-Request-ID"] == "err-1"
    assert response.json()["error"]["request_id"] == "err-1"


def test_answer_and_log_use_the_clients_request_id(demo_models, api_client):
    response = api_client.post_json(PREDICT, demo_models.instances(LIKES),
                                    HTTP_X_REQUEST_ID="trace.me-1")

    assert response.status_code == 200
    assert response.json()["request_id"] == "trace.me-1"
    assert PredictionLog.objects.get().request_id == "trace.me-1"


def metric_value(client, name: str, labels: dict) -> float:
    text = client.get("/metrics").content.decode()
    wanted = {f'{key}="{value}"' for key, value in labels.items()}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and set(match.group(1).split(",")) == wanted:
            return float(match.group(2))
    return 0.0


def test_metrics_count_predictions_by_model_version_and_arm(demo_models, api_client,
                                                            anonymous_client):
    labels = {"model": LIKES, "version": demo_models.version(LIKES).version, "arm": "champion"}
    before = metric_value(anonymous_client, "pulselytics_predictions_total", labels)

    response = api_client.post_json(PREDICT, demo_models.instances(LIKES, n=3))

    assert response.status_code == 200
    assert metric_value(anonymous_client, "pulselytics_predictions_total", labels) == before + 3


def test_metrics_count_errors_by_code(demo_models, api_client, anonymous_client):
    labels = {"code": "model_not_found"}
    before = metric_value(anonymous_client, "pulselytics_api_errors_total", labels)

    api_client.post_json("/api/v1/models/no-such-model/predict", [{}])

    assert metric_value(anonymous_client, "pulselytics_api_errors_total", labels) == before + 1


def test_metrics_expose_request_counts_and_latency(demo_models, api_client, anonymous_client):
    api_client.post_json(PREDICT, demo_models.instances(LIKES))

    response = anonymous_client.get("/metrics")

    assert response.status_code == 200
    text = response.content.decode()
    assert re.search(r'pulselytics_api_requests_total\{[^}]*endpoint="predict"[^}]*'
                     r'status="200"[^}]*\} [1-9]', text)
    assert re.search(r'pulselytics_api_request_seconds_bucket\{[^}]*endpoint="predict"', text)


@pytest.fixture
def prediction_log_lines():
    handler = JsonLines()
    logger = logging.getLogger("pulselytics.predictions")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(previous)


def test_prediction_log_line_has_request_model_version_latency_and_no_features(
        demo_models, api_client, prediction_log_lines):
    instance = {**demo_models.instances(LIKES)[0], "followers": 987_654_321,
                "platform": "tiktok", "sentiment": 0.123456}

    response = api_client.post_json(PREDICT, {"instances": [instance]},
                                    HTTP_X_REQUEST_ID="log-line-1")

    assert response.status_code == 200, response.json()
    entries = [json.loads(line) for line in prediction_log_lines]
    (entry,) = [e for e in entries if e["message"] == "predicted"]
    assert entry["request_id"] == "log-line-1"
    assert entry["model"] == LIKES
    assert entry["version"] == demo_models.version(LIKES).version
    assert entry["arm"] == "champion"
    assert entry["instances"] == 1
    assert isinstance(entry["latency_ms"], float) and entry["latency_ms"] >= 0
    for line in prediction_log_lines:
        assert "987654321" not in line and "0.123456" not in line and "tiktok" not in line
        assert not {"followers", "platform", "sentiment", "features"} & set(json.loads(line))
