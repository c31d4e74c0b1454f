"""No stack trace in any error body, no feature value in any error body or log line
(docs/api.md#errors).

Each test sends distinctive feature values (VALUES), forces a failure whose exception
message quotes them beside a MARKER (as a scikit-learn or database error may quote the
value it choked on), and checks the answer and every log record of the request, both as
pytest captured it and as the production JSON formatter (core.logging) writes it.

What is decided here:
- a 500 is the bare `internal_error` envelope: message "internal error", details {};
- the log keeps the traceback (frames and exception types, so the fault can be found) but
  not the exception's message (core.logging.exception_outline);
- a 422 names the instance, the field and the code, never the value (a key the model does
  not know is echoed: it is the client's own field name, not a value);
- a failing shadow is logged the same way, and the answer is unaffected.

4xx bodies of every kind are checked for echoed values in
tests/predictions/test_bad_input_catalogue.py; the "predicted" log line of an answered
request in tests/predictions/test_api_observability.py.
"""

import json

import pytest

from mlregistry import services as registry
from predictions import loader
from predictions import services as serving
from predictions.models import PredictionLog
from tests.factories import register_approved_version, register_deployed_version

pytestmark = pytest.mark.filterwarnings("ignore:X has feature names:UserWarning")

MODEL = "leaky-likes"
MARKER = "zz-secret-marker"
INSTANCE = {"followers": 987654.25, "hashtags": 4321}
VALUES = ("987654.25", "4321")


def assert_no_values(text: str) -> None:
    for secret in (*VALUES, MARKER):
        assert secret not in text


def assert_internal_error(response) -> None:
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "internal error",
                                         "request_id": response["X-Request-ID"], "details": {}}}
    text = response.content.decode()
    assert "Traceback" not in text and ".py" not in text and "Error" not in text
    assert_no_values(text)


def leaking_error(value) -> RuntimeError:
    """An error quoting a value, raised from another one that quotes it too."""
    try:
        raise ValueError(f"could not convert {value!r}")
    except ValueError as cause:
        try:
            raise RuntimeError(f"{MARKER}: model failed on followers={value}") from cause
        except RuntimeError as error:
            return error


@pytest.fixture
def champion(people):
    return register_deployed_version(**people, name=MODEL, slope=1.5)


def fail_in_predict(monkeypatch, client):
    def explode(self, batch):
        raise leaking_error(batch.columns["followers"][0])

    monkeypatch.setattr(loader.ServedVersion, "predict", explode)
    return client.post_json(f"/api/v1/models/{MODEL}/predict", [INSTANCE])


def fail_in_explain(monkeypatch, client):
    def explode(self):
        raise leaking_error(INSTANCE["followers"])

    monkeypatch.setattr(loader.ServedVersion, "explainer", property(explode))
    return client.post_json(f"/api/v1/models/{MODEL}/explain", {"instance": INSTANCE})


def fail_in_feedback(monkeypatch, client):
    answered = client.post_json(f"/api/v1/models/{MODEL}/predict", [INSTANCE])
    prediction_id = answered.json()["predictions"][0]["prediction_id"]

    def explode(log, actual):
        raise leaking_error(actual)

    monkeypatch.setattr(serving, "_actual_for", explode)
    return client.post_json(f"/api/v1/predictions/{prediction_id}/feedback", {"actual": 4321})


@pytest.mark.parametrize("fail", [fail_in_predict, fail_in_explain, fail_in_feedback],
                         ids=["predict", "explain", "feedback"])
def test_internal_error_answers_the_bare_envelope_and_logs_no_values(
        champion, api_client, monkeypatch, log_lines, fail):
    response = fail(monkeypatch, api_client)

    assert_internal_error(response)
    text, lines = log_lines()
    assert_no_values(text)
    for line in lines:
        assert_no_values(line)
    (entry,) = [json.loads(line) for line in lines if "unhandled error" in line]
    assert entry["request_id"] == response["X-Request-ID"]
    # The traceback is kept for whoever runs the service: frames and types, no message.
    assert "Traceback (most recent call last)" in entry["exception"]
    assert "in leaking_error" in entry["exception"]
    assert "ValueError (message not logged)" in entry["exception"]
    assert "RuntimeError (message not logged)" in entry["exception"]


def test_internal_error_writes_no_prediction(champion, api_client, monkeypatch):
    fail_in_predict(monkeypatch, api_client)

    assert PredictionLog.objects.count() == 0


def test_validation_error_names_fields_not_values(champion, api_client, log_lines):
    instance = {"followers": f"{MARKER} 987654.25", "hashtags": 4321.5, "colour": MARKER}

    response = api_client.post_json(f"/api/v1/models/{MODEL}/predict", [instance])

    assert response.status_code == 422
    assert [(d["index"], d["field"], d["code"]) for d in response.json()["error"]["details"]] == [
        (0, "followers", "wrong_type"), (0, "hashtags", "wrong_type"),
        (0, "colour", "unexpected_field")]
    assert_no_values(response.content.decode())
    text, lines = log_lines()
    assert_no_values(text)
    for line in lines:
        assert_no_values(line)


def test_failing_shadow_is_logged_without_values_and_the_answer_stands(
        champion, people, api_client, monkeypatch, log_lines):
    shadow = register_approved_version(**people, name=MODEL, slope=2.5)
    registry.model_version_deploy(version=shadow, user=people["deployer"], shadow=True,
                                  notes="shadow")
    real_predict = loader.ServedVersion.predict

    def shadow_explodes(self, batch):
        if self.live.version_id == shadow.pk:
            raise leaking_error(batch.columns["followers"][0])
        return real_predict(self, batch)

    monkeypatch.setattr(loader.ServedVersion, "predict", shadow_explodes)

    response = api_client.post_json(f"/api/v1/models/{MODEL}/predict", [INSTANCE])

    assert response.status_code == 200
    assert PredictionLog.objects.filter(arm="champion").count() == 1
    text, lines = log_lines()
    assert_no_values(text)
    for line in lines:
        assert_no_values(line)
    (entry,) = [json.loads(line) for line in lines if "shadow prediction failed" in line]
    assert (entry["model"], entry["version"]) == (MODEL, shadow.version)
    assert "RuntimeError (message not logged)" in entry["exception"]
