"""OpenAPI 3 at /api/schema/ and Swagger UI at /api/docs/ (docs/api.md#endpoints), served without a
CDN."""

import re

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import get_resolver

PATHS = {
    "/api/v1/health": {"get"},
    "/api/v1/ready": {"get"},
    "/api/v1/models": {"get"},
    "/api/v1/models/{name}": {"get"},
    "/api/v1/models/{name}/versions": {"get"},
    "/api/v1/models/{name}/schema": {"get"},
    "/api/v1/models/{name}/predict": {"post"},
    "/api/v1/models/{name}/explain": {"post"},
    "/api/v1/predictions/{prediction_id}/feedback": {"post"},
}


@pytest.fixture
def schema(anonymous_client) -> dict:
    response = anonymous_client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_is_valid_openapi_without_generator_warnings(tmp_path):
    # Raises CommandError on a compliance error or on any warning of the generator.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file",
                 str(tmp_path / "schema.yaml"))

    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")


def test_schema_endpoint_is_open_and_documents_every_endpoint(schema):
    assert schema["openapi"].startswith("3.")
    documented = {path: set(operations) - {"parameters"}
                  for path, operations in schema["paths"].items()}
    assert {path: documented.get(path) for path in PATHS} == PATHS


def test_schema_documents_the_error_envelope_on_errors(schema):
    components = schema["components"]["schemas"]
    envelope = components["ErrorEnvelope"]
    assert envelope["required"] == ["error"]
    assert set(components["Error"]["properties"]) == {"code", "message", "request_id", "details"}
    responses = schema["paths"]["/api/v1/models/{name}/predict"]["post"]["responses"]
    for status in ("400", "401", "403", "404", "413", "415", "422", "429", "500", "503"):
        content = responses[status]["content"]["application/json"]["schema"]
        assert content == {"$ref": "#/components/schemas/ErrorEnvelope"}, status


def test_schema_documents_the_api_key_scheme(schema):
    scheme = schema["components"]["securitySchemes"]["ApiKeyAuth"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert schema["paths"]["/api/v1/models"]["get"]["security"] == [{"ApiKeyAuth": []}]


def test_docs_page_loads_swagger_ui_from_local_static_files(anonymous_client):
    response = anonymous_client.get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    sources = re.findall(r"<script[^>]*\ssrc=[\"']([^\"']+)", html)
    sources += re.findall(r"<link[^>]*\shref=[\"']([^\"']+)", html)
    assert any("swagger-ui" in source for source in sources)
    for source in sources:
        assert not re.match(r"(https?:)?//", source), source
        assert source.startswith("/static/"), source
    assert not re.search(r"https?://(cdn|unpkg|cdnjs)", html)


def _operations(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def _nodes(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def test_every_request_body_is_required(schema):
    bodies = [(path, operation["requestBody"]) for path, method, operation in _operations(schema)
              if method == "post"]

    assert len(bodies) == 6
    assert all(body.get("required") is True for _, body in bodies), bodies


def test_null_is_allowed_only_in_ways_openapi_30_validators_understand(schema):
    # OpenAPI 3.0: `nullable` widens the `type` beside it, nothing else; a nullable reference
    # is a oneOf with NullEnum (drf-spectacular's own form).
    for node in _nodes(schema):
        if node.get("nullable"):
            assert "type" in node and not {"allOf", "oneOf", "anyOf", "$ref"} & set(node), node
    prediction = schema["components"]["schemas"]["DriftReport"]["properties"]["prediction"]
    assert prediction["oneOf"] == [{"$ref": "#/components/schemas/DriftFigures"},
                                   {"$ref": "#/components/schemas/NullEnum"}]
    assert schema["components"]["schemas"]["NullEnum"] == {"enum": [None]}


def test_error_details_are_error_detail_items_or_an_object(schema):
    components = schema["components"]["schemas"]
    details = components["Error"]["properties"]["details"]

    assert details["oneOf"][0] == {"type": "array",
                                   "items": {"$ref": "#/components/schemas/ErrorDetail"}}
    assert details["oneOf"][1]["type"] == "object"
    assert components["ErrorDetail"]["required"] == ["code", "field", "index", "message"]


def test_feedback_bodies_are_closed(schema):
    paths = schema["paths"]
    single = paths["/api/v1/predictions/{prediction_id}/feedback"]["post"]["requestBody"]
    bulk = paths["/api/v1/feedback"]["post"]["requestBody"]
    single = single["content"]["application/json"]["schema"]
    bulk = bulk["content"]["application/json"]["schema"]

    assert (single["required"], single["additionalProperties"]) == (["actual"], False)
    assert bulk["additionalProperties"] is False
    assert bulk["properties"]["outcomes"]["items"]["additionalProperties"] is False


def test_predict_and_explain_bodies_are_one_of_their_forms_with_their_limits(schema):
    predict = schema["paths"]["/api/v1/models/{name}/predict"]["post"]["requestBody"]
    explain = schema["paths"]["/api/v1/models/{name}/explain"]["post"]["requestBody"]
    predict = predict["content"]["application/json"]["schema"]["oneOf"]
    explain = explain["content"]["application/json"]["schema"]["oneOf"]

    assert predict[0]["properties"]["instances"]["maxItems"] == settings.PREDICT_MAX_BATCH
    assert predict[1]["maxItems"] == settings.PREDICT_MAX_BATCH
    assert [form.get("required") for form in explain] == [["instance"], ["instances"], None]
    assert all(form.get("additionalProperties") is False for form in explain[:2])
    assert explain[2]["maxItems"] == settings.EXPLAIN_MAX_INSTANCES


def test_a_predict_answer_links_to_its_predictions(schema):
    operation_ids = {path: operation["operationId"]
                     for path, _, operation in _operations(schema)}
    for path in ("/api/v1/models/{name}/predict",
                 "/api/v1/models/{name}/versions/{version}/predict"):
        links = schema["paths"][path]["post"]["responses"]["200"]["links"]
        assert {link["operationId"] for link in links.values()} == {
            operation_ids["/api/v1/predictions/{prediction_id}/feedback"],
            operation_ids["/api/v1/predictions/{prediction_id}"],
            operation_ids["/api/v1/predictions/{prediction_id}/explanation"]}
        for link in links.values():
            assert link["parameters"] == {
                "prediction_id": "$response.body#/predictions/0/prediction_id"}


def test_every_operation_documents_400_and_406_with_the_envelope(schema):
    for path, method, operation in _operations(schema):
        for status in ("400", "406"):
            content = operation["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}, (
                path, method, status)


def test_documented_query_parameters_are_those_each_view_accepts(schema):
    views = {}
    for included in get_resolver().url_patterns:
        if str(included.pattern) == "api/v1/":
            for pattern in included.url_patterns:
                path = "/api/v1/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
                views[path] = pattern.callback.view_class
    assert set(views) == set(schema["paths"])
    for path, method, operation in _operations(schema):
        documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        assert documented == views[path]().accepted_query_parameters(), (path, method)
    assert {p["name"] for p in schema["paths"]["/api/v1/models"]["get"]["parameters"]} == {
        "limit", "offset"}
