"""Reads of the monitoring dashboard.

A page costs a fixed number of queries whatever the number of hours, versions, features
or reports: one for the live versions, one for open-alert counts, one grouped query for
the predictions per hour and version, and one each for SLO, drift and performance
history, the A/B evaluation and the open alerts.

Latency per hour comes from the SLO check's reports (every 5 minutes, p50/p95 of the
answered requests of the trailing SLO_WINDOW_MINUTES): the newest report of each hour is
that hour's point. Percentiles per hour straight from the prediction log would read every
latency of the day on each page view.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

from core.ml.kinds import PRIMARY_METRIC
from mlregistry import selectors as registry
from mlregistry.models import Status
from monitoring import selectors as monitoring
from monitoring.models import ABEvaluation, Alert, DriftReport
from predictions.models import PredictionLog

PREDICTION_HOURS = 24
LATENCY_HOURS = 24
DRIFT_HISTORY_HOURS = 48
DRIFT_MAX_REPORTS = 48  # heat map columns per version: the newest reports
METRIC_TREND_HOURS = 7 * 24
PREDICTION_ROW = "(prediction)"  # the heat map row of the model's output
ANSWERED = (PredictionLog.Arm.CHAMPION, PredictionLog.Arm.CHALLENGER)


@dataclass(frozen=True)
class LiveArm:
    """A live version as the dashboard shows it."""

    version_id: int
    version: str
    role: str  # champion, challenger or shadow
    traffic_percentage: int

    @property
    def label(self) -> str:
        return f"{self.version} ({self.role})"


@dataclass(frozen=True)
class ModelChoice:
    """A model with at least one live version, for the selector."""

    name: str
    task: str
    arms: list[LiveArm]  # champion first, then challengers and shadows as registered
    open_alerts: int


def _role(status: str, is_shadow: bool) -> str:
    if status == Status.PRODUCTION:
        return "champion"
    return "shadow" if is_shadow else "challenger"


def dashboard_models() -> list[ModelChoice]:
    """Every model with a live version, by name, with its number of open alerts."""
    by_model = defaultdict(list)
    for live in registry.live_versions_all():
        by_model[(live.model_name, live.task)].append(live)
    open_counts = dict(Alert.objects.filter(resolved_at__isnull=True).order_by()
                       .values("model_name").annotate(n=Count("pk"))
                       .values_list("model_name", "n"))
    return [
        ModelChoice(
            name=name, task=task, open_alerts=open_counts.get(name, 0),
            arms=[LiveArm(version_id=live.version_id, version=live.version,
                          role=_role(live.status, live.is_shadow),
                          traffic_percentage=live.traffic_percentage)
                  for live in sorted(lives, key=lambda v: (v.status != Status.PRODUCTION,
                                                           v.version_id))],
        )
        for (name, task), lives in sorted(by_model.items())
    ]


@dataclass(frozen=True)
class HourlyPredictions:
    hours: list[datetime]  # the start of each hour, oldest first
    answered: list[int]  # predictions answered (champion and challenger) in each hour
    by_version: dict[int, int]  # version id -> logged predictions (shadow copies too)


def predictions_per_hour(*, model_name: str, now: datetime,
                         hours: int = PREDICTION_HOURS) -> HourlyPredictions:
    """Logged predictions of the model per hour over the last `hours` hours (the current
    one included), in one grouped query."""
    current = timezone.localtime(now).replace(minute=0, second=0, microsecond=0)
    starts = [current - timedelta(hours=hours - 1 - i) for i in range(hours)]
    rows = (PredictionLog.objects.filter(model_name=model_name, created_at__gte=starts[0])
            .order_by().annotate(hour=TruncHour("created_at"))
            .values("hour", "model_version_id", "arm").annotate(n=Count("pk")))
    answered, by_version = defaultdict(int), defaultdict(int)
    for row in rows:
        by_version[row["model_version_id"]] += row["n"]
        if row["arm"] in ANSWERED:
            answered[row["hour"]] += row["n"]
    return HourlyPredictions(hours=starts, answered=[answered[start] for start in starts],
                             by_version=dict(by_version))


@dataclass(frozen=True)
class LatencyPoint:
    at: datetime  # when the SLO check ran
    p50_ms: float
    p95_ms: float
    requests: int


def latency_per_hour(*, model_name: str, now: datetime,
                     hours: int = LATENCY_HOURS) -> list[LatencyPoint]:
    """The newest SLO report of each hour that saw answered requests, oldest first."""
    newest = {}
    for report in monitoring.slo_reports_recent(model_name=model_name,
                                                since=now - timedelta(hours=hours)):
        if report.latency_p95_ms is None:
            continue
        hour = timezone.localtime(report.created_at).replace(minute=0, second=0, microsecond=0)
        newest[hour] = LatencyPoint(at=report.created_at, p50_ms=report.latency_p50_ms,
                                    p95_ms=report.latency_p95_ms, requests=report.requests)
    return [newest[hour] for hour in sorted(newest)]


@dataclass(frozen=True)
class DriftGrid:
    """PSI of every feature (and the output) in each drift report of one live version."""

    arm: LiveArm
    features: list[str]
    reports: list[DriftReport]  # oldest first
    psi: list[list[float | None]]  # psi[feature][report]; None: no figure


def _psi(figures: dict | None) -> float | None:
    return None if not figures else figures.get("psi")


def drift_grids(*, model: ModelChoice, now: datetime, hours: int = DRIFT_HISTORY_HOURS,
                max_reports: int = DRIFT_MAX_REPORTS) -> list[DriftGrid]:
    """One grid per live version with drift reports in the last `hours` hours (its newest
    `max_reports`); a report with too little data has no figures."""
    by_version = defaultdict(list)
    for report in monitoring.drift_history(model_name=model.name,
                                           since=now - timedelta(hours=hours)):
        by_version[report.model_version_id].append(report)
    grids = []
    for arm in model.arms:
        reports = by_version.get(arm.version_id, [])[-max_reports:]
        if not reports:
            continue
        features = list(dict.fromkeys(name for report in reports for name in report.features))
        psi = [[_psi(report.features.get(name)) for report in reports] for name in features]
        if any(report.prediction for report in reports):
            features.append(PREDICTION_ROW)
            psi.append([_psi(report.prediction) for report in reports])
        grids.append(DriftGrid(arm=arm, features=features, reports=reports, psi=psi))
    return grids


@dataclass(frozen=True)
class MetricTrend:
    metric: str | None  # the task's primary metric; None: the task has none (anomaly)
    series: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)


def metric_trend(*, model: ModelChoice, now: datetime,
                 hours: int = METRIC_TREND_HOURS) -> MetricTrend:
    """The primary live metric of each version and arm over time, from the performance
    reports of the last `hours` hours."""
    primary = PRIMARY_METRIC.get(model.task)
    if primary is None:
        return MetricTrend(metric=None)
    metric = primary[0]
    series = defaultdict(list)
    for report in monitoring.performance_trend(model_name=model.name,
                                               since=now - timedelta(hours=hours)):
        value = report.metrics.get(metric)
        if value is not None:
            series[f"{report.version} {report.arm}"].append((report.created_at, value))
    return MetricTrend(metric=metric, series=dict(series))


def ab_evaluation_running(*, model: ModelChoice) -> ABEvaluation | None:
    """The latest A/B evaluation of the model's running test (a live challenger), if any."""
    challengers = {arm.version_id for arm in model.arms if arm.role == "challenger"}
    if not challengers:
        return None
    evaluation = monitoring.ab_evaluation_latest(model_name=model.name)
    if evaluation is None or evaluation.challenger_id not in challengers:
        return None
    return evaluation


@dataclass(frozen=True)
class ModelDashboard:
    model: ModelChoice
    predictions: HourlyPredictions
    latency: list[LatencyPoint]
    drift: list[DriftGrid]
    trend: MetricTrend
    ab_test_running: bool
    ab_evaluation: ABEvaluation | None
    alerts: list[Alert]


def model_dashboard(*, model: ModelChoice, now: datetime) -> ModelDashboard:
    """Everything the dashboard shows of one model."""
    return ModelDashboard(
        model=model,
        predictions=predictions_per_hour(model_name=model.name, now=now),
        latency=latency_per_hour(model_name=model.name, now=now),
        drift=drift_grids(model=model, now=now),
        trend=metric_trend(model=model, now=now),
        ab_test_running=any(arm.role == "challenger" for arm in model.arms),
        ab_evaluation=ab_evaluation_running(model=model),
        alerts=monitoring.alerts_open(model_name=model.name),
    )
