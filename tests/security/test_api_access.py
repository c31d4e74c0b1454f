"""Who may call the API (docs/api.md#authentication): an API key on every endpoint but the health
checks, a revoked or expired key refused, a client-bound key kept to its own client.

There is no registry write API: registering, approving, deploying and rolling back happen
only in the admin and through the management commands (tests/security/test_admin_access.py,
tests/security/test_command_permissions.py). The API's registry endpoints are read-only,
which `test_registry_endpoint_refuses_writes` pins down for every method.

The API authenticates with API keys only (no session authentication), so an admin's
session cookie opens nothing there and CSRF does not apply to it.
"""

import uuid

import pytest
from django.test import Client
from django.urls import get_resolver, reverse

from mlregistry import registration
from mlregistry import services as registry
from mlregistry.models import MLModel
from predictions import services as serving
from predictions.models import SCOPES, ClientAPIKey, PredictionFailure, PredictionLog
from tests.factories import (
    SCHEMA,
    UserFactory,
    register_deployed_version,
    registry_state,
    tiny_estimator,
)

pytestmark = pytest.mark.filterwarnings("ignore:X has feature names:UserWarning")

MODEL = "secure-likes"
INSTANCE = {"followers": 1.5, "hashtags": 2}
OPEN = {"health", "ready"}
# URL name -> (method, body): every other endpoint of predictions/api/urls.py.
AUTHENTICATED = {
    "model-list": ("get", None),
    "model-detail": ("get", None),
    "model-versions": ("get", None),
    "model-drift": ("get", None),
    "model-performance": ("get", None),
    "model-schema": ("get", None),
    "predict": ("post", [INSTANCE]),
    "explain": ("post", {"instance": INSTANCE}),
    "feedback": ("post", {"actual": 3.0}),
    # (a body that names the live prediction is built from it)
    "feedback-batch": ("post", lambda live: {"outcomes": [{"prediction_id": live["prediction_id"],
                                                           "actual": 3.0}]}),
    "prediction-record": ("get", None),
    "prediction-explanation": ("get", None),
    "pinned-predict": ("post", [INSTANCE]),
    "pinned-explain": ("post", {"instance": INSTANCE}),
}
REGISTRY_ENDPOINTS = ["model-list", "model-detail", "model-versions", "model-drift",
                      "model-performance", "model-schema"]


@pytest.fixture
def live(people, api_client) -> dict:
    """A live model and one answered prediction (without feedback)."""
    version = register_deployed_version(**people, name=MODEL, slope=1.5)
    answered = api_client.post_json(f"/api/v1/models/{MODEL}/predict", [INSTANCE])
    assert answered.status_code == 200, answered.content
    return {"version": version,
            "prediction_id": answered.json()["predictions"][0]["prediction_id"]}


def url_of(name: str, live: dict) -> str:
    if name in ("model-list", "feedback-batch"):
        return reverse(name)
    if name in ("feedback", "prediction-record", "prediction-explanation"):
        return reverse(name, kwargs={"prediction_id": live["prediction_id"]})
    if name.startswith("pinned-"):
        return reverse(name, kwargs={"name": MODEL, "version": live["version"].version})
    return reverse(name, kwargs={"name": MODEL})


def call(client, name: str, live: dict, query: str = "", **extra):
    method, body = AUTHENTICATED[name]
    url = url_of(name, live) + query
    if method == "get":
        return client.get(url, **extra)
    return client.post_json(url, body(live) if callable(body) else body, **extra)


def written() -> dict:
    return {"logs": PredictionLog.objects.count(),
            "failures": PredictionFailure.objects.count(),
            "outcomes": list(PredictionLog.objects.values_list("actual_at", flat=True))}


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == response["X-Request-ID"]
    return error


def _api_v1_endpoint_names() -> set[str]:
    """Every URL name under /api/v1/, whichever app includes it (serving, monitoring)."""
    return {pattern.name for included in get_resolver().url_patterns
            if str(included.pattern) == "api/v1/" for pattern in included.url_patterns}


def test_every_api_endpoint_is_either_open_or_authenticated():
    # A new endpoint must be added to one of the two tables (and so to the tests below).
    assert _api_v1_endpoint_names() == OPEN | set(AUTHENTICATED)


@pytest.mark.parametrize("name", sorted(AUTHENTICATED))
def test_endpoint_without_a_key_is_not_authenticated(live, anonymous_client, name):
    before = written()

    response = call(anonymous_client, name, live)

    assert_envelope(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Api-Key"
    assert written() == before


@pytest.mark.parametrize("name", sorted(AUTHENTICATED))
def test_endpoint_without_a_key_does_not_reveal_whether_a_model_exists(db, anonymous_client,
                                                                       name):
    absent = {"prediction_id": str(uuid.uuid4())}
    method, body = AUTHENTICATED[name]
    url = (reverse(name) if name in ("model-list", "feedback-batch") else
           reverse(name, kwargs=absent)
           if name in ("feedback", "prediction-record", "prediction-explanation") else
           reverse(name, kwargs={"name": "no-such-model", "version": "1.0.0"})
           if name.startswith("pinned-") else
           reverse(name, kwargs={"name": "no-such-model"}))

    response = (anonymous_client.get(url) if method == "get"
                else anonymous_client.post_json(url, body(absent) if callable(body) else body))

    assert_envelope(response, 401, "not_authenticated")


@pytest.mark.parametrize("name", sorted(OPEN))
def test_health_endpoint_answers_without_a_key(live, anonymous_client, name):
    response = anonymous_client.get(reverse(name))

    assert response.status_code == 200, response.content


@pytest.mark.parametrize("name", sorted(AUTHENTICATED))
def test_endpoint_with_a_revoked_key_is_not_authenticated(live, api_key, api_client, settings,
                                                          name):
    settings.API_KEY_CACHE_SECONDS = 0  # no verified key is trusted from memory
    row = ClientAPIKey.objects.get(pk=api_key[0].pk)
    row.revoked = True
    row.save()  # as the admin's "revoked" checkbox does
    before = written()

    response = call(api_client, name, live)

    assert_envelope(response, 401, "not_authenticated")
    assert written() == before


def test_expired_key_is_not_authenticated(live, anonymous_client, settings):
    settings.API_KEY_CACHE_SECONDS = 0
    _, key = ClientAPIKey.objects.create_key(name="expired", expiry_date="2000-01-01T00:00Z")

    response = anonymous_client.post_json(f"/api/v1/models/{MODEL}/predict", [INSTANCE],
                                          HTTP_AUTHORIZATION=f"Api-Key {key}")

    assert_envelope(response, 401, "not_authenticated")
    assert PredictionLog.objects.count() == 1  # the fixture's only


def test_admin_session_does_not_authenticate_the_api(live):
    client = Client()
    client.force_login(UserFactory(username="root", is_superuser=True))

    response = client.post(f"/api/v1/models/{MODEL}/predict", data=[INSTANCE],
                           content_type="application/json")

    assert_envelope(response, 401, "not_authenticated")
    assert PredictionLog.objects.count() == 1


@pytest.mark.parametrize("name", REGISTRY_ENDPOINTS)
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_registry_endpoint_refuses_writes(live, api_client, name, method):
    before = registry_state(live["version"].model_id)

    response = getattr(api_client, method)(url_of(name, live), data={"status": "archived"},
                                           format="json")

    assert_envelope(response, 405, "method_not_allowed")
    assert registry_state(live["version"].model_id) == before


def test_client_bound_key_may_not_explain_for_another_client(live, anonymous_client):
    _, key = serving.api_key_create(name="client a", client_id="a")

    response = anonymous_client.post_json(
        f"/api/v1/models/{MODEL}/explain", {"instance": INSTANCE, "client_id": "b"},
        HTTP_AUTHORIZATION=f"Api-Key {key}")

    error = assert_envelope(response, 403, "permission_denied")
    assert error["details"] == {"client_id": "b"}


@pytest.fixture
def acme_model(people, live):
    """secure-likes--acme: client acme's own model of secure-likes, in production."""
    version = registration.model_version_register(
        name=f"{MODEL}--acme", task="regression", user=people["user"],
        estimator=tiny_estimator(9.0), feature_schema=SCHEMA,
        training_dataset_sha256="0" * 64, training_samples=10, training_duration_seconds=0.01,
        hyperparameters={}, metrics={"r2": 0.9}, reference_profile={"features": {}},
        client_id="acme", global_model=MLModel.objects.get(name=MODEL))
    version = registry.model_version_approve(version=version, user=people["reviewer"],
                                             notes="acme")
    return registry.model_version_deploy(version=version, user=people["deployer"], notes="acme")


@pytest.mark.parametrize("endpoint", ["predict", "explain"])
def test_client_bound_key_may_not_use_another_clients_model_by_name(acme_model,
                                                                    anonymous_client, endpoint):
    _, key = serving.api_key_create(name="globex", client_id="globex")
    before = written()

    response = anonymous_client.post_json(
        f"/api/v1/models/{MODEL}--acme/{endpoint}", {"instances": [INSTANCE]},
        HTTP_AUTHORIZATION=f"Api-Key {key}")

    error = assert_envelope(response, 403, "permission_denied")
    assert error["details"] == {"model": f"{MODEL}--acme"}
    assert written() == before


def test_client_bound_key_may_use_its_own_clients_model_by_name(acme_model, anonymous_client):
    _, key = serving.api_key_create(name="acme", client_id="acme")

    response = anonymous_client.post_json(
        f"/api/v1/models/{MODEL}--acme/predict", [INSTANCE], HTTP_AUTHORIZATION=f"Api-Key {key}")

    assert response.status_code == 200, response.content
    assert response.json()["served_by"] == f"{MODEL}--acme"


def bound_key(client_id: str) -> dict:
    _, key = serving.api_key_create(name=f"{client_id} key", client_id=client_id, scopes=SCOPES)
    return {"HTTP_AUTHORIZATION": f"Api-Key {key}"}


@pytest.mark.parametrize("name", ["model-detail", "model-versions", "model-drift",
                                  "model-performance", "model-schema"])
def test_client_bound_key_may_not_read_another_clients_model(acme_model, anonymous_client,
                                                             name):
    response = anonymous_client.get(reverse(name, kwargs={"name": f"{MODEL}--acme"}),
                                    **bound_key("globex"))

    error = assert_envelope(response, 403, "permission_denied")
    assert error["details"] == {"model": f"{MODEL}--acme"}
    assert "acme" not in error["message"].replace(f"{MODEL}--acme", "")


@pytest.mark.parametrize(("client_id", "listed", "client_models"), [
    ("globex", [MODEL], []),
    ("acme", [MODEL, f"{MODEL}--acme"], [f"{MODEL}--acme"]),
    ("", [MODEL, f"{MODEL}--acme"], [f"{MODEL}--acme"]),  # an unbound key sees everything
])
def test_key_sees_the_global_models_and_its_own_clients_only(acme_model, anonymous_client,
                                                             client_id, listed, client_models):
    headers = bound_key(client_id) if client_id else {
        "HTTP_AUTHORIZATION": f"Api-Key {serving.api_key_create(name='unbound')[1]}"}

    models = anonymous_client.get(reverse("model-list"), **headers)
    detail = anonymous_client.get(reverse("model-detail", kwargs={"name": MODEL}), **headers)

    assert [model["name"] for model in models.json()["results"]] == listed
    assert detail.json()["client_models"] == client_models


def test_client_bound_key_may_not_give_feedback_on_another_clients_prediction(
        live, anonymous_client):
    answered = anonymous_client.post_json(f"/api/v1/models/{MODEL}/predict", [INSTANCE],
                                          **bound_key("acme"))
    prediction_id = answered.json()["predictions"][0]["prediction_id"]

    response = anonymous_client.post_json(
        reverse("feedback", kwargs={"prediction_id": prediction_id}), {"actual": 1.0},
        **bound_key("globex"))

    assert_envelope(response, 404, "prediction_not_found")
    assert PredictionLog.objects.get(prediction_id=prediction_id).actual_at is None


def test_client_bound_key_gives_feedback_on_its_own_clients_prediction(live, anonymous_client):
    acme = bound_key("acme")
    answered = anonymous_client.post_json(f"/api/v1/models/{MODEL}/predict", [INSTANCE], **acme)
    prediction_id = answered.json()["predictions"][0]["prediction_id"]

    response = anonymous_client.post_json(
        reverse("feedback", kwargs={"prediction_id": prediction_id}), {"actual": 1.0}, **acme)

    assert response.status_code == 200, response.content
    assert PredictionLog.objects.get(prediction_id=prediction_id).actual == 1.0


@pytest.mark.parametrize("name", sorted(AUTHENTICATED))
def test_endpoint_refuses_an_unknown_query_parameter(live, api_client, name):
    before = written()

    response = call(api_client, name, live, query="?version=9.9.9")

    error = assert_envelope(response, 400, "invalid_query_parameter")
    assert error["details"] == [{"index": None, "field": "version", "code": "unexpected_field",
                                 "message": "is not a query parameter of this operation"}]
    assert written() == before


@pytest.mark.parametrize("name", sorted(OPEN))
def test_open_endpoint_refuses_an_unknown_query_parameter(db, anonymous_client, name):
    response = anonymous_client.get(reverse(name) + "?verbose=1")

    assert_envelope(response, 400, "invalid_query_parameter")


@pytest.mark.parametrize("name", sorted(AUTHENTICATED))
def test_unknown_query_parameter_without_a_key_is_not_authenticated(live, anonymous_client,
                                                                    name):
    response = call(anonymous_client, name, live, query="?version=9.9.9")

    assert_envelope(response, 401, "not_authenticated")


def test_method_not_allowed_answers_the_envelope_with_allow(live, api_client):
    response = api_client.delete(reverse("predict", kwargs={"name": MODEL}))

    assert_envelope(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


def test_not_acceptable_answers_the_envelope_in_json(live, api_client):
    response = api_client.get(reverse("model-list"), HTTP_ACCEPT="application/xml")

    assert_envelope(response, 406, "not_acceptable")
    assert response["Content-Type"] == "application/json"
