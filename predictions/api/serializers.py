"""Request parsing and the documented shapes of every body (OpenAPI via drf-spectacular).

Instances are checked against the model's feature schema by predictions.validation (in
one vectorised pass); here only the envelope is parsed, so errors keep the docs/api.md#errors shape
`details: [{"index", "field", "code", "message"}]`.
"""

from django.conf import settings
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from core.errors import ValidationError
from predictions.validation import field_echo, storable

ENVELOPE_FIELDS = {"instances", "routing_key", "client_id"}
KEY_LIMITS = {"routing_key": 200, "client_id": 100}


def _refuse(field: str, code: str, message: str):
    raise ValidationError(f"invalid request: {message}",
                          details=[{"index": None, "field": field, "code": code,
                                    "message": message}])


def _optional_string(body: dict, field: str) -> str:
    value = body.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        _refuse(field, "wrong_type", f"{field} must be a string")
    # Hashed (routing_key) and logged (client_id): UTF-8 and PostgreSQL must take it.
    if not storable(value):
        _refuse(field, "wrong_type", f"{field} must be text without NUL or lone surrogates")
    if len(value) > KEY_LIMITS[field]:
        _refuse(field, "out_of_bounds", f"{field} is longer than {KEY_LIMITS[field]} characters")
    return value


def predict_request_parse(body, *, single_field: str | None = None) -> tuple[list, str, str]:
    """(instances, routing_key, client_id) from `{"instances": [...], ...}` or a bare array.

    With `single_field` ("instance" for explain), `{"instance": {...}}` is accepted too.
    """
    if isinstance(body, list):
        return body, "", ""
    if not isinstance(body, dict):
        _refuse("instances", "wrong_type", "the body must be an object or an array of instances")
    allowed = ENVELOPE_FIELDS | ({single_field} if single_field else set())
    for field in body:
        if field not in allowed:
            # Echoed as the instance fields are: a lone surrogate cannot be rendered as UTF-8.
            _refuse(field_echo(field), "unexpected_field", f"unexpected field {field!r}")
    if single_field and single_field in body:
        if "instances" in body:
            _refuse(single_field, "unexpected_field",
                    f"give either {single_field!r} or 'instances', not both")
        instances = [body[single_field]]
    elif "instances" in body:
        instances = body["instances"]
    else:
        _refuse("instances", "missing", "instances is required")
    return instances, _optional_string(body, "routing_key"), _optional_string(body, "client_id")


# --- documented shapes ----------------------------------------------------------------------


class ErrorDetailSerializer(serializers.Serializer):
    index = serializers.IntegerField(allow_null=True, help_text="the instance (or outcome) "
                                     "at fault, null for the request as a whole")
    field = serializers.CharField(allow_null=True, help_text="the field (or query parameter) "
                                  "at fault, null for a whole instance")
    code = serializers.CharField(help_text="missing, wrong_type, not_finite, "
                                 "unknown_category, out_of_bounds or unexpected_field")
    message = serializers.CharField()


# Documented as a list of ErrorDetail here; predictions.api.schema widens it to "that, or an
# object" (what every other code carries), as one oneOf.
@extend_schema_field(ErrorDetailSerializer(many=True))
class ErrorDetailsField(serializers.JSONField):
    """An error's `details`: ErrorDetail items for validation errors, an object otherwise."""


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="stable machine-readable code (docs/api.md#errors)")
    message = serializers.CharField()
    request_id = serializers.CharField()
    details = ErrorDetailsField(help_text="a list of ErrorDetail for validation_error and "
                                          "invalid_query_parameter; an object otherwise")


class ErrorEnvelopeSerializer(serializers.Serializer):
    error = ErrorSerializer()


# An instance's fields are the model's: one OpenAPI document serves every model, so here an
# instance is any object, and its closed, typed schema is the model's own
# (GET /models/{name}/schema, predictions.instance_schema).
INSTANCE_SCHEMA = {"type": "object", "additionalProperties": True,
                   "description": "feature name -> value: the closed JSON Schema of the live "
                                  "version's instances is GET /api/v1/models/{name}/schema"}
_ROUTING_FIELDS = {
    "routing_key": {"type": "string", "maxLength": 200,
                    "description": "sticky A/B assignment (default: the request id)"},
    "client_id": {"type": "string", "maxLength": 100,
                  "description": "serve this client's own model if it has one"},
}


def _instances(limit: int) -> dict:
    return {"type": "array", "items": INSTANCE_SCHEMA, "minItems": 1, "maxItems": limit}


# Each body is an object or a bare array of instances: one OpenAPI oneOf, written out. The
# limits are the settings' (more instances: 413 batch_too_large).
PREDICT_REQUEST_SCHEMA = {"oneOf": [
    {"type": "object", "required": ["instances"], "additionalProperties": False,
     "properties": {"instances": _instances(settings.PREDICT_MAX_BATCH), **_ROUTING_FIELDS}},
    _instances(settings.PREDICT_MAX_BATCH),
]}
# Explain also takes one `instance`; an object with both is refused (neither branch).
EXPLAIN_REQUEST_SCHEMA = {"oneOf": [
    {"type": "object", "required": ["instance"], "additionalProperties": False,
     "properties": {"instance": INSTANCE_SCHEMA, **_ROUTING_FIELDS}},
    {"type": "object", "required": ["instances"], "additionalProperties": False,
     "properties": {"instances": _instances(settings.EXPLAIN_MAX_INSTANCES),
                    **_ROUTING_FIELDS}},
    _instances(settings.EXPLAIN_MAX_INSTANCES),
]}


class PredictionSerializer(serializers.Serializer):
    prediction_id = serializers.UUIDField()
    version = serializers.CharField()
    model_sha256 = serializers.CharField()
    arm = serializers.ChoiceField(choices=["champion", "challenger", "pinned"],
                                  help_text="pinned: the request named the version")
    value = serializers.JSONField(help_text="number (regression), class label, or true/false "
                                            "(anomaly)")
    probabilities = serializers.DictField(child=serializers.FloatField(), required=False)
    anomaly_score = serializers.FloatField(required=False)


# Written out rather than a nullable nested serializer: OpenAPI 3.0 validators reject null
# for a `$ref` beside `nullable`, and most logged predictions have no outcome yet.
OUTCOME_SCHEMA = {
    "type": "object", "nullable": True, "additionalProperties": False,
    "required": ["actual", "actual_at", "source"],
    "description": "the observed outcome, null until feedback is posted",
    "properties": {
        "actual": {"description": "as posted: a number, a class label or true/false"},
        "actual_at": {"type": "string", "format": "date-time"},
        "source": {"type": "string",
                   "description": "who vouched for it: client:<id>, or key:<prefix> for a key "
                                  "without a client"},
    },
}


@extend_schema_field(OUTCOME_SCHEMA)
class OutcomeField(serializers.JSONField):
    """A prediction record's outcome, documented by OUTCOME_SCHEMA in the OpenAPI schema."""


class PredictionRecordSerializer(PredictionSerializer):
    model = serializers.CharField(help_text="the model that answered (a client's own model, "
                                            "or the global one)")
    request_id = serializers.CharField()
    client_id = serializers.CharField(help_text="the client the request acted for, or empty")
    created_at = serializers.DateTimeField()
    inputs = serializers.DictField(help_text="the instance as logged: personal (pii) features "
                                             "are never stored or returned")
    outcome = OutcomeField(allow_null=True)


class PredictResponseSerializer(serializers.Serializer):
    schema_version = serializers.CharField()
    request_id = serializers.CharField()
    model = serializers.CharField()
    served_by = serializers.CharField(help_text="the model that answered: the client's own "
                                                "model, or the global one")
    scope = serializers.ChoiceField(choices=["client", "global"])
    predictions = PredictionSerializer(many=True)


class ContributionSerializer(serializers.Serializer):
    feature = serializers.CharField()
    contribution = serializers.FloatField()


class OutputBoundSerializer(serializers.Serializer):
    lower = serializers.FloatField(help_text="the lowest value the version answers (0 for a "
                                             "count)")
    raw_value = serializers.FloatField(help_text="the model's own value, which base_value + "
                                                 "sum(contributions) add up to")
    adjustment = serializers.FloatField(help_text="value - raw_value: how much the bound "
                                                  "raised the answer")


class ExplanationSerializer(serializers.Serializer):
    version = serializers.CharField()
    output_space = serializers.ChoiceField(choices=["raw", "log_odds"])
    base_value = serializers.FloatField()
    value = serializers.FloatField()
    probability = serializers.FloatField(required=False)
    bound = OutputBoundSerializer(
        required=False, help_text="only when the version's bound raised the answer (a count "
        "target is never below 0): base_value + sum(contributions) + adjustment = value")
    contributions = serializers.DictField(child=serializers.FloatField())
    top_positive = ContributionSerializer(many=True)
    top_negative = ContributionSerializer(many=True)


class ExplainResponseSerializer(serializers.Serializer):
    schema_version = serializers.CharField()
    request_id = serializers.CharField()
    model = serializers.CharField()
    served_by = serializers.CharField()
    scope = serializers.ChoiceField(choices=["client", "global"])
    explanations = ExplanationSerializer(many=True)


class PredictionExplanationSerializer(serializers.Serializer):
    schema_version = serializers.CharField()
    request_id = serializers.CharField(help_text="this request's id")
    prediction_id = serializers.UUIDField()
    model = serializers.CharField()
    version = serializers.CharField(help_text="the version that answered the prediction")
    model_sha256 = serializers.CharField()
    explanation = ExplanationSerializer()


class FeedbackResponseSerializer(serializers.Serializer):
    prediction_id = serializers.UUIDField()
    actual = serializers.JSONField()
    actual_at = serializers.DateTimeField()


class VersionSerializer(serializers.Serializer):
    version = serializers.CharField()
    status = serializers.CharField()
    model_sha256 = serializers.CharField()
    traffic_percentage = serializers.IntegerField()
    is_shadow = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    deployed_at = serializers.DateTimeField(allow_null=True)
    metrics = serializers.DictField()


class ModelSummarySerializer(serializers.Serializer):
    name = serializers.CharField()
    task = serializers.CharField()
    description = serializers.CharField()
    client_id = serializers.CharField()
    production_version = serializers.CharField(allow_null=True)


class LiveTestSerializer(serializers.Serializer):
    version = serializers.CharField()
    kind = serializers.ChoiceField(choices=["challenger", "shadow"])
    traffic_percentage = serializers.IntegerField()


class ModelDetailSerializer(ModelSummarySerializer):
    feature_schema = serializers.DictField()
    production = VersionSerializer(allow_null=True)
    live_tests = LiveTestSerializer(many=True)
    client_models = serializers.ListField(child=serializers.CharField())


class HealthSerializer(serializers.Serializer):
    status = serializers.CharField()


class ReadySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ready", "not_ready"])
    models = serializers.DictField(
        child=serializers.CharField(), required=False,
        help_text="only for a key with the read scope: each visible model with a production "
                  "version, \"ready\"")


class ReadyStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["not_ready"])


# Without a key a probe learns the status alone; a key with the read scope gets the error
# envelope with the reason per model.
READY_503 = PolymorphicProxySerializer(
    component_name="NotReady", serializers=[ReadyStatusSerializer, ErrorEnvelopeSerializer],
    resource_type_field_name=None)
