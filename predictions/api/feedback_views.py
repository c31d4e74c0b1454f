"""POST /api/v1/feedback (docs/api.md#bulk-feedback): many outcomes in one call."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from core.api import FastJSONRenderer
from core.api_views import APIView
from predictions.api.feedback_serializers import (
    FEEDBACK_BATCH_REQUEST_SCHEMA,
    FeedbackBatchResponseSerializer,
    feedback_batch_parse,
)
from predictions.api.serializers import ErrorEnvelopeSerializer
from predictions.api.views import COMMON_ERRORS, json_body
from predictions.feedback import feedback_batch_record
from predictions.models import SCOPE_FEEDBACK


class FeedbackBatchView(APIView):
    """The observed outcomes of many predictions: each one `recorded`, `duplicate`, `conflict`,
    `not_found` or `invalid`, in request order; new ones are written all together or not at
    all."""

    # Up to FEEDBACK_MAX_BATCH results: written by orjson (no value in them is non-finite).
    renderer_classes = [FastJSONRenderer]
    api_key_scope = SCOPE_FEEDBACK

    @extend_schema(
        request={"application/json": FEEDBACK_BATCH_REQUEST_SCHEMA},
        responses={200: FeedbackBatchResponseSerializer,
                   **{status: OpenApiResponse(ErrorEnvelopeSerializer)
                      for status in (*COMMON_ERRORS, 403)}},
    )
    def post(self, request):
        result = feedback_batch_record(outcomes=feedback_batch_parse(json_body(request)),
                                       api_key=request.auth)
        return Response({"results": [outcome.as_dict() for outcome in result.results],
                         "counts": result.counts})
