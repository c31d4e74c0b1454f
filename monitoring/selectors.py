"""Monitoring reads, for the API, the dashboard and the version page's production panel."""

from datetime import datetime

from django.db.models import Case, IntegerField, OuterRef, Subquery, Value, When

from mlregistry import selectors as registry
from mlregistry.models import Status
from monitoring.models import (
    ABEvaluation,
    Alert,
    DriftReport,
    FairnessReport,
    PerformanceReport,
    SLOReport,
)


def drift_reports_latest(*, model_name: str) -> list[DriftReport]:
    """The latest drift report of each live version of the model (champion first, then
    challengers and shadows in the order they were registered); live versions never
    checked have none."""
    live = [v for v in registry.live_versions_all() if v.model_name == model_name]
    order = {v.version_id: (v.status != Status.PRODUCTION, v.version_id) for v in live}
    newest = (DriftReport.objects.filter(model_version_id=OuterRef("model_version_id"))
              .order_by("-created_at", "-pk").values("pk")[:1])
    reports = DriftReport.objects.filter(model_version_id__in=order, pk=Subquery(newest))
    return sorted(reports, key=lambda report: order[report.model_version_id])


def drift_history(*, model_name: str, since: datetime) -> list[DriftReport]:
    """Every drift report of the model's versions created at or after `since`, oldest first
    (per-feature drift over time)."""
    return list(DriftReport.objects.filter(model_name=model_name, created_at__gte=since)
                .order_by("created_at", "pk"))


def slo_reports_recent(*, model_name: str, since: datetime) -> list[SLOReport]:
    """The model's SLO reports created at or after `since`, oldest first (latency p50/p95
    and error rate over time)."""
    return list(SLOReport.objects.filter(model_name=model_name, created_at__gte=since)
                .order_by("created_at", "pk"))


def performance_trend(*, model_name: str, since: datetime) -> list[PerformanceReport]:
    """The model's live performance reports (every version and arm) created at or after
    `since`, oldest first (the live metric trend)."""
    return list(PerformanceReport.objects.filter(model_name=model_name, created_at__gte=since)
                .order_by("created_at", "pk"))


def ab_evaluation_latest(*, model_name: str) -> ABEvaluation | None:
    """The model's most recent A/B evaluation, if any."""
    return (ABEvaluation.objects.filter(model_name=model_name)
            .select_related("champion", "challenger").first())


def alerts_open(*, model_name: str | None = None) -> list[Alert]:
    """Open (unresolved) alerts, of one model or all: the most severe first, then the most
    recently seen."""
    rank = Case(When(severity=Alert.Severity.CRITICAL, then=Value(0)),
                When(severity=Alert.Severity.WARNING, then=Value(1)),
                default=Value(2), output_field=IntegerField())
    alerts = Alert.objects.filter(resolved_at__isnull=True).select_related("acknowledged_by")
    if model_name is not None:
        alerts = alerts.filter(model_name=model_name)
    return list(alerts.order_by(rank, "-last_seen", "-pk"))


def performance_reports_latest(*, version_id: int) -> list[PerformanceReport]:
    """The version's reports of its latest live performance check, one per arm that had
    labelled predictions then (a version promoted from challenger has both arms in its
    window for a while), by arm; [] when it was never measured."""
    newest = (PerformanceReport.objects.filter(model_version_id=version_id)
              .order_by("-created_at", "-pk").values("created_at")[:1])
    return list(PerformanceReport.objects.filter(model_version_id=version_id,
                                                 created_at=Subquery(newest))
                .order_by("arm", "pk"))


def fairness_report_latest(*, version_id: int) -> FairnessReport | None:
    """The version's latest live fairness audit, if any."""
    return (FairnessReport.objects.filter(model_version_id=version_id)
            .order_by("-created_at", "-pk").first())


def slo_report_latest(*, model_name: str) -> SLOReport | None:
    """The model's latest SLO check, if any."""
    return SLOReport.objects.filter(model_name=model_name).order_by("-created_at", "-pk").first()


def alerts_list(*, model_name: str | None = None, include_resolved: bool = False) -> list[Alert]:
    """The open alerts as `alerts_open` orders them, then, with `include_resolved`, the
    resolved ones, the most recently resolved first. A model name the registry does not know
    is an error (ModelNotFoundError), not an empty list."""
    if model_name is not None:
        registry.model_get(name=model_name)
    alerts = alerts_open(model_name=model_name)
    if include_resolved:
        resolved = Alert.objects.filter(resolved_at__isnull=False).select_related(
            "acknowledged_by", "resolved_by")
        if model_name is not None:
            resolved = resolved.filter(model_name=model_name)
        alerts += resolved.order_by("-resolved_at", "-pk")
    return alerts
