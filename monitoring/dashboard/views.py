"""The monitoring dashboard, an admin page (docs/monitoring.md#dashboard): first an overview of
every live model (live versions, traffic, open alerts, last drift check), then the selected
model's live versions and traffic split, predictions per hour, latency and error rate against
their objectives, drift per feature over time, the live metric trend against the validation
figures, the running A/B test's verdict and the open alerts, which people who handle alerts can
acknowledge from here. Every time is shown in the current time zone, with its abbreviation.

Views only read (monitoring.dashboard.selectors), draw (monitoring.dashboard.charts) and
call the alert service; both are wrapped in `admin.site.admin_view` (staff login, CSRF,
no caching) in urls.py.
"""

from datetime import datetime

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from core.errors import ApplicationError
from mlregistry.models import MLModelVersion
from monitoring import alerts, report
from monitoring.dashboard import charts
from monitoring.dashboard.selectors import (
    PREDICTION_HOURS,
    ModelDashboard,
    dashboard_models,
    model_dashboard,
    models_overview,
)

# Everyone in the governance groups may look at alerts and reports (monitoring 0005).
VIEW_PERMISSION = "monitoring.view_alert"


def _require_view(request: HttpRequest) -> None:
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied


def _local(points: list[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    """Points with their times in the current time zone, which the labels then name."""
    return [(timezone.localtime(at), value) for at, value in points]


def _charts(page: ModelDashboard) -> dict:
    hourly = page.predictions
    slo = page.slo
    trend = page.trend
    latency = [point for point in slo if point.p95_ms is not None]
    return {
        "predictions": charts.bar_chart(
            labels=[f"{start:%H:00 %Z}" for start in hourly.hours], values=hourly.answered,
            unit="predictions", title=f"Predictions per hour, last {PREDICTION_HOURS} h",
            empty=f"no predictions in the last {PREDICTION_HOURS} h"),
        "latency": charts.line_chart(
            series=[charts.Series("p50", _local([(p.at, p.p50_ms) for p in latency])),
                    charts.Series("p95", _local([(p.at, p.p95_ms) for p in latency]))],
            references=[charts.Reference("p95 objective", settings.SLO_P95_LATENCY_MS)],
            unit="ms", title="Latency p50 and p95 per hour",
            empty="no SLO check with answered requests in the last 24 h"),
        "error_rate": charts.line_chart(
            series=[charts.Series("error rate",
                                  _local([(p.at, 100 * p.error_rate) for p in slo]))],
            references=[charts.Reference("objective", 100 * settings.SLO_MAX_ERROR_RATE)],
            unit="%", title="Error rate per hour",
            empty="no SLO check with requests in the last 24 h"),
        "drift": [(grid, charts.heat_map(
            rows=grid.features, values=grid.psi, title=f"Drift of {grid.arm.label}",
            columns=[f"{timezone.localtime(report.created_at):{charts.TIME_FORMAT}}"
                     for report in grid.reports],
            empty=f"too few predictions in every check (fewer than "
                  f"{settings.DRIFT_MIN_SAMPLES})")) for grid in page.drift],
        "trend": None if trend.metric is None else charts.line_chart(
            series=[charts.Series(name, _local(points))
                    for name, points in trend.series.items()],
            references=[charts.Reference(f"{version} validation", value, kind="baseline")
                        for version, value in trend.baselines.items()],
            unit=trend.metric, title=f"Live {trend.metric} per version and arm",
            empty="no live metric yet: outcomes arrive as feedback"),
    }


def _traffic_split(page: ModelDashboard) -> list[dict]:
    """Each live version's logged predictions and, for the versions that answer, their
    observed share of the answered ones (beside the configured traffic percentage)."""
    logged = page.predictions.by_version
    answering = [arm for arm in page.model.arms if arm.role != "shadow"]
    answered = sum(logged.get(arm.version_id, 0) for arm in answering)
    return [{"arm": arm, "predictions": logged.get(arm.version_id, 0),
             "share": (100 * logged.get(arm.version_id, 0) / answered
                       if answered and arm in answering else None)}
            for arm in page.model.arms]


@require_GET
def dashboard_view(request: HttpRequest) -> HttpResponse:
    _require_view(request)
    models = dashboard_models()
    now = timezone.now()
    wanted = request.GET.get("model")
    selected = next((m for m in models if m.name == wanted), models[0] if models else None)
    if wanted and selected is not None and selected.name != wanted:
        messages.warning(request, f"No live model named {wanted!r}: showing {selected.name}.")
    context = {
        **admin.site.each_context(request),
        "title": "Monitoring dashboard",
        "models": models,
        "overview": models_overview(models=models, now=now),
        "selected": selected,
        "may_acknowledge": request.user.has_perm(alerts.CHANGE_PERMISSION),
        "slo_window_minutes": settings.SLO_WINDOW_MINUTES,
        "slo_p95_latency_ms": settings.SLO_P95_LATENCY_MS,
        "slo_max_error_rate_percent": 100 * settings.SLO_MAX_ERROR_RATE,
        "prediction_hours": PREDICTION_HOURS,
    }
    if selected is not None:
        page = model_dashboard(model=selected, now=now)
        context.update(page=page, charts=_charts(page), split=_traffic_split(page))
    return TemplateResponse(request, "admin/monitoring/dashboard.html", context)


@require_POST
def alert_acknowledge_view(request: HttpRequest, alert_id: int) -> HttpResponse:
    _require_view(request)
    try:
        alert = alerts.alert_acknowledge(alert_id=alert_id, user=request.user)
    except ApplicationError as exc:
        messages.error(request, f"{exc.code}: {exc.message}")
    else:
        messages.success(request, f"Alert {alert.pk} ({alert.kind} on {alert.model_name}) "
                                  "acknowledged.")
    target = reverse("monitoring_dashboard:index")
    model = request.POST.get("model", "")
    return HttpResponseRedirect(f"{target}?{urlencode({'model': model})}" if model else target)


@require_GET
def report_download_view(request: HttpRequest, version_id: int) -> HttpResponse:
    """The version's monitoring report (monitoring.report) as an HTML file to save."""
    _require_view(request)
    version = get_object_or_404(MLModelVersion.objects.select_related("model"), pk=version_id)
    response = HttpResponse(report.monitoring_report_html(version=version),
                            content_type="text/html; charset=utf-8")
    filename = f"monitoring-report-{version.model.name}-{version.version}.html"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
