"""The drift and performance endpoints (docs/api.md#drift, docs/api.md#performance): the
latest drift report, and realized and estimated performance, of each live version."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from core.api_views import APIView
from mlregistry import selectors as registry
from monitoring import estimation, selectors
from monitoring.api.serializers import (
    DriftReportSerializer,
    DriftResponseSerializer,
    PerformanceResponseSerializer,
)
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


def _outcome_drift(figures: dict | None) -> dict | None:
    if figures is None:
        return None
    return {key: figures.get(key) for key in ("kind", "n_current", "psi", "drifted", "severity")}


def _arms(entry: estimation.VersionPerformance) -> list[dict]:
    realized = {report.arm: report for report in entry.realized}
    estimated = {report.arm: report for report in entry.estimated}
    arms = []
    for arm in sorted(set(realized) | set(estimated)):
        labelled, estimate = realized.get(arm), estimated.get(arm)
        latest = estimate or labelled
        arms.append({
            "arm": arm, "checked_at": latest.created_at, "window_start": latest.window_start,
            "window_end": latest.window_end,
            "realized": {"n_labelled": labelled.n_labelled, "metrics": labelled.metrics,
                         "outcome_drift": _outcome_drift(labelled.outcome_drift)}
            if labelled else None,
            "n_predictions": estimate.n_predictions if estimate else None,
            "estimated": estimate.estimated if estimate else None,
        })
    return arms


class ModelPerformanceView(APIView):
    """Per live version: realized metrics (with outcomes) and estimated ones (without)."""

    api_key_scope = SCOPE_READ

    @extend_schema(responses={200: PerformanceResponseSerializer,
                              **{status: OpenApiResponse(ErrorEnvelopeSerializer)
                                 for status in (400, 401, 403, 404, 429, 503)}})
    def get(self, request, name: str):
        model = model_for_client(request, registry.model_get(name=name))
        versions = [{"version": entry.version.version, "role": entry.role,
                     "estimation_unavailable": entry.unavailable or None,
                     "arms": _arms(entry)}
                    for entry in estimation.live_performance_latest(model_name=model.name)]
        return Response(PerformanceResponseSerializer(
            {"model": model.name, "versions": versions}).data)
