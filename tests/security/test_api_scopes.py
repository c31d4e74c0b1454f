"""API key scopes (docs/api.md#authentication): each endpoint needs one scope, and a key
holds only those it was given. The attack: a key made to predict posts outcomes, explains
or reads; each is refused with 403 naming the missing scope, and nothing is written."""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from predictions import services as serving
from predictions.models import DEFAULT_SCOPES, SCOPES, ClientAPIKey, PredictionLog
from tests.factories import register_deployed_version
from tests.predictions.conftest import JSONClient

MODEL = "engagement-likes"
ROW = {"followers": 10.0, "hashtags": 2}


@pytest.fixture
def champion(people):
    return register_deployed_version(**people, name=MODEL)


def client_with(*scopes: str) -> JSONClient:
    _, key = serving.api_key_create(name="scoped", scopes=scopes)
    return JSONClient(HTTP_AUTHORIZATION=f"Api-Key {key}")


def refused_for(response, scope: str) -> bool:
    error = response.json()["error"]
    return (response.status_code, error["code"], error["details"]) == (
        403, "permission_denied", {"scope": scope})


def prediction_id(champion) -> str:
    answer = client_with("predict").post_json(f"/api/v1/models/{MODEL}/predict", [ROW])
    return answer.json()["predictions"][0]["prediction_id"]


def test_a_key_without_feedback_cannot_post_an_outcome(champion):
    logged = prediction_id(champion)

    response = client_with("predict", "explain", "read").post_json(
        f"/api/v1/predictions/{logged}/feedback", {"actual": 3.0})

    assert refused_for(response, "feedback")
    assert PredictionLog.objects.get(prediction_id=logged).actual is None


def test_a_key_with_feedback_posts_the_outcome(champion):
    logged = prediction_id(champion)

    response = client_with("feedback").post_json(f"/api/v1/predictions/{logged}/feedback",
                                                 {"actual": 3.0})

    assert response.status_code == 200
    assert PredictionLog.objects.get(prediction_id=logged).actual == 3.0


def test_a_key_without_explain_cannot_explain(champion):
    response = client_with("predict", "read").post_json(f"/api/v1/models/{MODEL}/explain",
                                                        {"instance": ROW})

    assert refused_for(response, "explain")


def test_a_key_without_predict_cannot_predict(champion):
    response = client_with("explain").post_json(f"/api/v1/models/{MODEL}/predict", [ROW])

    assert refused_for(response, "predict")
    assert not PredictionLog.objects.exists()


@pytest.mark.parametrize("path", ["/api/v1/models", f"/api/v1/models/{MODEL}",
                                  f"/api/v1/models/{MODEL}/versions",
                                  f"/api/v1/models/{MODEL}/drift",
                                  f"/api/v1/models/{MODEL}/performance",
                                  f"/api/v1/models/{MODEL}/schema"])
def test_a_key_without_read_cannot_read(champion, path):
    assert refused_for(client_with("predict").get(path), "read")


def test_create_api_key_defaults_to_predict_explain_and_read(db):
    out = io.StringIO()
    call_command("create_api_key", "crm-sync", stdout=out)

    key = ClientAPIKey.objects.get_from_key(out.getvalue().strip())
    assert key.scopes == list(DEFAULT_SCOPES) == ["predict", "explain", "read"]


def test_create_api_key_gives_exactly_the_scopes_asked_for(db):
    out = io.StringIO()
    call_command("create_api_key", "crm-sync", "--scope", "feedback", "--scope", "predict",
                 stdout=out)

    assert ClientAPIKey.objects.get_from_key(out.getvalue().strip()).scopes == [
        "predict", "feedback"]


def test_an_unknown_scope_is_refused_and_no_key_is_made(db):
    with pytest.raises(Exception, match="invalid choice: 'admin'"):
        call_command("create_api_key", "crm-sync", "--scope", "admin")

    assert not ClientAPIKey.objects.exists()


def test_the_openapi_schema_names_each_operations_scope(db):
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()

    scopes = {(method.upper(), path): operation.get("x-api-key-scope")
              for path, operations in schema["paths"].items()
              for method, operation in operations.items()}
    assert scopes == {
        ("GET", "/api/v1/health"): None,
        ("GET", "/api/v1/ready"): None,
        ("GET", "/api/v1/models"): "read",
        ("GET", "/api/v1/models/{name}"): "read",
        ("GET", "/api/v1/models/{name}/versions"): "read",
        ("GET", "/api/v1/models/{name}/drift"): "read",
        ("GET", "/api/v1/models/{name}/performance"): "read",
        ("GET", "/api/v1/models/{name}/schema"): "read",
        ("POST", "/api/v1/models/{name}/predict"): "predict",
        ("POST", "/api/v1/models/{name}/explain"): "explain",
        ("POST", "/api/v1/predictions/{prediction_id}/feedback"): "feedback",
        ("POST", "/api/v1/feedback"): "feedback",
        ("GET", "/api/v1/predictions/{prediction_id}"): "read",
        ("GET", "/api/v1/predictions/{prediction_id}/explanation"): "explain",
        ("POST", "/api/v1/models/{name}/versions/{version}/predict"): "predict",
        ("POST", "/api/v1/models/{name}/versions/{version}/explain"): "explain",
    }
    feedback = schema["paths"]["/api/v1/predictions/{prediction_id}/feedback"]["post"]
    assert "`feedback` scope" in feedback["description"]


def test_scopes_are_edited_in_the_admin(db, admin_user):
    key, _ = serving.api_key_create(name="crm-sync")
    browser = Client()
    browser.force_login(admin_user)

    response = browser.post(f"/admin/predictions/clientapikey/{key.pk}/change/",
                            {"name": "crm-sync", "client_id": "", "scopes": ["read", "feedback"]})

    assert response.status_code == 302
    key.refresh_from_db()
    assert key.scopes == ["feedback", "read"]


@pytest.mark.django_db(transaction=True)
def test_keys_made_before_scopes_keep_every_scope():
    executor = MigrationExecutor(connection)
    executor.migrate([("predictions", "0003_prediction_failure")])
    old_apps = executor.loader.project_state([("predictions", "0003_prediction_failure")]).apps
    old_apps.get_model("predictions", "ClientAPIKey").objects.create(
        id="old.key", prefix="old", hashed_key="x", name="before scopes")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert ClientAPIKey.objects.get(name="before scopes").scopes == list(SCOPES)
