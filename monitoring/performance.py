"""Live performance (docs/monitoring.md#live-performance): the metrics of a version and arm on its
logged predictions that have feedback, and an alert when the primary metric falls behind validation.

A prediction counts in a window [start, end) when it was made in it and its outcome has
been recorded. The log is read in chunks of MONITORING_CHUNK_SIZE rows, oldest first, of
which only the pairs (actual, predicted; the class probabilities of a classifier) and who
posted the outcome are kept as numpy arrays: memory grows with the labelled rows of the
window, never with their JSON.

Metrics, computed with sklearn.metrics on those pairs (None where undefined, for example
R2 of one row or ROC AUC of one class):

- regression: mae, rmse, r2;
- binary classification: accuracy, f1 and roc_auc of the positive class, brier on its
  probability; the positive class is the greater of the model's labels, as
  `classes_[1]` is when it was trained;
- multiclass classification: accuracy, macro f1, multiclass brier;
- anomaly detection: none (the detector is unsupervised: nothing ranks it).

Degradation: with at least PERFORMANCE_MIN_LABELLED labelled rows, the task's primary
metric (core.ml.kinds.PRIMARY_METRIC) worse than the version's validation
figure by more than PERFORMANCE_DEGRADATION_THRESHOLD of that figure raises a
`performance` alert.
"""

import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from core.ml import evidence
from core.ml.kinds import ANOMALY, BINARY, MULTICLASS, PRIMARY_METRIC, REGRESSION
from core.ml.metrics import metric_float
from core.ml.outputs import class_label
from mlregistry import selectors as registry
from mlregistry.models import MLModelVersion
from monitoring import stats
from monitoring.alerts import alert_raise
from monitoring.models import Alert, PerformanceReport
from predictions.models import PredictionLog


def classes_of(probabilities: dict, like) -> list:
    """The model's classes in scikit-learn's order (sorted), from a logged probabilities
    object (whose key order the database does not keep)."""
    return sorted(class_label(key, like) for key in probabilities)


@dataclass
class Outcomes:
    """The labelled predictions of one version and arm, oldest first: actual and predicted
    values, for classifiers the probabilities in the order of `classes`, and the
    feedback source of each outcome."""

    task: str
    actual: numpy.ndarray
    predicted: numpy.ndarray
    probabilities: numpy.ndarray | None = None
    classes: list = field(default_factory=list)
    sources: numpy.ndarray = field(default_factory=lambda: numpy.array([], dtype=object))

    @property
    def n(self) -> int:
        return len(self.actual)

    def source_count(self) -> int:
        """How many distinct clients (or keys without one) gave these outcomes."""
        return len(set(self.sources.tolist()))

    def counted(self, max_source_share: float) -> "Outcomes":
        """The outcomes that count when no source may give more than `max_source_share`
        of them (core.ml.evidence: each source's earliest)."""
        keep = evidence.counted_mask(self.sources.tolist(), max_source_share)
        return Outcomes(
            task=self.task, actual=self.actual[keep], predicted=self.predicted[keep],
            probabilities=None if self.probabilities is None else self.probabilities[keep],
            classes=self.classes, sources=self.sources[keep])

    def absolute_errors(self) -> numpy.ndarray:
        return numpy.abs(self.actual.astype(float) - self.predicted.astype(float))

    def correct(self) -> int:
        return int(numpy.sum(self.actual == self.predicted))

    def metrics(self) -> dict:
        """The task's live metrics; {} without rows or for anomaly detection."""
        if not self.n or self.task == ANOMALY:
            return {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            if self.task == REGRESSION:
                return self._regression()
            return self._classification()

    def _regression(self) -> dict:
        actual, predicted = self.actual.astype(float), self.predicted.astype(float)
        return {"mae": metric_float(skm.mean_absolute_error(actual, predicted)),
                "rmse": metric_float(skm.root_mean_squared_error(actual, predicted)),
                "r2": _defined(lambda: skm.r2_score(actual, predicted)) if self.n >= 2 else None}

    def _classification(self) -> dict:
        actual, predicted = self.actual, self.predicted
        result = {"accuracy": metric_float(skm.accuracy_score(actual, predicted))}
        if self.task == BINARY:
            positive = self.classes[-1]
            is_positive = actual == positive
            probability = self.probabilities[:, -1]
            result["f1"] = metric_float(skm.f1_score(actual, predicted, pos_label=positive,
                                                     zero_division=0))
            result["roc_auc"] = _defined(lambda: skm.roc_auc_score(is_positive, probability))
            result["brier"] = _defined(lambda: skm.brier_score_loss(is_positive, probability))
            return result
        result["f1"] = metric_float(skm.f1_score(actual, predicted, average="macro",
                                                 zero_division=0))
        result["brier"] = _defined(lambda: skm.brier_score_loss(
            actual, self.probabilities, labels=self.classes))
        return result


def _defined(compute) -> float | None:
    try:
        return metric_float(compute())
    except ValueError:
        return None


@dataclass(frozen=True)
class LiveMetrics:
    n_labelled: int
    metrics: dict


class _Collector:
    """Accumulates one arm's labelled rows chunk by chunk."""

    def __init__(self, task: str) -> None:
        self.task = task
        self.actual: list[numpy.ndarray] = []
        self.predicted: list[numpy.ndarray] = []
        self.probabilities: list[numpy.ndarray] = []
        self.classes: list = []
        self.sources: list[numpy.ndarray] = []

    def add(self, rows: list[tuple]) -> None:
        """rows: (value, probabilities, actual, feedback source) of labelled predictions."""
        self.sources.append(numpy.array([row[3] for row in rows], dtype=object))
        if self.task == REGRESSION:
            self.actual.append(numpy.array([row[2] for row in rows], dtype=float))
            self.predicted.append(numpy.array([row[0] for row in rows], dtype=float))
            return
        # Feedback stores the actual in the type of the model's labels: one dtype for both.
        self.actual.append(numpy.asarray([row[2] for row in rows]))
        self.predicted.append(numpy.asarray([row[0] for row in rows]))
        if self.task in (BINARY, MULTICLASS):
            if not self.classes:
                self.classes = classes_of(rows[0][1], rows[0][0])
            keys = [str(label) for label in self.classes]
            self.probabilities.append(numpy.array(
                [[row[1].get(key, 0.0) for key in keys] for row in rows], dtype=float))

    def outcomes(self) -> Outcomes:
        return Outcomes(
            task=self.task, actual=numpy.concatenate(self.actual),
            predicted=numpy.concatenate(self.predicted),
            probabilities=numpy.concatenate(self.probabilities) if self.probabilities else None,
            classes=self.classes, sources=numpy.concatenate(self.sources),
        )


def row_chunks(rows, size: int):
    """Lists of up to `size` rows from the iterator `rows` (the last one shorter)."""
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _collect(*, version_id: int, start: datetime, end: datetime, arm: str | None,
             split: bool) -> dict[str, Outcomes]:
    task = MLModelVersion.objects.filter(pk=version_id).values_list("model__task", flat=True).get()
    # Pinned answers (a client's backtests, docs/api.md#version-pinning) are not live traffic.
    rows = PredictionLog.objects.filter(
        model_version_id=version_id, created_at__gte=start, created_at__lt=end,
        actual_at__isnull=False,
    ).exclude(arm=PredictionLog.Arm.PINNED)
    if arm is not None:
        rows = rows.filter(arm=arm)
    size = settings.MONITORING_CHUNK_SIZE
    collectors: dict[str, _Collector] = {}
    stream = rows.order_by("created_at", "prediction_id").values_list(
        "arm", "value", "probabilities", "actual", "feedback_source").iterator(chunk_size=size)
    for chunk in row_chunks(stream, size):
        per_arm: dict[str, list[tuple]] = {}
        for row_arm, *row in chunk:
            per_arm.setdefault(row_arm if split else "", []).append(row)
        for key, arm_rows in per_arm.items():
            collectors.setdefault(key, _Collector(task)).add(arm_rows)
    return {key: collector.outcomes() for key, collector in sorted(collectors.items())}


def outcomes_by_arm(*, version_id: int, start: datetime, end: datetime,
                    arm: str | None = None) -> dict[str, Outcomes]:
    """The labelled predictions of a version made in [start, end), per arm (only `arm`
    when given), read in chunks; arms without labelled rows are absent."""
    return _collect(version_id=version_id, start=start, end=end, arm=arm, split=True)


def live_metrics(*, version_id: int, start: datetime, end: datetime,
                 arm: str | None = None) -> LiveMetrics:
    """A version's live metrics over its labelled predictions in [start, end), of one arm
    or (arm None) of all its arms together."""
    outcomes = _collect(version_id=version_id, start=start, end=end, arm=arm, split=False)
    if not outcomes:
        return LiveMetrics(n_labelled=0, metrics={})
    merged = outcomes[""]
    return LiveMetrics(n_labelled=merged.n, metrics=merged.metrics())


@dataclass(frozen=True)
class Degradation:
    metric: str
    live: float
    validation: float
    relative: float  # how much worse, as a share of the validation figure


def degradation_of(*, task: str, live: dict, validation: dict) -> Degradation | None:
    """The primary metric's relative shortfall against validation, when it exceeds the
    threshold (None when it does not, or cannot be judged)."""
    primary = PRIMARY_METRIC.get(task)
    if primary is None:
        return None
    metric, higher_is_better = primary
    live_value, validation_value = live.get(metric), (validation or {}).get(metric)
    if live_value is None or not validation_value:
        return None
    worse_by = validation_value - live_value if higher_is_better else live_value - validation_value
    relative = worse_by / abs(validation_value)
    if relative <= settings.PERFORMANCE_DEGRADATION_THRESHOLD:
        return None
    return Degradation(metric=metric, live=live_value, validation=validation_value,
                       relative=relative)


def outcome_drift(version: MLModelVersion, outcomes: Outcomes) -> dict | None:
    """The received outcomes against the training target's profile, with the statistics
    of feature drift (monitoring.stats: PSI, KS or chi-square, JS, drifted, severity); None
    for a version trained before targets were profiled. Judged only from
    DRIFT_MIN_SAMPLES outcomes on (fewer: the counts, `drifted` false)."""
    entry = (version.reference_profile or {}).get("target")
    if not entry:
        return None
    window = stats.window_for(entry)
    window.add(outcomes.actual)
    figures = window.result()
    if outcomes.n < settings.DRIFT_MIN_SAMPLES:
        figures.update(drifted=False, severity=None)
    return figures


def performance_evaluate(*, version_id: int, now: datetime | None = None
                         ) -> list[PerformanceReport]:
    """One PerformanceReport per arm of the version with labelled predictions in
    [now - PERFORMANCE_WINDOW_HOURS, now), and a `performance` alert for each arm whose
    primary metric has degraded."""
    now = now or timezone.now()
    start = now - timedelta(hours=settings.PERFORMANCE_WINDOW_HOURS)
    version = MLModelVersion.objects.select_related("model").get(pk=version_id)
    if version.model.task == ANOMALY:
        return []
    by_arm = outcomes_by_arm(version_id=version_id, start=start, end=now)
    reports = []
    with transaction.atomic():
        for arm, outcomes in by_arm.items():
            figures = outcomes.metrics()
            reports.append(PerformanceReport.objects.create(
                model_version=version, model_name=version.model.name, version=version.version,
                arm=arm, window_start=start, window_end=now, n_labelled=outcomes.n,
                metrics=figures, outcome_drift=outcome_drift(version, outcomes),
                created_at=now,
            ))
            if outcomes.n < settings.PERFORMANCE_MIN_LABELLED:
                continue
            degraded = degradation_of(task=version.model.task, live=figures,
                                      validation=version.metrics)
            if degraded:
                _alert(version=version, arm=arm, n=outcomes.n, degraded=degraded,
                       report=reports[-1])
    return reports


def _alert(*, version: MLModelVersion, arm: str, n: int, degraded: Degradation,
           report: PerformanceReport) -> None:
    alert_raise(
        kind=Alert.Kind.PERFORMANCE, severity=Alert.Severity.WARNING,
        model_name=version.model.name, version=version.version,
        message=(f"{version.model.name} {version.version} ({arm}): live {degraded.metric} "
                 f"{degraded.live:.4f} on {n} labelled predictions is "
                 f"{degraded.relative:.1%} worse than its validation {degraded.validation:.4f} "
                 f"(threshold {settings.PERFORMANCE_DEGRADATION_THRESHOLD:.0%})"),
        payload={"arm": arm, "metric": degraded.metric, "live": degraded.live,
                 "validation": degraded.validation, "relative": degraded.relative,
                 "n_labelled": n, "performance_report_id": report.pk,
                 "threshold": settings.PERFORMANCE_DEGRADATION_THRESHOLD},
    )


def performance_evaluate_all(*, now: datetime | None = None) -> list[PerformanceReport]:
    """performance_evaluate for every live version (champions, challengers and shadows)."""
    now = now or timezone.now()
    return [report for live in registry.live_versions_all() if live.task != ANOMALY
            for report in performance_evaluate(version_id=live.version_id, now=now)]
