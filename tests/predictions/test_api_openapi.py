"""OpenAPI 3 at /api/schema/ and Swagger UI at /api/docs/ (docs/api.md#endpoints), served without a
CDN."""

import re

import pytest
from django.core.management import call_command

PATHS = {
    "/api/v1/health": {"get"},
    "/api/v1/ready": {"get"},
    "/api/v1/models": {"get"},
    "/api/v1/models/{name}": {"get"},
    "/api/v1/models/{name}/versions": {"get"},
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
