"""GET /api/v1/models/{name}/schema (docs/api.md#instance-schema): the live version's instance
schema, and predict agreeing with it: instances drawn from it are answered, instances that
violate it are refused, each one."""

import pytest
from jsonschema import Draft202012Validator
from schemathesis import GenerationMode

from predictions.instance_schema import DIALECT, instance_json_schema
from predictions.models import PredictionLog
from tests.api.published import drawn, instances_from
from tests.factories import register_version

pytestmark = pytest.mark.filterwarnings("ignore:X has feature names:UserWarning")

LEAD = "lead-conversion"


def test_schema_is_the_production_versions_instance_schema(demo_models, api_client):
    version = demo_models.version(LEAD)

    response = api_client.get(f"/api/v1/models/{LEAD}/schema")

    assert response.status_code == 200, response.content
    body = response.json()
    assert {key: body[key] for key in ("model", "served_by", "version", "model_sha256",
                                       "dialect")} == {
        "model": LEAD, "served_by": LEAD, "version": version.version,
        "model_sha256": version.model_sha256, "dialect": DIALECT}
    assert body["instance_schema"] == instance_json_schema(
        feature_schema=version.feature_schema, title=f"{LEAD} {version.version} instance")
    assert body["instance_schema"]["additionalProperties"] is False


@pytest.mark.parametrize("name", ["lead-conversion", "engagement-likes", "engagement-anomaly"])
def test_instances_drawn_from_the_published_schema_are_predicted(demo_models, api_client,
                                                                 name):
    published = api_client.get(f"/api/v1/models/{name}/schema").json()["instance_schema"]
    instances = drawn(instances_from(published), 40)

    response = api_client.post_json(f"/api/v1/models/{name}/predict", {"instances": instances})

    assert response.status_code == 200, response.content
    assert len(response.json()["predictions"]) == len(instances)


@pytest.mark.parametrize("name", ["lead-conversion", "engagement-likes"])
def test_instances_violating_the_published_schema_are_each_refused(demo_models, api_client,
                                                                    name):
    published = api_client.get(f"/api/v1/models/{name}/schema").json()["instance_schema"]
    validator = Draft202012Validator(published)
    violating = [instance for instance in drawn(
        instances_from(published, mode=GenerationMode.NEGATIVE), 60)
        if not isinstance(instance, bytes) and not validator.is_valid(instance)]
    assert len(violating) >= 20

    response = api_client.post_json(f"/api/v1/models/{name}/predict", {"instances": violating})

    assert response.status_code == 422, response.content
    refused = {detail["index"] for detail in response.json()["error"]["details"]}
    assert refused == set(range(len(violating)))
    assert not PredictionLog.objects.filter(request_id=response["X-Request-ID"]).exists()


def test_schema_of_a_model_without_a_production_version_is_model_not_ready(db, api_client,
                                                                           data_scientist):
    register_version(user=data_scientist, name="fresh-model")

    response = api_client.get("/api/v1/models/fresh-model/schema")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_not_ready"


def test_schema_for_a_client_bound_key_is_its_clients_own_model(demo_models, version_copy,
                                                                 anonymous_client):
    from mlregistry import services as registry
    from predictions import services as serving

    people = demo_models.people
    own = registry.model_version_deploy(
        version=version_copy(of=demo_models.version(LEAD), people=people,
                             name=f"{LEAD}--acme", client_id="acme"),
        user=people["deployer"])
    _, key = serving.api_key_create(name="acme", client_id="acme", scopes=["read"])

    response = anonymous_client.get(f"/api/v1/models/{LEAD}/schema",
                                    HTTP_AUTHORIZATION=f"Api-Key {key}")

    assert response.status_code == 200, response.content
    assert (response.json()["served_by"], response.json()["version"]) == (
        f"{LEAD}--acme", own.version)
