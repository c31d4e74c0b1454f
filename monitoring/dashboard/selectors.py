"""Reads of the monitoring dashboard.

A page costs a fixed number of queries whatever the number of models, hours, versions,
features or reports. The overview of every live model: one for the live versions, one for
open-alert counts, one grouped query for each model's predictions of the last 24 h, and
one for the newest drift report of each live version. The selected model: one grouped
query for the predictions per hour and version, one each for SLO, drift and performance
history, one for the validation metrics of the versions in the metric trend, the A/B
evaluation and the open alerts.

Latency and error rate per hour come from the SLO check's reports (every 5 minutes, p50/p95
and error rate of the requests of the trailing SLO_WINDOW_MINUTES): the newest report of
each hour is that hour's point. Percentiles per hour straight from the prediction log would
read every latency of the day on each page view.
"""

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import TruncHour
from django.utils import timezone

from core.ml.kinds import PRIMARY_METRIC
from mlregistry import selectors as registry
from mlregistry.models import MLModelVersion, Status
from monitoring import selectors as monitoring
from monitoring.models import ABEvaluation, Alert, CanaryCheck, DriftReport, ShadowEvaluation
from predictions.models import PredictionLog

PREDICTION_HOURS = 24
SLO_HOURS = 24
DRIFT_HISTORY_HOURS = 48
# Heat map columns per version, the newest reports: a day of hourly checks, each cell wide
# enough for its PSI printed in it.
DRIFT_MAX_REPORTS = 24
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
    experiment: str = ""  # a named A/B test or canary
    canary_until: datetime | None = None  # a canary's promotion time

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

    @property
    def ab_test_running(self) -> bool:
        return any(arm.role == "challenger" for arm in self.arms)


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
                          traffic_percentage=live.traffic_percentage,
                          experiment=live.experiment, canary_until=live.canary_until)
                  for live in sorted(lives, key=lambda v: (v.status != Status.PRODUCTION,
                                                           v.version_id))],
        )
        for (name, task), lives in sorted(by_model.items())
    ]


@dataclass(frozen=True)
class DriftSummary:
    """The newest drift check of one live version."""

    version: str
    checked_at: datetime
    enough_data: bool  # False: too few logged predictions to judge
    drifted: list[str]  # the drifted features, then PREDICTION_ROW if the output drifted


@dataclass(frozen=True)
class ModelOverview:
    """One row of the overview of every live model."""

    model: ModelChoice
    predictions: int  # answered (champion and challenger) in the last PREDICTION_HOURS
    drift: list[DriftSummary]  # live versions ever checked, in the order of model.arms


def _drift_summary(report: DriftReport) -> DriftSummary:
    drifted = [name for name, figures in report.features.items() if figures.get("drifted")]
    if report.prediction and report.prediction.get("drifted"):
        drifted.append(PREDICTION_ROW)
    return DriftSummary(version=report.version, checked_at=report.created_at,
                        enough_data=report.status == DriftReport.Status.OK, drifted=drifted)


def models_overview(*, models: list[ModelChoice], now: datetime,
                    hours: int = PREDICTION_HOURS) -> list[ModelOverview]:
    """Each model's answered predictions of the last `hours` hours (one grouped query) and
    the newest drift check of each of its live versions (one query: the newest report is
    looked up once per live version, not once per stored report)."""
    answered = dict(PredictionLog.objects.filter(
        model_name__in=[model.name for model in models], arm__in=ANSWERED,
        created_at__gte=now - timedelta(hours=hours),
    ).order_by().values("model_name").annotate(n=Count("pk")).values_list("model_name", "n"))
    newest = (DriftReport.objects.filter(model_version_id=OuterRef("pk"))
              .order_by("-created_at", "-pk").values("pk")[:1])
    live = (MLModelVersion.objects.filter(pk__in=[arm.version_id for model in models
                                                  for arm in model.arms])
            .annotate(newest=Subquery(newest)).values("newest"))
    latest = {report.model_version_id: report
              for report in DriftReport.objects.filter(pk__in=live)}
    return [ModelOverview(model=model, predictions=answered.get(model.name, 0),
                          drift=[_drift_summary(latest[arm.version_id]) for arm in model.arms
                                 if arm.version_id in latest])
            for model in models]


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
class SLOPoint:
    at: datetime  # when the SLO check ran
    requests: int
    error_rate: float  # failed requests / requests
    p50_ms: float | None  # None: every request of the window failed
    p95_ms: float | None


def slo_per_hour(*, model_name: str, now: datetime, hours: int = SLO_HOURS) -> list[SLOPoint]:
    """The newest SLO report of each hour that saw requests, oldest first."""
    newest = {}
    for report in monitoring.slo_reports_recent(model_name=model_name,
                                                since=now - timedelta(hours=hours)):
        if report.error_rate is None:
            continue
        hour = timezone.localtime(report.created_at).replace(minute=0, second=0, microsecond=0)
        newest[hour] = SLOPoint(at=report.created_at, requests=report.requests,
                                error_rate=report.error_rate, p50_ms=report.latency_p50_ms,
                                p95_ms=report.latency_p95_ms)
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
    # version -> its validation figure of the metric, for each version in `series` that has
    # one: the level the live figure is compared with (docs/monitoring.md#live-performance).
    baselines: dict[str, float] = field(default_factory=dict)


def metric_trend(*, model: ModelChoice, now: datetime,
                 hours: int = METRIC_TREND_HOURS) -> MetricTrend:
    """The primary live metric of each version and arm over time, from the performance
    reports of the last `hours` hours, and each of those versions' validation figure."""
    primary = PRIMARY_METRIC.get(model.task)
    if primary is None:
        return MetricTrend(metric=None)
    metric = primary[0]
    series, version_ids = defaultdict(list), set()
    for report in monitoring.performance_trend(model_name=model.name,
                                               since=now - timedelta(hours=hours)):
        value = report.metrics.get(metric)
        if value is not None:
            series[f"{report.version} {report.arm}"].append((report.created_at, value))
            version_ids.add(report.model_version_id)
    baselines = {}
    for version, metrics in (MLModelVersion.objects.filter(pk__in=version_ids)
                             .order_by("pk").values_list("version", "metrics")):
        value = (metrics or {}).get(metric)
        if isinstance(value, int | float) and math.isfinite(value):
            baselines[version] = float(value)
    return MetricTrend(metric=metric, series=dict(series), baselines=baselines)


def ab_evaluation_running(*, model: ModelChoice) -> ABEvaluation | None:
    """The latest A/B evaluation of the model's running test (a live challenger), if any."""
    challengers = {arm.version_id for arm in model.arms if arm.role == "challenger"}
    if not challengers:
        return None
    evaluation = monitoring.ab_evaluation_latest(model_name=model.name)
    if evaluation is None or evaluation.challenger_id not in challengers:
        return None
    return evaluation


def canary_check_running(*, model: ModelChoice) -> CanaryCheck | None:
    """The canary guard's latest look at the model's running canary, if any."""
    canaries = {arm.version_id for arm in model.arms if arm.canary_until}
    if not canaries:
        return None
    return CanaryCheck.objects.filter(canary_id__in=canaries).first()


def shadow_evaluations_running(*, model: ModelChoice) -> list[ShadowEvaluation]:
    """The latest evaluation of each of the model's running shadows against the champion."""
    champion = next((arm.version_id for arm in model.arms if arm.role == "champion"), None)
    latest = []
    for arm in model.arms:
        if arm.role == "shadow":
            evaluation = ShadowEvaluation.objects.filter(shadow_id=arm.version_id,
                                                         champion_id=champion).first()
            latest += [evaluation] if evaluation is not None else []
    return latest


@dataclass(frozen=True)
class ModelDashboard:
    model: ModelChoice
    predictions: HourlyPredictions
    slo: list[SLOPoint]
    drift: list[DriftGrid]
    trend: MetricTrend
    ab_evaluation: ABEvaluation | None
    canary_check: CanaryCheck | None
    shadow_evaluations: list[ShadowEvaluation]
    alerts: list[Alert]


def model_dashboard(*, model: ModelChoice, now: datetime) -> ModelDashboard:
    """Everything the dashboard shows of one model."""
    return ModelDashboard(
        model=model,
        predictions=predictions_per_hour(model_name=model.name, now=now),
        slo=slo_per_hour(model_name=model.name, now=now),
        drift=drift_grids(model=model, now=now),
        trend=metric_trend(model=model, now=now),
        ab_evaluation=ab_evaluation_running(model=model),
        canary_check=canary_check_running(model=model),
        shadow_evaluations=shadow_evaluations_running(model=model),
        alerts=monitoring.alerts_open(model_name=model.name),
    )
