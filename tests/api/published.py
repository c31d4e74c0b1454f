"""Instances drawn from a model's published instance schema (GET /api/v1/models/{name}/schema,
docs/api.md#instance-schema) by schemathesis' own generator, as a fuzzer or a client would:
the schema, JSON Schema draft 2020-12, is the body of an operation of a small OpenAPI 3.1
document (whose schemas are that dialect), so no conversion stands between the two."""

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode


def instances_from(published: dict, *, mode: GenerationMode = GenerationMode.POSITIVE):
    """A strategy of instances (request bodies) that `published` accepts (POSITIVE) or, mostly,
    refuses (NEGATIVE: not every draw is invalid; check with a validator)."""
    operation = schemathesis.openapi.from_dict({
        "openapi": "3.1.0", "info": {"title": "instances", "version": "1"},
        "paths": {"/instance": {"post": {
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": published}}},
            "responses": {"200": {"description": "accepted"}}}}},
    })["/instance"]["POST"]
    return operation.as_strategy(generation_mode=mode).map(lambda case: case.body)


def drawn(strategy: st.SearchStrategy, count: int) -> list:
    """`count` draws of `strategy`, the same on every run."""
    values = []

    @settings(max_examples=count, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(value=strategy)
    def draw(value):
        values.append(value)

    draw()
    return values


def openapi_30_form(published: dict) -> dict:
    """`published` (draft 2020-12) as OpenAPI 3.0 writes it: `nullable` for a `"null"` type,
    no `$schema`; what an OpenAPI 3.0 document may hold."""
    properties = {}
    for name, schema in published["properties"].items():
        kinds = schema.get("type")
        properties[name] = ({**schema, "type": kinds[0], "nullable": True}
                            if isinstance(kinds, list) else schema)
    return {**{k: v for k, v in published.items() if k != "$schema"},
            "properties": properties}


def _instances_replaced(node, instance_schema: dict, generic: dict):
    if node == generic:
        return instance_schema
    if isinstance(node, dict):
        return {key: _instances_replaced(value, instance_schema, generic)
                for key, value in node.items()}
    if isinstance(node, list):
        return [_instances_replaced(value, instance_schema, generic) for value in node]
    return node


def model_document(api: dict, *, paths: list[str], path_values: dict,
                   instance_schema: dict, generic_instance: dict) -> dict:
    """The API's OpenAPI document narrowed to one model: only `paths`, each path parameter
    of `path_values` fixed to its value, and every generic instance (`generic_instance`, an
    open object) replaced by the model's closed `instance_schema` (OpenAPI 3.0 form). What a
    client generator or fuzzer sees once it registered the model's published schema."""
    document = {**api, "paths": {path: api["paths"][path] for path in paths}}
    document = _instances_replaced(document, instance_schema, generic_instance)
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in path_values:
                    parameter["schema"] = {"type": "string",
                                           "enum": [path_values[parameter["name"]]]}
    return document
