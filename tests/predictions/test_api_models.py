"""Models, health and readiness endpoints (docs/api.md#endpoints)."""

import pytest

from mlregistry import services as registry
from tests.factories import register_version

MODELS = ["engagement-anomaly", "engagement-comments", "engagement-likes", "lead-conversion"]
LIKES = "engagement-likes"


def test_models_lists_every_model_with_its_production_version(demo_models, api_client,
                                                              data_scientist):
    register_version(user=data_scientist, name="fresh-model")  # in testing: no production

    response = api_client.get("/api/v1/models")

    assert response.status_code == 200
    listed = {entry["name"]: entry for entry in response.json()["results"]}
    assert set(listed) == {*MODELS, "fresh-model"}
    likes = demo_models.version(LIKES)
    assert listed[LIKES] == {"name": LIKES, "task": "regression",
                             "description": likes.model.description, "client_id": "",
                             "production_version": likes.version}
    assert listed["lead-conversion"]["task"] == "binary_classification"
    assert listed["fresh-model"]["production_version"] is None


def test_model_detail_has_schema_production_version_and_no_tests(demo_models, api_client):
    likes = demo_models.version(LIKES)

    response = api_client.get(f"/api/v1/models/{LIKES}")

    assert response.status_code == 200
    body = response.json()
    assert body["feature_schema"] == likes.feature_schema
    assert body["production"]["version"] == likes.version
    assert body["production"]["model_sha256"] == likes.model_sha256
    assert body["production"]["status"] == "production"
    assert body["production"]["traffic_percentage"] == 100
    assert body["production"]["metrics"] == likes.metrics
    assert body["live_tests"] == []
    assert body["client_models"] == []


def test_model_detail_lists_live_tests(demo_models, api_client, version_copy):
    people = demo_models.people
    challenger = registry.model_version_deploy(
        version=version_copy(of=demo_models.version(LIKES), people=people),
        user=people["deployer"], traffic=30)
    shadow = registry.model_version_deploy(
        version=version_copy(of=demo_models.version(LIKES), people=people),
        user=people["deployer"], shadow=True)

    response = api_client.get(f"/api/v1/models/{LIKES}")

    assert response.status_code == 200
    body = response.json()
    assert body["production"]["traffic_percentage"] == 70
    assert sorted(body["live_tests"], key=lambda t: t["version"]) == [
        {"version": challenger.version, "kind": "challenger", "traffic_percentage": 30},
        {"version": shadow.version, "kind": "shadow", "traffic_percentage": 0},
    ]


def test_model_detail_of_an_unknown_model_is_model_not_found(demo_models, api_client):
    response = api_client.get("/api/v1/models/no-such-model")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


def test_model_versions_lists_every_version_newest_first(demo_models, api_client, version_copy):
    newer = version_copy(of=demo_models.version(LIKES), people=demo_models.people)

    response = api_client.get(f"/api/v1/models/{LIKES}/versions")

    assert response.status_code == 200
    versions = response.json()["results"]
    assert [(v["version"], v["status"]) for v in versions] == [
        (newer.version, "staging"), (demo_models.version(LIKES).version, "production")]
    assert set(versions[0]) == {"version", "status", "model_sha256", "traffic_percentage",
                                "is_shadow", "created_at", "deployed_at", "metrics"}


def test_model_versions_of_an_unknown_model_is_model_not_found(demo_models, api_client):
    response = api_client.get("/api/v1/models/no-such-model/versions")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize("path", ["/api/v1/models", f"/api/v1/models/{LIKES}",
                                  f"/api/v1/models/{LIKES}/versions"])
def test_model_endpoints_need_a_key(demo_models, anonymous_client, path):
    response = anonymous_client.get(path)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_health_is_open_without_a_key(anonymous_client):
    response = anonymous_client.get("/api/v1/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["X-Request-ID"]


def test_ready_when_every_production_model_loads(demo_models, api_client):
    response = api_client.get("/api/v1/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "models": dict.fromkeys(MODELS, "ready")}


def test_ready_without_a_key_names_no_model(demo_models, anonymous_client):
    response = anonymous_client.get("/api/v1/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_ready_ignores_models_without_a_production_version(demo_models, api_client,
                                                          data_scientist):
    register_version(user=data_scientist, name="fresh-model")

    response = api_client.get("/api/v1/ready")

    assert response.status_code == 200
    assert set(response.json()["models"]) == set(MODELS)
