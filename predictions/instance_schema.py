"""A version's instances as a JSON Schema (pure: no database), for clients, client
generators and fuzzers (docs/api.md#instance-schema).

Derived from the stored feature schema (core/ml/schema.py) so that it says what
predictions.validation enforces, no more and no less: an instance the schema accepts is
accepted by predict, and one it refuses is refused (tests/predictions/test_instance_schema.py
checks both on generated instances).

- A closed object (`additionalProperties: false`): its properties are the schema's features,
  inputs and non-input (protected, audit-only) ones; anything else is `unexpected_field`.
- Every input feature is required and not null; a non-input feature is optional and may be
  null ("not given").
- `float`: a number; `int`: an integer (JSON Schema counts `3.0` as one, as validation
  does); both within ±NUMBER_LIMIT (float32's range, what validation takes as finite) unless
  the feature has tighter `min`/`max`
  (inclusive; those of the stored schema, which validation enforces; the training data's
  range is no bound). `bool`: true/false. `category`: a string, one of `enum` when the
  feature declares its categories, else any text without NUL (which the prediction log
  cannot store).

Dialect: JSON Schema draft 2020-12 (`$schema` says so), by default. With `openapi_30` the
same schema in the subset OpenAPI 3.0 understands (`nullable` instead of a `"null"` type,
no `$schema`), to be placed in an OpenAPI document.
"""

from predictions.validation import NUMBER_LIMIT

DIALECT = "https://json-schema.org/draft/2020-12/schema"
NO_NUL = "^[^\\u0000]*$"


def _value_schema(feature: dict) -> dict:
    dtype = feature["dtype"]
    if dtype == "bool":
        return {"type": "boolean"}
    if dtype == "category":
        categories = feature.get("categories")
        if categories:
            return {"type": "string", "enum": list(categories)}
        return {"type": "string", "pattern": NO_NUL}
    low, high = feature.get("min"), feature.get("max")
    # An int's default bounds are written as integers: a generator then draws exact ones.
    limit = int(NUMBER_LIMIT) if dtype == "int" else NUMBER_LIMIT
    return {"type": "integer" if dtype == "int" else "number",
            "minimum": -limit if low is None else low,
            "maximum": limit if high is None else high}


def _nullable(schema: dict, *, openapi_30: bool) -> dict:
    if openapi_30:
        schema = {**schema, "nullable": True}
    else:
        schema = {**schema, "type": [schema["type"], "null"]}
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    return schema


def instance_json_schema(*, feature_schema: dict, title: str = "",
                         openapi_30: bool = False) -> dict:
    """The JSON Schema of one instance of a version with this `feature_schema`."""
    properties, required = {}, []
    for feature in feature_schema["features"]:
        name, schema = feature["name"], _value_schema(feature)
        if feature.get("input", True):
            required.append(name)
        else:
            schema = _nullable(schema, openapi_30=openapi_30)
        if feature.get("pii"):
            schema["description"] = "personal: taken as input, never stored or echoed"
        properties[name] = schema
    document = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:  # OpenAPI 3.0 refuses an empty list
        document["required"] = required
    if title:
        document["title"] = title
    return document if openapi_30 else {"$schema": DIALECT, **document}
