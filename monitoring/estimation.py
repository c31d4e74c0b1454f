"""Estimated performance (docs/monitoring.md#estimated-performance): a live version's metrics
estimated from its logged predictions before any label arrives, per arm, beside the
realized ones, and an alert when the estimate falls behind validation.

The maths is core.ml.estimation (CBPE for binary classifiers, DLE for regressors). What a
version needs for it was stored when it was trained or registered: the reference in
`training_report["estimation"]` and, where the reference names them, fitted objects in
its bundle (a calibrator, the error models). Those are loaded as serving loads a bundle:
after the sealed audit rows and every file's hash check out. A version stored before
estimation existed, a multiclass or anomaly model, has none: its estimate is "not
available" and no report is written.

Window: every prediction of the version made in [now - PERFORMANCE_WINDOW_HOURS, now)
(labelled or not; pinned answers, a client's backtests, are not live traffic), read in
chunks of MONITORING_CHUNK_SIZE rows of which only the probability and predicted class
(binary), or the expected errors of each row (regression), are kept.

Alert: with at least PERFORMANCE_MIN_LABELLED predictions in an arm's window, the
estimate of ESTIMATED_PRIMARY (ROC AUC for binary classifiers; MAE for regressors, whose
R2 cannot be estimated without the outcomes' variance) worse than the version's
validation figure by more than PERFORMANCE_DEGRADATION_THRESHOLD of that figure raises a
`warning` `estimated_performance` alert.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy
import pandas
from django.conf import settings
from django.db import transaction
from django.db.models import Subquery
from django.utils import timezone

from core.errors import ApplicationError
from core.ml import estimation as estimators
from core.ml.features import model_frame
from core.ml.kinds import ANOMALY, BINARY, HIGHER_IS_BETTER, REGRESSION
from core.ml.outputs import class_label
from mlregistry import artifacts
from mlregistry import selectors as registry
from mlregistry.models import MLModelVersion, Status
from monitoring import selectors
from monitoring.alerts import alert_raise
from monitoring.models import Alert, EstimatedPerformanceReport, PerformanceReport
from monitoring.performance import performance_evaluate, row_chunks
from predictions.models import PredictionLog

logger = logging.getLogger("pulselytics.monitoring")

ESTIMATED_PRIMARY = {BINARY: "roc_auc", REGRESSION: "mae"}


def estimation_reference(version: MLModelVersion) -> dict | None:
    """The version's stored estimation reference; None when it has none (stored before
    estimation existed, a multiclass or anomaly model, too few validation rows)."""
    reference = (version.training_report or {}).get("estimation")
    if not reference or reference.get("format") != estimators.FORMAT:
        return None
    if version.model.task not in ESTIMATED_PRIMARY:
        return None
    return reference


def estimation_unavailable_reason(version: MLModelVersion) -> str:
    """Why a version has no estimated performance ("" when it has)."""
    if version.model.task not in ESTIMATED_PRIMARY:
        return f"not estimated for {version.model.task}"
    if estimation_reference(version) is None:
        return "no estimation reference (stored before estimation, or too few validation rows)"
    if version.artifacts_deleted_at is not None and estimation_reference(version)["artifacts"]:
        return "its files were removed by clean-up"
    return ""


def _objects(version: MLModelVersion, reference: dict) -> dict[str, Any]:
    """The bundle objects the reference names, loaded after verification."""
    if not reference.get("artifacts"):
        return {}
    registry.sealed_artifact_check(version_id=version.pk, model_sha256=version.model_sha256)
    loaded = artifacts.bundle_load(manifest=version.artifact_manifest,
                                   model_sha256=version.model_sha256)
    return {name: loaded.objects[name] for name in reference["artifacts"]}


@dataclass
class _Arm:
    n: int = 0
    parts: list = field(default_factory=list)


def _window(version_id: int, start: datetime, end: datetime, *columns: str):
    size = settings.MONITORING_CHUNK_SIZE
    rows = (PredictionLog.objects.filter(model_version_id=version_id, created_at__gte=start,
                                         created_at__lt=end)
            .exclude(arm=PredictionLog.Arm.PINNED)
            .order_by("created_at", "prediction_id")
            .values_list("arm", *columns).iterator(chunk_size=size))
    return row_chunks(rows, size)


def _binary(version: MLModelVersion, reference: dict, objects: dict, start, end
            ) -> dict[str, tuple[int, dict]]:
    arms: dict[str, _Arm] = {}
    positive = None
    for chunk in _window(version.pk, start, end, "value", "probabilities"):
        for arm, value, probabilities in chunk:
            if not probabilities:
                continue
            if positive is None:
                positive = max(class_label(key, value) for key in probabilities)
            entry = arms.setdefault(arm, _Arm())
            entry.n += 1
            entry.parts.append((float(probabilities.get(str(positive), 0.0)),
                                value == positive))
    calibrator = objects.get(estimators.CALIBRATOR)
    figures = {}
    for arm, entry in sorted(arms.items()):
        scores = numpy.array([score for score, _ in entry.parts], dtype=float)
        predicted = numpy.array([flag for _, flag in entry.parts], dtype=bool)
        probability = (numpy.asarray(calibrator.predict(scores), dtype=float)
                       if calibrator is not None else scores)
        figures[arm] = (entry.n, estimators.cbpe_expected(
            scores=scores, probability=probability, predicted_positive=predicted))
    return figures


def _regression(version: MLModelVersion, reference: dict, objects: dict, start, end
                ) -> dict[str, tuple[int, dict]]:
    schema = version.feature_schema
    names = [feature["name"] for feature in schema["features"]]
    arms: dict[str, _Arm] = {}
    for chunk in _window(version.pk, start, end, "value", "features"):
        by_arm: dict[str, list] = {}
        for arm, value, features in chunk:
            by_arm.setdefault(arm, []).append((value, features or {}))
        for arm, rows in by_arm.items():
            # A feature the log lacks (a personal one is never logged) is a missing value.
            frame = pandas.DataFrame([{name: features.get(name) for name in names}
                                      for _, features in rows], columns=names)
            canonical, _ = model_frame(frame, schema)
            predicted = pandas.to_numeric(pandas.Series([value for value, _ in rows]),
                                          errors="coerce").to_numpy(dtype=float)
            errors = estimators.dle_row_errors(
                frame=estimators.dle_frame(canonical.reset_index(drop=True), predicted,
                                           reference["columns"]),
                absolute_model=objects[estimators.ABSOLUTE_ERROR_MODEL],
                squared_model=objects[estimators.SQUARED_ERROR_MODEL])
            entry = arms.setdefault(arm, _Arm())
            entry.n += len(rows)
            entry.parts.append(errors)
    return {arm: (entry.n, estimators.dle_figures(
                absolute=numpy.concatenate([absolute for absolute, _ in entry.parts]),
                squared=numpy.concatenate([squared for _, squared in entry.parts])))
            for arm, entry in sorted(arms.items())}


def estimated_by_arm(*, version: MLModelVersion, start: datetime, end: datetime
                     ) -> dict[str, tuple[int, dict]]:
    """{arm: (predictions, {metric: {"value", "lower", "upper", "method"}})} of the version's
    predictions in [start, end); {} when it has no estimation reference."""
    reference = estimation_reference(version)
    if reference is None or estimation_unavailable_reason(version):
        return {}
    objects = _objects(version, reference)
    estimate = _binary if version.model.task == BINARY else _regression
    return {arm: (n, estimators.with_bands(figures=figures, reference=reference, n=n))
            for arm, (n, figures) in estimate(version, reference, objects, start, end).items()}


@dataclass(frozen=True)
class EstimatedDegradation:
    metric: str
    estimated: dict  # {"value", "lower", "upper", "method"}
    validation: float
    relative: float


def estimated_degradation(*, task: str, estimated: dict, validation: dict
                          ) -> EstimatedDegradation | None:
    """The primary estimate's relative shortfall against validation, when it exceeds
    PERFORMANCE_DEGRADATION_THRESHOLD (None when it does not, or cannot be judged)."""
    metric = ESTIMATED_PRIMARY.get(task)
    figure = estimated.get(metric) or {}
    value, baseline = figure.get("value"), (validation or {}).get(metric)
    if value is None or not baseline:
        return None
    worse_by = baseline - value if HIGHER_IS_BETTER[metric] else value - baseline
    relative = worse_by / abs(baseline)
    if relative <= settings.PERFORMANCE_DEGRADATION_THRESHOLD:
        return None
    return EstimatedDegradation(metric=metric, estimated=figure, validation=baseline,
                                relative=relative)


def estimation_evaluate(*, version_id: int, now: datetime | None = None
                        ) -> list[EstimatedPerformanceReport]:
    """One EstimatedPerformanceReport per arm of the version with predictions in
    [now - PERFORMANCE_WINDOW_HOURS, now), and an `estimated_performance` alert for each
    arm whose primary estimate has degraded. Nothing for a version without estimation; a
    version whose files fail verification is skipped (serving raises its integrity
    alert)."""
    now = now or timezone.now()
    start = now - timedelta(hours=settings.PERFORMANCE_WINDOW_HOURS)
    version = MLModelVersion.objects.select_related("model").get(pk=version_id)
    try:
        by_arm = estimated_by_arm(version=version, start=start, end=now)
    except ApplicationError as exc:
        logger.warning("estimated performance skipped: %s", exc.message,
                       extra={"model": version.model.name, "version": version.version})
        return []
    task = version.model.task
    validation = {name: (version.metrics or {}).get(name)
                  for name in (estimators.CBPE_METRICS if task == BINARY
                               else estimators.DLE_METRICS)}
    reports = []
    with transaction.atomic():
        for arm, (n, estimated) in by_arm.items():
            report = EstimatedPerformanceReport.objects.create(
                model_version=version, model_name=version.model.name, version=version.version,
                arm=arm, method=next(iter(estimated.values()))["method"], n_predictions=n,
                estimated=estimated, validation=validation, window_start=start,
                window_end=now, created_at=now)
            reports.append(report)
            if n < settings.PERFORMANCE_MIN_LABELLED:
                continue
            degraded = estimated_degradation(task=task, estimated=estimated,
                                             validation=version.metrics)
            if degraded:
                _alert(version=version, report=report, degraded=degraded)
    return reports


def _alert(*, version: MLModelVersion, report: EstimatedPerformanceReport,
           degraded: EstimatedDegradation) -> None:
    figure = degraded.estimated
    band = (f" (band {figure['lower']:.4f} to {figure['upper']:.4f})"
            if figure["lower"] is not None else "")
    alert_raise(
        kind=Alert.Kind.ESTIMATED_PERFORMANCE, severity=Alert.Severity.WARNING,
        model_name=version.model.name, version=version.version,
        message=(f"{version.model.name} {version.version} ({report.arm}): estimated "
                 f"{degraded.metric} {figure['value']:.4f}{band} on {report.n_predictions} "
                 f"predictions ({figure['method'].upper()}, no labels needed) is "
                 f"{degraded.relative:.1%} worse than its validation {degraded.validation:.4f} "
                 f"(threshold {settings.PERFORMANCE_DEGRADATION_THRESHOLD:.0%})"),
        payload={"arm": report.arm, "metric": degraded.metric, "method": figure["method"],
                 "estimated": figure["value"], "lower": figure["lower"],
                 "upper": figure["upper"], "validation": degraded.validation,
                 "relative": degraded.relative, "n_predictions": report.n_predictions,
                 "estimated_performance_report_id": report.pk,
                 "threshold": settings.PERFORMANCE_DEGRADATION_THRESHOLD},
    )


def estimation_evaluate_all(*, now: datetime | None = None, model_name: str | None = None
                            ) -> list[EstimatedPerformanceReport]:
    """estimation_evaluate for every live version (or one model's) that can be estimated."""
    now = now or timezone.now()
    return [report for live in registry.live_versions_all()
            if live.task in ESTIMATED_PRIMARY
            and (model_name is None or live.model_name == model_name)
            for report in estimation_evaluate(version_id=live.version_id, now=now)]


@dataclass(frozen=True)
class ArmPerformance:
    """Realized and estimated performance of one version and arm from one check."""

    model_name: str
    version: str
    arm: str
    realized: PerformanceReport | None
    estimated: EstimatedPerformanceReport | None
    unavailable: str  # why there is no estimate for the version ("" when it has one)


def live_performance_check(*, model_name: str | None = None, now: datetime | None = None
                           ) -> list[ArmPerformance]:
    """The live performance check now (realized and estimated, with their alerts) for
    every live version, or one model's, one entry per version and arm."""
    if model_name is not None:
        registry.model_get(name=model_name)  # an unknown name is an error
    now = now or timezone.now()
    checked = []
    for live in registry.live_versions_all():
        if live.task == ANOMALY or (model_name is not None and live.model_name != model_name):
            continue
        realized = {r.arm: r for r in performance_evaluate(version_id=live.version_id, now=now)}
        estimated = {r.arm: r for r in estimation_evaluate(version_id=live.version_id, now=now)}
        version = MLModelVersion.objects.select_related("model").get(pk=live.version_id)
        unavailable = estimation_unavailable_reason(version)
        for arm in sorted(set(realized) | set(estimated)) or [""]:
            checked.append(ArmPerformance(
                model_name=live.model_name, version=live.version, arm=arm,
                realized=realized.get(arm), estimated=estimated.get(arm),
                unavailable=unavailable))
    return checked


# --- reads (the API) ----------------------------------------------------------------------


@dataclass(frozen=True)
class VersionPerformance:
    """A live version's latest realized and estimated performance, per arm."""

    version: MLModelVersion
    role: str  # "champion", "challenger" or "shadow"
    realized: list[PerformanceReport]  # the latest check's reports, by arm
    estimated: list[EstimatedPerformanceReport]  # the latest estimation's reports, by arm
    unavailable: str  # why the version has no estimate ("" when it has one)


def estimated_reports_latest(*, version_id: int) -> list[EstimatedPerformanceReport]:
    """The version's reports of its latest estimation, one per arm, by arm; [] when it was
    never estimated."""
    newest = (EstimatedPerformanceReport.objects.filter(model_version_id=version_id)
              .order_by("-created_at", "-pk").values("created_at")[:1])
    return list(EstimatedPerformanceReport.objects.filter(
        model_version_id=version_id, created_at=Subquery(newest)).order_by("arm", "pk"))


def live_performance_latest(*, model_name: str) -> list[VersionPerformance]:
    """Every live version of the model (champion first, then challengers and shadows in the
    order they were registered) with its latest realized and estimated reports."""
    live = [v for v in registry.live_versions_all() if v.model_name == model_name]
    versions = MLModelVersion.objects.select_related("model").in_bulk([v.version_id
                                                                       for v in live])
    result = []
    for entry in sorted(live, key=lambda v: (v.status != Status.PRODUCTION, v.version_id)):
        role = ("champion" if entry.status == Status.PRODUCTION
                else "shadow" if entry.is_shadow else "challenger")
        version = versions[entry.version_id]
        result.append(VersionPerformance(
            version=version, role=role,
            realized=selectors.performance_reports_latest(version_id=version.pk),
            estimated=estimated_reports_latest(version_id=version.pk),
            unavailable=estimation_unavailable_reason(version)))
    return result
