"""The published instance schema (predictions/instance_schema.py, docs/api.md#instance-schema)
agrees with validation: instances generated from it (schemathesis' generator, as a client or
a fuzzer would draw them) are accepted, and instances that violate it are refused. Pure: no
database."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator
from schemathesis import GenerationMode

from core.errors import ValidationError
from predictions.instance_schema import DIALECT, instance_json_schema
from predictions.validation import NUMBER_LIMIT, instances_validate


def feature(name, dtype, *, categories=None, minimum=None, maximum=None, pii=False,
            protected=False, input=True) -> dict:
    return {"name": name, "dtype": dtype, "categories": categories, "min": minimum,
            "max": maximum, "pii": pii, "protected": protected, "input": input}


# Every kind of feature validation knows: bounded and unbounded numbers, an int, declared
# and free categories, a personal input, a bool, an audit-only protected attribute.
FEATURE_SCHEMA = {"target": "y", "features": [
    feature("rate", "float", minimum=0, maximum=1),
    feature("followers", "float"),
    feature("hashtags", "int", minimum=0, maximum=30),
    feature("visits", "int"),
    feature("platform", "category", categories=["instagram", "tiktok", "x"]),
    feature("note", "category"),
    feature("email", "category", pii=True),
    feature("demo_requested", "bool"),
    feature("gender", "category", categories=["f", "m"], protected=True, input=False),
]}


def test_schema_is_a_closed_object_of_the_features():
    schema = instance_json_schema(feature_schema=FEATURE_SCHEMA, title="t 1.0.0 instance")

    assert schema["$schema"] == DIALECT
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["rate", "followers", "hashtags", "visits", "platform", "note",
                                  "email", "demo_requested"]
    properties = schema["properties"]
    assert properties["rate"] == {"type": "number", "minimum": 0, "maximum": 1}
    assert properties["followers"] == {"type": "number", "minimum": -NUMBER_LIMIT,
                                       "maximum": NUMBER_LIMIT}
    assert properties["hashtags"] == {"type": "integer", "minimum": 0, "maximum": 30}
    assert properties["visits"] == {"type": "integer", "minimum": -int(NUMBER_LIMIT),
                                    "maximum": int(NUMBER_LIMIT)}
    assert properties["platform"] == {"type": "string", "enum": ["instagram", "tiktok", "x"]}
    assert properties["note"] == {"type": "string", "pattern": "^[^\\u0000]*$"}
    assert properties["demo_requested"] == {"type": "boolean"}
    assert properties["gender"] == {"type": ["string", "null"], "enum": ["f", "m", None]}
    Draft202012Validator.check_schema(schema)


def test_openapi_form_uses_nullable_and_no_dialect():
    schema = instance_json_schema(feature_schema=FEATURE_SCHEMA, openapi_30=True)

    assert "$schema" not in schema
    assert schema["properties"]["gender"] == {"type": "string", "nullable": True,
                                              "enum": ["f", "m", None]}


def _bodies(mode: GenerationMode, examples: int) -> list:
    """Request bodies schemathesis draws from an operation whose body is one instance."""
    body = instance_json_schema(feature_schema=FEATURE_SCHEMA, openapi_30=True)
    operation = schemathesis.openapi.from_dict({
        "openapi": "3.0.3", "info": {"title": "instances", "version": "1"},
        "paths": {"/instance": {"post": {
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": body}}},
            "responses": {"200": {"description": ""}}}}},
    })["/instance"]["POST"]
    drawn = []

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def draw(case):
        drawn.append(case.body)

    draw()
    return drawn


def test_instances_generated_from_the_schema_are_accepted():
    published = Draft202012Validator(instance_json_schema(feature_schema=FEATURE_SCHEMA))
    instances = _bodies(GenerationMode.POSITIVE, 100)

    assert len(instances) >= 80
    for instance in instances:
        assert published.is_valid(instance), instance
    # One batch: validation reports every problem of every instance at once.
    batch = instances_validate(schema=FEATURE_SCHEMA, instances=instances)
    assert batch.rows == len(instances)


def test_instances_that_violate_the_schema_are_refused():
    published = Draft202012Validator(instance_json_schema(feature_schema=FEATURE_SCHEMA))
    # The generator's negative cases, kept when they are JSON and really invalid (it may
    # draw an integral float as a "non-integer", which JSON Schema counts as an integer).
    violating = [body for body in _bodies(GenerationMode.NEGATIVE, 100)
                 if not isinstance(body, bytes) and not published.is_valid(body)]

    assert len(violating) >= 40
    for instance in violating:
        with pytest.raises(ValidationError):
            instances_validate(schema=FEATURE_SCHEMA, instances=[instance])


@pytest.mark.parametrize("value", [3.5e38, -3.5e38, int(NUMBER_LIMIT) + 1, 10**39])
def test_a_number_beyond_single_precision_is_not_finite(value):
    # Tree models compute in float32: such a number would reach them as infinity (a 500).
    with pytest.raises(ValidationError) as refused:
        instances_validate(schema=FEATURE_SCHEMA, instances=[{
            "rate": 0.5, "followers": value, "hashtags": 1, "visits": value,
            "platform": "x", "note": "", "email": "", "demo_requested": True}])

    assert [(d["field"], d["code"]) for d in refused.value.details] == [
        ("followers", "not_finite"), ("visits", "not_finite")]
