"""The REST API (docs/api.md): thin views that parse, call one service and format the answer."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import ParseError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from core.api import FastJSONRenderer, error_response
from core.api_views import APIView, ListPagination, paginated_response
from mlregistry import selectors as registry
from predictions import selectors, services
from predictions.api import serializers as s
from predictions.api.auth import (
    APIKeyRateThrottle,
    ExplainInstanceThrottle,
    PredictInstanceThrottle,
    client_for,
    model_for_client,
    model_visible,
)
from predictions.api.feedback_serializers import FEEDBACK_REQUEST_SCHEMA, feedback_parse
from predictions.api.idempotency import IDEMPOTENCY_KEY_PARAMETER, answered_once
from predictions.loader import model_cache
from predictions.models import (
    SCOPE_EXPLAIN,
    SCOPE_FEEDBACK,
    SCOPE_PREDICT,
    SCOPE_READ,
    ClientAPIKey,
)

SCHEMA_VERSION = "v1"


def _errors(*statuses: int) -> dict:
    return {status: OpenApiResponse(s.ErrorEnvelopeSerializer) for status in statuses}


# 503 also comes from any endpoint that reads the database: `database_unavailable`.
COMMON_ERRORS = (400, 401, 413, 415, 422, 429, 500, 503)


def json_body(request):
    """The parsed JSON body; an empty body is malformed JSON, not an empty object."""
    if request.META.get("CONTENT_LENGTH") in (None, "", "0") and not request.stream:
        raise ParseError("the request body is empty; expected JSON")
    return request.data


def version_data(version) -> dict:
    return {"version": version.version, "status": version.status,
            "model_sha256": version.model_sha256,
            "traffic_percentage": version.traffic_percentage, "is_shadow": version.is_shadow,
            "created_at": version.created_at, "deployed_at": version.deployed_at,
            "metrics": version.metrics}


class HealthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(responses={200: s.HealthSerializer}, auth=[])
    def get(self, request):
        return Response({"status": "ok"})


class ReadyView(APIView):
    """Readiness of this process. Without a key (a load balancer's probe) only the status: the
    model names would list the clients. A key with the read scope also gets each model it may
    see, and why one is not ready."""

    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(responses={200: s.ReadySerializer, 503: s.READY_503})
    def get(self, request):
        report = model_cache.readiness()
        ready = all(reason == "ready" for reason in report.values())
        key = request.auth
        if not (isinstance(key, ClientAPIKey) and SCOPE_READ in key.scopes):
            return Response({"status": "ready" if ready else "not_ready"},
                            status=200 if ready else 503)
        visible = {model.name for model in registry.models_for(None)
                   if model_visible(request, model)}
        report = {name: reason for name, reason in report.items() if name in visible}
        not_ready = {name: reason for name, reason in report.items() if reason != "ready"}
        if not ready:
            return error_response(code="model_not_ready", status=503,
                                  message="not every model is ready in this process",
                                  details=not_ready)
        return Response({"status": "ready", "models": report})


class ModelListView(APIView):
    """The models this key may see, by name, a page at a time (docs/api.md#pagination)."""

    api_key_scope = SCOPE_READ
    pagination_class = ListPagination

    @extend_schema(responses={200: s.ModelSummarySerializer(many=True),
                              **_errors(400, 401, 429, 503)})
    def get(self, request):
        visible = [model for model in registry.models_for(None) if model_visible(request, model)]
        return paginated_response(view=self, request=request, items=visible,
                                  present=lambda model: registry.model_summary(model=model))


class ModelDetailView(APIView):
    api_key_scope = SCOPE_READ

    @extend_schema(responses={200: s.ModelDetailSerializer, **_errors(401, 403, 404, 429, 503)})
    def get(self, request, name: str):
        model = model_for_client(request, registry.model_get(name=name))
        return Response(registry.model_detail(model=model, client_id=request.auth.client_id))


class ModelVersionsView(APIView):
    """Every version of the model, newest first, a page at a time (docs/api.md#pagination)."""

    api_key_scope = SCOPE_READ
    pagination_class = ListPagination

    @extend_schema(responses={200: s.VersionSerializer(many=True),
                              **_errors(400, 401, 403, 404, 429, 503)})
    def get(self, request, name: str):
        model_for_client(request, registry.model_get(name=name))
        return paginated_response(view=self, request=request,
                                  items=registry.model_versions_list(name=name),
                                  present=version_data)


class FailuresRecorded:
    """A predict or explain request answered with a 5xx is recorded as a PredictionFailure (the
    error-rate SLO, docs/monitoring.md#slos). `routing` is what the service was asked to route
    by."""

    endpoint = ""
    routing: dict | None = None

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if response.status_code >= 500:
            services.prediction_failure_record(
                model_name=self.kwargs.get("name", ""), endpoint=self.endpoint,
                request_id=self.request.request_id, code=response.data["error"]["code"],
                status_code=response.status_code, **(self.routing or {}))
        return response


class PredictView(FailuresRecorded, APIView):
    """Predictions by the live version (champion, or a challenger during an A/B test) of each
    instance (docs/api.md#predict). An instance is an object of the model's features: its
    closed JSON Schema is GET /models/{name}/schema."""

    endpoint = "predict"
    renderer_classes = [FastJSONRenderer]
    api_key_scope = SCOPE_PREDICT
    throttle_classes = [APIKeyRateThrottle, PredictInstanceThrottle]

    @extend_schema(
        request={"application/json": s.PREDICT_REQUEST_SCHEMA},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: s.PredictResponseSerializer, **_errors(*COMMON_ERRORS, 403, 404, 409)},
    )
    def post(self, request, name: str):
        body = json_body(request)
        return answered_once(request, body, lambda: self.answer(request, name, body))

    def answer(self, request, name: str, body):
        instances, routing_key, client_id = s.predict_request_parse(body)
        self.routing = {"routing_key": routing_key or None,
                        "client_id": client_for(request, client_id)}
        result = services.prediction_make(
            model_name=name, instances=instances, request_id=request.request_id, **self.routing)
        return Response({"schema_version": SCHEMA_VERSION, "request_id": request.request_id,
                         "model": result.model, "served_by": result.served_by,
                         "scope": result.scope, "predictions": result.predictions})


class ExplainView(FailuresRecorded, APIView):
    """SHAP explanations of each instance by the version that answers it
    (docs/api.md#explain); instances as for predict (GET /models/{name}/schema)."""

    endpoint = "explain"
    renderer_classes = [FastJSONRenderer]
    api_key_scope = SCOPE_EXPLAIN
    throttle_classes = [APIKeyRateThrottle, ExplainInstanceThrottle]

    @extend_schema(
        request={"application/json": s.EXPLAIN_REQUEST_SCHEMA},
        responses={200: s.ExplainResponseSerializer, **_errors(*COMMON_ERRORS, 403, 404)},
    )
    def post(self, request, name: str):
        instances, routing_key, client_id = s.predict_request_parse(
            json_body(request), single_field="instance")
        self.routing = {"routing_key": routing_key or None,
                        "client_id": client_for(request, client_id)}
        result = services.explanation_make(
            model_name=name, instances=instances, request_id=request.request_id, **self.routing)
        return Response({"schema_version": SCHEMA_VERSION, "request_id": request.request_id,
                         "model": result.model, "served_by": result.served_by,
                         "scope": result.scope, "explanations": result.explanations})


class FeedbackView(APIView):
    """The observed outcome of an answered prediction, once (docs/api.md#feedback): the body
    is exactly `{"actual": ...}`."""

    api_key_scope = SCOPE_FEEDBACK

    @extend_schema(request={"application/json": FEEDBACK_REQUEST_SCHEMA},
                   responses={200: s.FeedbackResponseSerializer,
                              **_errors(*COMMON_ERRORS, 403, 404, 409)})
    def post(self, request, prediction_id: str):
        actual = feedback_parse(json_body(request))
        log = services.feedback_record(prediction_id=prediction_id, actual=actual,
                                       api_key=request.auth)
        return Response({"prediction_id": str(log.prediction_id), "actual": log.actual,
                         "actual_at": log.actual_at})


class PredictionRecordView(APIView):
    """The logged record of an answered prediction (docs/api.md#prediction-records): its
    inputs without personal features, answer, version and outcome. Another client's
    prediction is unknown to a client-bound key (404)."""

    api_key_scope = SCOPE_READ

    @extend_schema(responses={200: s.PredictionRecordSerializer,
                              **_errors(401, 403, 404, 429, 503)})
    def get(self, request, prediction_id: str):
        log = selectors.prediction_get(prediction_id=prediction_id,
                                       client_id=request.auth.client_id)
        return Response(selectors.prediction_record(log=log))


class PredictionExplanationView(APIView):
    """SHAP explanation of a logged prediction's inputs by the version that answered it,
    live or not, after verifying its artifacts (docs/api.md#prediction-records). 410
    `version_unavailable` once clean-up removed that version's artifacts."""

    renderer_classes = [FastJSONRenderer]
    api_key_scope = SCOPE_EXPLAIN
    throttle_classes = [APIKeyRateThrottle, ExplainInstanceThrottle]

    @extend_schema(responses={200: s.PredictionExplanationSerializer,
                              **_errors(401, 403, 404, 410, 422, 429, 500, 503)})
    def get(self, request, prediction_id: str):
        result = services.prediction_explanation_make(prediction_id=prediction_id,
                                                      client_id=request.auth.client_id)
        return Response({"schema_version": SCHEMA_VERSION, "request_id": request.request_id,
                         **result})


# A pinned request answers for a backtest or a report, not for live traffic: its failures
# are not recorded for the error-rate SLO (no FailuresRecorded), as its answers are not.
class PinnedPredictView(APIView):
    """Predictions by the named version, in staging or production (else 409
    `version_not_servable`), logged with arm `pinned` (docs/api.md#version-pinning)."""

    renderer_classes = [FastJSONRenderer]
    api_key_scope = SCOPE_PREDICT
    throttle_classes = [APIKeyRateThrottle, PredictInstanceThrottle]

    @extend_schema(
        request={"application/json": s.PREDICT_REQUEST_SCHEMA},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: s.PredictResponseSerializer, **_errors(*COMMON_ERRORS, 403, 404, 409)},
    )
    def post(self, request, name: str, version: str):
        body = json_body(request)
        return answered_once(request, body, lambda: self.answer(request, name, version, body))

    def answer(self, request, name: str, version: str, body):
        instances, routing_key, client_id = s.predict_request_parse(body)
        result = services.prediction_make_pinned(
            model_name=name, version=version, instances=instances,
            request_id=request.request_id, routing_key=routing_key or None,
            client_id=client_for(request, client_id))
        return Response({"schema_version": SCHEMA_VERSION, "request_id": request.request_id,
                         "model": result.model, "served_by": result.served_by,
                         "scope": result.scope, "predictions": result.predictions})


class PinnedExplainView(APIView):
    """SHAP explanations by the named version, in staging or production (else 409
    `version_not_servable`; docs/api.md#version-pinning)."""

    renderer_classes = [FastJSONRenderer]
    api_key_scope = SCOPE_EXPLAIN
    throttle_classes = [APIKeyRateThrottle, ExplainInstanceThrottle]

    @extend_schema(
        request={"application/json": s.EXPLAIN_REQUEST_SCHEMA},
        responses={200: s.ExplainResponseSerializer, **_errors(*COMMON_ERRORS, 403, 404, 409)},
    )
    def post(self, request, name: str, version: str):
        instances, _, client_id = s.predict_request_parse(json_body(request),
                                                          single_field="instance")
        result = services.explanation_make_pinned(
            model_name=name, version=version, instances=instances,
            client_id=client_for(request, client_id))
        return Response({"schema_version": SCHEMA_VERSION, "request_id": request.request_id,
                         "model": result.model, "served_by": result.served_by,
                         "scope": result.scope, "explanations": result.explanations})
