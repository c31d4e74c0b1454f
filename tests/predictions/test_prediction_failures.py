"""Failed requests for the error-rate SLO (docs/monitoring.md#slos): every predict or explain
answered with a 5xx leaves one PredictionFailure row, written outside the failed request's work;
client errors leave none; the row holds no input values; failing to record changes no answer."""

import pytest

from predictions import services as serving
from predictions.models import PredictionFailure, PredictionLog
from predictions.routing import Challenger, challenger_for
from tests.factories import artifact_tamper, register_deployed_version, register_version

pytestmark = pytest.mark.filterwarnings("ignore:X has feature names:UserWarning")

INSTANCE = {"followers": 987654.25, "hashtags": 4321}


def predict_url(name: str) -> str:
    return f"/api/v1/models/{name}/predict"


@pytest.fixture
def restore_artifacts():
    """Put back the artifact files a test tampered with (the folder is shared per module)."""
    tampered = []
    yield tampered
    for path, original in tampered:
        with open(path, "wb") as handle:
            handle.write(original)


@pytest.fixture
def champion(people):
    return register_deployed_version(**people, name="failing-likes", slope=1.5)


def explode(*args, **kwargs):
    raise RuntimeError("the model blew up")


def test_model_not_ready_is_recorded_without_a_version(people, api_client):
    register_version(user=people["user"], name="fresh-model")  # in testing: no champion

    response = api_client.post_json(predict_url("fresh-model"), [INSTANCE])

    assert response.status_code == 503
    failure = PredictionFailure.objects.get()
    assert (failure.model_name, failure.version, failure.arm) == ("fresh-model", "", "")
    assert (failure.endpoint, failure.code, failure.status_code) == (
        "predict", "model_not_ready", 503)
    assert failure.request_id == response["X-Request-ID"]


def test_integrity_error_is_recorded_with_the_version_that_failed(people, api_client,
                                                                 restore_artifacts):
    version = register_deployed_version(**people, name="tampered-likes", slope=7.5)
    restore_artifacts.append(artifact_tamper(version))

    response = api_client.post_json(predict_url("tampered-likes"), [INSTANCE])

    assert response.json()["error"]["code"] == "model_integrity_error"
    failure = PredictionFailure.objects.get()
    assert (failure.model_name, failure.version, failure.arm) == (
        "tampered-likes", version.version, "champion")
    assert (failure.code, failure.status_code) == ("model_integrity_error", 503)


def test_failing_challenger_is_recorded_with_its_arm(people, champion, api_client,
                                                    restore_artifacts):
    challenger = register_deployed_version(**people, name="failing-likes", slope=8.5,
                                           traffic=99)
    restore_artifacts.append(artifact_tamper(challenger))
    arms = [Challenger(version_id=challenger.pk, traffic_percentage=99)]
    routing_key = next(key for key in (f"user-{i}" for i in range(100)) if challenger_for(
        routing_key=key, model_name="failing-likes", challengers=arms) == challenger.pk)

    response = api_client.post_json(predict_url("failing-likes"),
                                    {"instances": [INSTANCE], "routing_key": routing_key})

    assert response.status_code == 503
    failure = PredictionFailure.objects.get()
    assert (failure.version, failure.arm) == (challenger.version, "challenger")


def test_unexpected_exception_is_recorded_as_internal_error(champion, api_client,
                                                            monkeypatch):
    monkeypatch.setattr(serving, "_predict", explode)

    response = api_client.post_json(predict_url("failing-likes"), [INSTANCE])

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    failure = PredictionFailure.objects.get()
    assert (failure.model_name, failure.version, failure.arm) == (
        "failing-likes", champion.version, "champion")
    assert (failure.endpoint, failure.code, failure.status_code) == (
        "predict", "internal_error", 500)
    assert PredictionLog.objects.count() == 0


def test_explain_failure_is_recorded_for_the_explain_endpoint(champion, api_client):
    # A bare LinearRegression without a reference profile cannot be explained: a 500.
    response = api_client.post_json("/api/v1/models/failing-likes/explain",
                                    {"instance": INSTANCE})

    assert response.status_code == 500
    failure = PredictionFailure.objects.get()
    assert (failure.endpoint, failure.code, failure.version) == (
        "explain", "internal_error", champion.version)


@pytest.mark.parametrize(("name", "body", "status"), [
    ("failing-likes", [{"followers": "many", "hashtags": 1}], 422),
    ("no-such-model", [INSTANCE], 404),
    ("failing-likes", {"instances": []}, 422),
])
def test_client_errors_are_not_recorded(champion, api_client, name, body, status):
    response = api_client.post_json(predict_url(name), body)

    assert response.status_code == status
    assert not PredictionFailure.objects.exists()


def test_answered_request_is_not_recorded(champion, api_client):
    response = api_client.post_json(predict_url("failing-likes"), [INSTANCE])

    assert response.status_code == 200
    assert not PredictionFailure.objects.exists()


def test_recorded_failure_holds_no_input_values(champion, api_client, monkeypatch):
    monkeypatch.setattr(serving, "_predict", explode)

    api_client.post_json(predict_url("failing-likes"),
                         {"instances": [INSTANCE], "routing_key": "secret-routing-key"})

    row = PredictionFailure.objects.values().get()
    text = repr(row)
    assert "987654" not in text and "4321" not in text
    assert "secret-routing-key" not in text


def test_failure_to_record_leaves_the_error_answer_unchanged(people, api_client, monkeypatch):
    register_version(user=people["user"], name="fresh-model")
    monkeypatch.setattr(PredictionFailure.objects, "create", explode)

    response = api_client.post_json(predict_url("fresh-model"), [INSTANCE])

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_not_ready"
    assert not PredictionFailure.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("groups_restored_after_module", "governance_groups")
def test_recorded_failure_survives_the_rollback_of_the_failed_requests_writes(
        champion, api_client, monkeypatch):
    # A routing hash too long for its column makes the log insert fail in the database:
    # that request's writes are rolled back; its failure row is not among them.
    monkeypatch.setattr(serving, "routing_key_sha256", lambda key: "f" * 65)

    response = api_client.post_json(predict_url("failing-likes"), [INSTANCE])

    assert response.status_code == 500
    assert PredictionLog.objects.count() == 0
    failure = PredictionFailure.objects.get()
    assert (failure.code, failure.version) == ("internal_error", champion.version)


def test_database_outage_is_not_recorded_as_a_failure(champion, api_client, monkeypatch):
    from django.db import OperationalError

    def database_down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(serving, "log_rows_insert", database_down)
    monkeypatch.setattr(PredictionFailure.objects, "create", explode)  # must not be tried

    response = api_client.post_json(predict_url("failing-likes"), [INSTANCE])

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
