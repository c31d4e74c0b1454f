"""Run by tests/api/test_generated_client.py in the client's own virtualenv (nothing of the
project installed): use the client openapi-python-client generated from the live OpenAPI
document, as it came out, to read a model's instance schema, predict, explain, post
feedback and read the record back; then check OpenAPI 3.0's own reading of null with
openapi-schema-validator. Prints what it got as JSON.

    python generated_client_use.py BASE_URL API_KEY MODEL SCHEMA_JSON
"""

import json
import sys

from openapi_schema_validator import OAS30Validator
from pulselytics_client import AuthenticatedClient
from pulselytics_client.api.v1 import (
    v1_models_explain_create,
    v1_models_list,
    v1_models_predict_create,
    v1_models_schema_retrieve,
    v1_predictions_feedback_create,
    v1_predictions_retrieve,
)
from pulselytics_client.models import (
    ExplainResponse,
    FeedbackResponse,
    PaginatedModelSummaryList,
    PredictionRecord,
    PredictResponse,
    V1ModelsExplainCreateBodyType0,
    V1ModelsExplainCreateBodyType0Instance,
    V1ModelsPredictCreateBodyType0,
    V1ModelsPredictCreateBodyType0InstancesItem,
    V1PredictionsFeedbackCreateBody,
)


def example(schema: dict):
    """A value the property's schema takes: its first category, or its lowest number."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema["type"][0] if isinstance(schema["type"], list) else schema["type"]
    if kind == "boolean":
        return True
    if kind == "string":
        return "x"
    low = max(schema.get("minimum", 0), 0)
    return int(low) if kind == "integer" else float(low)


def nullable_properties_take_null(document: dict) -> dict:
    """Per component property the document lets be null, whether OAS30Validator takes null."""
    found = {}
    for name, component in document["components"]["schemas"].items():
        for field, schema in component.get("properties", {}).items():
            options = schema.get("oneOf", [])
            if schema.get("nullable") or {"$ref": "#/components/schemas/NullEnum"} in options:
                validator = OAS30Validator({**schema, "components": document["components"]})
                found[f"{name}.{field}"] = validator.is_valid(None)
    return found


def main(base_url: str, key: str, model: str, schema_path: str) -> dict:
    client = AuthenticatedClient(base_url=base_url, token=key, prefix="Api-Key",
                                 raise_on_unexpected_status=True)
    listed = v1_models_list.sync(client=client)
    assert isinstance(listed, PaginatedModelSummaryList), listed
    published = v1_models_schema_retrieve.sync(model, client=client).instance_schema.to_dict()
    instance = {name: example(schema) for name, schema in published["properties"].items()
                if name in published["required"]}

    predicted = v1_models_predict_create.sync(model, client=client, body=(
        V1ModelsPredictCreateBodyType0(instances=[
            V1ModelsPredictCreateBodyType0InstancesItem.from_dict(instance)])))
    assert isinstance(predicted, PredictResponse), predicted
    prediction = predicted.predictions[0]
    explained = v1_models_explain_create.sync(model, client=client, body=(
        V1ModelsExplainCreateBodyType0(
            instance=V1ModelsExplainCreateBodyType0Instance.from_dict(instance))))
    assert isinstance(explained, ExplainResponse), explained
    feedback = v1_predictions_feedback_create.sync(
        str(prediction.prediction_id), client=client,
        body=V1PredictionsFeedbackCreateBody(actual=prediction.value))
    assert isinstance(feedback, FeedbackResponse), feedback
    record = v1_predictions_retrieve.sync(str(prediction.prediction_id), client=client)
    assert isinstance(record, PredictionRecord), record

    with open(schema_path) as file:
        document = json.load(file)
    return {"models": listed.count, "instance": instance,
            "prediction_id": str(prediction.prediction_id), "value": prediction.value,
            "explained_value": explained.explanations[0].value,
            "feedback_actual": feedback.actual, "record_outcome": record.outcome.to_dict(),
            "null_taken": nullable_properties_take_null(document)}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:5])))
