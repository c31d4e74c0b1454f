"""A version with something in every section of its monitoring report: drift, live
performance (realized and estimated), a validation fairness audit and a shadow evaluation
(shared by the report's tests and its browser test)."""

from datetime import timedelta

import numpy
from django.utils import timezone

from core.ml.fairness import fairness_report
from mlregistry.models import MLModelVersion
from monitoring.drift import drift_check
from monitoring.models import EstimatedPerformanceReport, ShadowEvaluation
from monitoring.performance import performance_evaluate
from tests.factories import (
    drift_frame,
    drift_outputs,
    labelled_logs_create,
    prediction_logs_create,
    register_profiled_version,
)


def reported_version(people) -> MLModelVersion:
    version = register_profiled_version(**people)
    at = timezone.now() - timedelta(minutes=10)
    shifted = drift_frame(n=150, seed=4, shift={"followers": 600.0})
    prediction_logs_create(version=version, frame=shifted, values=drift_outputs(shifted),
                           created_at=at)
    drift_check(version_id=version.pk)
    rng = numpy.random.default_rng(0)
    actual = rng.normal(20.0, 5.0, 40)
    labelled_logs_create(version=version, values=(actual + rng.normal(0, 2.0, 40)).tolist(),
                         actuals=actual.tolist(), created_at=at)
    performance_evaluate(version_id=version.pk)
    MLModelVersion.objects.filter(pk=version.pk).update(fairness_report=fairness_report(
        task="regression", protected={"region": ["north"] * 30 + ["south"] * 30},
        y_true=rng.normal(20.0, 5.0, 60), y_pred=rng.normal(20.0, 5.0, 60)))
    EstimatedPerformanceReport.objects.create(
        model_version=version, model_name=version.model.name, version=version.version,
        window_start=at, window_end=timezone.now(), created_at=timezone.now(), arm="champion",
        method="dle", n_predictions=150, validation={"mae": 1.8},
        estimated={"mae": {"value": 2.1, "lower": 1.7, "upper": 2.5, "method": "dle"}})
    ShadowEvaluation.objects.create(
        model_name=version.model.name, window_start=at, window_end=timezone.now(),
        created_at=timezone.now(), champion=version, shadow=version, pairs=12, labelled=0,
        mean_abs_difference=0.4, p95_abs_difference=0.9, verdict="inconclusive",
        reason="0 answer pairs with outcomes")
    return MLModelVersion.objects.get(pk=version.pk)
