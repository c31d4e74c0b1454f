"""The bulk feedback body (docs/api.md#bulk-feedback): its parsing and its documented shapes.

Only the envelope `{"outcomes": [...]}` is parsed here; each outcome is checked by the service
(predictions.feedback), so every caller gets the same checks.
"""

from django.conf import settings
from rest_framework import serializers

from core.errors import ValidationError
from predictions.feedback import STATUSES
from predictions.validation import field_echo


def _refuse(field: str, code: str, message: str):
    raise ValidationError(f"invalid request: {message}",
                          details=[{"index": None, "field": field, "code": code,
                                    "message": message}])


def feedback_batch_parse(body) -> list:
    """The outcomes of `{"outcomes": [...]}`; any other body is a validation error."""
    if not isinstance(body, dict):
        _refuse("outcomes", "wrong_type", "the body must be an object: {\"outcomes\": [...]}")
    for name in body:
        if name != "outcomes":
            _refuse(field_echo(name), "unexpected_field", f"unexpected field {field_echo(name)!r}")
    if "outcomes" not in body:
        _refuse("outcomes", "missing", "outcomes is required")
    return body["outcomes"]


def feedback_parse(body):
    """The `actual` of `{"actual": ...}` (POST /predictions/{id}/feedback); a body that is not
    an object, lacks `actual` or holds any other field is a validation error."""
    if not isinstance(body, dict):
        _refuse("actual", "wrong_type", "the body must be an object: {\"actual\": ...}")
    unexpected = [name for name in body if name != "actual"]
    if unexpected:
        raise ValidationError(
            "invalid request: the body takes one field, 'actual'",
            details=[{"index": None, "field": field_echo(name), "code": "unexpected_field",
                      "message": "is not a field of this body"} for name in unexpected])
    if body.get("actual") is None:
        _refuse("actual", "missing", "actual is required")
    return body["actual"]


# What one outcome may be (POST /predictions/{id}/feedback): which values a prediction
# accepts depends on its model (docs/api.md#feedback); one it does not is 422.
ACTUAL_SCHEMA = {
    "anyOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}],
    "description": "the observed outcome: a number (regression), a class label (classifiers; "
                   "a binary label also as true/false, 1/0 or \"1\"/\"0\"), true/false "
                   "(anomaly)",
}
FEEDBACK_REQUEST_SCHEMA = {
    "type": "object", "required": ["actual"], "additionalProperties": False,
    "properties": {"actual": ACTUAL_SCHEMA},
}

# The outcome objects are closed (additionalProperties: false): a misspelt field is refused,
# not ignored. `actual` takes any JSON value; which ones a prediction accepts depends on its
# model (docs/api.md#feedback), and one it does not is that outcome's `invalid`.
FEEDBACK_BATCH_REQUEST_SCHEMA = {
    "type": "object", "required": ["outcomes"], "additionalProperties": False,
    "properties": {"outcomes": {
        "type": "array", "minItems": 1, "maxItems": settings.FEEDBACK_MAX_BATCH,
        "items": {
            "type": "object", "required": ["prediction_id", "actual"],
            "additionalProperties": False,
            "properties": {
                "prediction_id": {"type": "string", "format": "uuid",
                                  "description": "as the predict answer gave it"},
                "actual": {"description": "any JSON value: one the prediction's model "
                                          "cannot take is this outcome's `invalid`. "
                                          + ACTUAL_SCHEMA["description"]},
            },
        },
    }},
}


class OutcomeResultSerializer(serializers.Serializer):
    prediction_id = serializers.CharField(help_text="as posted")
    status = serializers.ChoiceField(choices=STATUSES)
    code = serializers.CharField(
        required=False, help_text="why, for not_found (prediction_not_found), conflict "
                                  "(feedback_exists) and invalid (missing, wrong_type, "
                                  "not_finite, unknown_category)")
    stored = serializers.JSONField(required=False,
                                   help_text="conflict only: the outcome already recorded")


class FeedbackCountsSerializer(serializers.Serializer):
    recorded = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    conflict = serializers.IntegerField()
    not_found = serializers.IntegerField()
    invalid = serializers.IntegerField()


class FeedbackBatchResponseSerializer(serializers.Serializer):
    results = OutcomeResultSerializer(many=True, help_text="one per outcome, in request order")
    counts = FeedbackCountsSerializer()
