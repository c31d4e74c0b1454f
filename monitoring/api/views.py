"""The drift endpoint (docs/api.md#drift): the latest drift report of each live version."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from mlregistry import selectors as registry
from monitoring import selectors
from monitoring.api.serializers import DriftReportSerializer, DriftResponseSerializer
from predictions.api.auth import model_for_client
from predictions.api.serializers import ErrorEnvelopeSerializer
from predictions.models import SCOPE_READ


class ModelDriftView(APIView):
    api_key_scope = SCOPE_READ

    @extend_schema(responses={200: DriftResponseSerializer,
                              **{status: OpenApiResponse(ErrorEnvelopeSerializer)
                                 for status in (401, 403, 404, 429)}})
    def get(self, request, name: str):
        model = model_for_client(request, registry.model_get(name=name))
        reports = selectors.drift_reports_latest(model_name=model.name)
        return Response({"model": model.name,
                         "reports": DriftReportSerializer(reports, many=True).data})
