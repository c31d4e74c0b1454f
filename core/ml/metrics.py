"""Validation metrics per task (docs/training.md#validation-metrics). Pure: no database access.

Every figure is a plain Python float, or None when it is undefined on the given data (for
example ROC AUC when the target holds a single class), so the result is strict JSON
(PostgreSQL's jsonb refuses NaN).

- regression: r2, mae, rmse.
- binary_classification: accuracy, precision, recall, f1, roc_auc, brier; the positive
  class is `estimator.classes_[1]` and the probabilities are `predict_proba(...)[:, 1]`.
- multiclass_classification: accuracy, macro precision/recall/f1, and when the estimator
  has `predict_proba`, one-vs-rest macro roc_auc and the multiclass brier score.
- anomaly_detection (an sklearn outlier detector, `predict` gives -1 for outliers):
  contamination (share predicted -1) and the quantiles q01, q05, q50, q95, q99 of the
  anomaly score (see `anomaly_scores`). The target is not used: the detector is
  unsupervised.

`PRIMARY_METRIC` names the figure the validation gate compares. Anomaly detection has
none: contamination and score quantiles describe the data, they do not say that one
detector is better than another, and there are no labels to judge by; its gate is
recorded as not applicable (see validation.py).
"""

import math
import warnings
from typing import Any

import numpy
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from core.errors import ValidationError
from core.ml.kinds import ANOMALY, BINARY, MULTICLASS, REGRESSION, TASKS
from core.ml.outputs import anomaly_scores, outputs_bounded

SCORE_QUANTILES = {"q01": 0.01, "q05": 0.05, "q50": 0.50, "q95": 0.95, "q99": 0.99}


def metric_float(value: Any) -> float | None:
    """A plain float, or None for NaN/inf (undefined figures)."""
    value = float(value)
    return value if math.isfinite(value) else None


def _guarded(compute) -> float | None:
    """Figures that are undefined on the data (one class only) become None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            return metric_float(compute())
    except ValueError:
        return None


def _regression(estimator, features, target, lower_bound: float | None) -> dict:
    predicted = outputs_bounded(numpy.asarray(estimator.predict(features), dtype=float),
                                lower=lower_bound)
    return {
        "r2": _guarded(lambda: skm.r2_score(target, predicted)),
        "mae": metric_float(skm.mean_absolute_error(target, predicted)),
        "rmse": metric_float(skm.root_mean_squared_error(target, predicted)),
    }


def _binary(estimator, features, target) -> dict:
    positive = estimator.classes_[1]
    predicted = estimator.predict(features)
    probability = estimator.predict_proba(features)[:, 1]
    is_positive = numpy.asarray(target) == positive
    return {
        "accuracy": metric_float(skm.accuracy_score(target, predicted)),
        "precision": metric_float(skm.precision_score(
            target, predicted, pos_label=positive, zero_division=0)),
        "recall": metric_float(skm.recall_score(
            target, predicted, pos_label=positive, zero_division=0)),
        "f1": metric_float(skm.f1_score(target, predicted, pos_label=positive, zero_division=0)),
        "roc_auc": _guarded(lambda: skm.roc_auc_score(is_positive, probability)),
        "brier": metric_float(skm.brier_score_loss(is_positive, probability)),
    }


def _multiclass(estimator, features, target) -> dict:
    predicted = estimator.predict(features)
    result = {
        "accuracy": metric_float(skm.accuracy_score(target, predicted)),
        "precision": metric_float(skm.precision_score(
            target, predicted, average="macro", zero_division=0)),
        "recall": metric_float(skm.recall_score(
            target, predicted, average="macro", zero_division=0)),
        "f1": metric_float(skm.f1_score(target, predicted, average="macro", zero_division=0)),
    }
    if hasattr(estimator, "predict_proba"):
        probabilities = estimator.predict_proba(features)
        labels = list(estimator.classes_)
        result["roc_auc"] = _guarded(lambda: skm.roc_auc_score(
            target, probabilities, multi_class="ovr", average="macro", labels=labels))
        result["brier"] = _guarded(lambda: skm.brier_score_loss(
            target, probabilities, labels=labels))
    return result


def _anomaly(estimator, features) -> dict:
    predicted = numpy.asarray(estimator.predict(features))
    scores = anomaly_scores(estimator=estimator, features=features)
    quantiles = numpy.quantile(scores, list(SCORE_QUANTILES.values()))
    return {
        "contamination": metric_float(numpy.mean(predicted == -1)),
        **{name: metric_float(q) for name, q in zip(SCORE_QUANTILES, quantiles, strict=True)},
    }


def metrics_evaluate(*, task: str, estimator: Any, features: Any, target: Any,
                     lower_bound: float | None = None) -> dict:
    """The task's metrics of a fitted estimator on (features, target), of its answers as
    served: a regression's never below `lower_bound` (a count's 0, core.ml.schema)."""
    if task == REGRESSION:
        return _regression(estimator, features, target, lower_bound)
    if task == BINARY:
        return _binary(estimator, features, target)
    if task == MULTICLASS:
        return _multiclass(estimator, features, target)
    if task == ANOMALY:
        return _anomaly(estimator, features)
    raise ValidationError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
