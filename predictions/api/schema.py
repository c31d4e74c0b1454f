"""How the API key scheme and each operation's scope appear in the OpenAPI document."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "predictions.api.auth.APIKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Api-Key <key>`; keys are created with `manage.py "
                               "create_api_key` or in the admin"}


class ScopedAutoSchema(AutoSchema):
    """Each operation names the API key scope it needs: `x-api-key-scope` and a sentence of
    its description (OpenAPI 3.0 allows scopes in security requirements only for OAuth)."""

    def get_description(self) -> str:
        scope = getattr(self.view, "api_key_scope", None)
        described = super().get_description() or ""
        if scope is None:
            return described
        return f"{described}\n\nNeeds an API key with the `{scope}` scope.".strip()

    def get_extensions(self) -> dict:
        scope = getattr(self.view, "api_key_scope", None)
        return {**super().get_extensions(), **({"x-api-key-scope": scope} if scope else {})}


NULL = {"$ref": "#/components/schemas/NullEnum"}
ERROR_ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}
ERRORS_EVERYWHERE = {
    "400": "malformed_json: the body is not JSON; invalid_query_parameter: a query parameter "
           "the operation does not take, or a value it cannot take",
    "406": "not_acceptable: the Accept header refuses application/json (the body is JSON "
           "anyway)",
}
# Where a predict answer leads: each prediction's id is the path of these operations.
PREDICTION_LINKS = {
    "PostFeedback": ("/api/v1/predictions/{prediction_id}/feedback", "post",
                     "post the observed outcome of the first prediction"),
    "GetPredictionRecord": ("/api/v1/predictions/{prediction_id}", "get",
                            "read the logged record of the first prediction"),
    "GetPredictionExplanation": ("/api/v1/predictions/{prediction_id}/explanation", "get",
                                 "explain the first prediction's logged inputs"),
}
PREDICT_PATHS = ("/api/v1/models/{name}/predict",
                 "/api/v1/models/{name}/versions/{version}/predict")
CONTRACT_DESCRIPTION = """

Every error is the envelope `ErrorEnvelope` (docs/api.md#errors), also for a method an
operation does not take (405 `method_not_allowed`, with `Allow`, answered after the API key
is checked) and for an `Accept` header that refuses JSON (406 `not_acceptable`). Every
request body is required; unknown body fields and unknown query parameters are refused.
The instances a model takes are described by `GET /api/v1/models/{name}/schema` (a closed
JSON Schema per live version)."""


def _nullable_references(node) -> bool:
    """Rewrite every `{"nullable": true, "allOf"/"oneOf": [...]}` or `{"nullable": true,
    "$ref": ...}` in place as `oneOf: [<the schema>, NullEnum]`. OpenAPI 3.0 lets `nullable`
    widen only a `type` beside it, so a validator keeping to the letter (OAS30Validator)
    refuses null for the first forms; the second form is what drf-spectacular itself writes
    for nullable choices. True when anything was rewritten."""
    changed = False
    if isinstance(node, dict):
        if node.get("nullable") is True and "type" not in node:
            alternatives = (node.pop("allOf", None) or node.pop("oneOf", None)
                            or ([{"$ref": node.pop("$ref")}] if "$ref" in node else None))
            if alternatives is not None:
                del node["nullable"]
                node["oneOf"] = [*alternatives, NULL]
                changed = True
        for value in node.values():
            changed = _nullable_references(value) or changed
    elif isinstance(node, list):
        for value in node:
            changed = _nullable_references(value) or changed
    return changed


def contract_postprocess(result, generator, request, public):
    """The parts of the contract drf-spectacular does not write by itself (docs/api.md):
    required bodies, null under OpenAPI 3.0's rules, the ErrorDetail list, the errors every
    operation can answer, and the links from a predict answer to its predictions."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    if _nullable_references(result):
        components.setdefault("NullEnum", {"enum": [None]})
    details = components["Error"]["properties"]["details"]
    components["Error"]["properties"]["details"] = {
        "oneOf": [{"type": "array", "items": details["items"]},
                  {"type": "object", "additionalProperties": True}],
        "description": details.get("description", ""),
    }
    operation_ids = {(path, method): operation["operationId"]
                     for path, operations in result["paths"].items()
                     for method, operation in operations.items() if "operationId" in operation}
    for path, operations in result["paths"].items():
        for operation in operations.values():
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
            for status, description in ERRORS_EVERYWHERE.items():
                operation["responses"].setdefault(status, {
                    "content": {"application/json": {"schema": ERROR_ENVELOPE}},
                    "description": ""})
                operation["responses"][status]["description"] = description
            if path in PREDICT_PATHS:
                operation["responses"]["200"]["links"] = {
                    name: {"operationId": operation_ids[target, verb],
                           "parameters": {"prediction_id":
                                          "$response.body#/predictions/0/prediction_id"},
                           "description": text}
                    for name, (target, verb, text) in PREDICTION_LINKS.items()}
    result["info"]["description"] = result["info"].get("description", "") + CONTRACT_DESCRIPTION
    return result
