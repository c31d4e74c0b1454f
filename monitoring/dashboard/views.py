"""The monitoring dashboard, an admin page (docs/monitoring.md#dashboard): per model its live
versions and traffic split, predictions per hour, latency, drift per feature over time, the live
metric trend, the running A/B test's verdict and the open alerts, which people who handle alerts can
acknowledge from here.

Views only read (monitoring.dashboard.selectors), draw (monitoring.dashboard.charts) and
call the alert service; both are wrapped in `admin.site.admin_view` (staff login, CSRF,
no caching) in urls.py.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from core.errors import ApplicationError
from monitoring import alerts
from monitoring.dashboard import charts
from monitoring.dashboard.selectors import (
    PREDICTION_HOURS,
    ModelDashboard,
    dashboard_models,
    model_dashboard,
)

# Everyone in the governance groups may look at alerts and reports (monitoring 0005).
VIEW_PERMISSION = "monitoring.view_alert"
TIME_FORMAT = "%b %d %H:%M"


def _require_view(request: HttpRequest) -> None:
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied


def _charts(page: ModelDashboard) -> dict:
    hourly = page.predictions
    latency = page.latency
    trend = page.trend
    return {
        "predictions": charts.bar_chart(
            labels=[f"{start:%H:00}" for start in hourly.hours], values=hourly.answered,
            unit="predictions", title=f"Predictions per hour, last {PREDICTION_HOURS} h",
            empty=f"no predictions in the last {PREDICTION_HOURS} h"),
        "latency": charts.line_chart(
            series=[charts.Series("p50", [(p.at, p.p50_ms) for p in latency]),
                    charts.Series("p95", [(p.at, p.p95_ms) for p in latency])],
            unit="ms", title="Latency p50 and p95 per hour", time_format=TIME_FORMAT,
            empty="no SLO check with answered requests in the last 24 h"),
        "drift": [(grid, charts.heat_map(
            rows=grid.features, values=grid.psi, title=f"Drift of {grid.arm.label}",
            columns=[f"{report.created_at:{TIME_FORMAT}}" for report in grid.reports],
            empty=f"too few predictions in every check (fewer than "
                  f"{settings.DRIFT_MIN_SAMPLES})")) for grid in page.drift],
        "trend": None if trend.metric is None else charts.line_chart(
            series=[charts.Series(name, points) for name, points in trend.series.items()],
            unit=trend.metric, title=f"Live {trend.metric} per version and arm",
            time_format=TIME_FORMAT, empty="no live metric yet: outcomes arrive as feedback"),
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
    wanted = request.GET.get("model")
    selected = next((m for m in models if m.name == wanted), models[0] if models else None)
    if wanted and selected is not None and selected.name != wanted:
        messages.warning(request, f"No live model named {wanted!r}: showing {selected.name}.")
    context = {
        **admin.site.each_context(request),
        "title": "Monitoring dashboard",
        "models": models,
        "selected": selected,
        "may_acknowledge": request.user.has_perm(alerts.CHANGE_PERMISSION),
        "slo_window_minutes": settings.SLO_WINDOW_MINUTES,
        "slo_p95_latency_ms": settings.SLO_P95_LATENCY_MS,
    }
    if selected is not None:
        page = model_dashboard(model=selected, now=timezone.now())
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
