"""Validation diagnostics (docs/training.md#validation-diagnostics). Pure: no database access.

The figures behind a version's validation metrics, computed on the same rows (a trained
recipe's held-out validation rows; for `register_model`, the given file's labelled rows),
so a reviewer can see where a model errs and not only by how much. Stored in the
version's `training_report["validation_diagnostics"]`, strict JSON (no NaN) and small:
the only per-row values are a bounded sample of (predicted, residual) pairs. Shape:

    {"format": 1,
     "task": <task name>,               # core.ml.kinds
     "rows": 40,                        # the rows the figures were computed on
     "kind": "residuals" | "classification" | "not_applicable",
     ...}                               # what follows, by kind

Regression, kind "residuals" (residual = actual - predicted):

    "residuals": {
      "mean": 0.8,                      # mean residual over all rows
      "bins": [                         # by predicted value, up to BINS quantile bins:
        {"lower": 120.5, "upper": 310.2,   # edges numpy.unique(numpy.quantile(predicted,
         "count": 4,                       # linspace(0, 1, BINS + 1))); a row is in the
         "predicted_mean": 250.1,          # first bin whose upper edge it does not exceed
         "residual_mean": -1.2,            # (the first bin also holds the lowest edge);
         "residual_p10": -6.0,             # empty bins are left out
         "residual_p90": 4.1}, ...],       # numpy.quantile of the bin's residuals
      "sample": [[predicted, residual], ...],  # every row when rows <= SAMPLE_SIZE, else
                                               # SAMPLE_SIZE rows drawn without replacement
                                               # by numpy.random.default_rng(sample_seed),
                                               # in row order
      "sample_seed": 42}

Binary classification, kind "classification":

    "calibration": {                    # reliability table of predict_proba(...)[:, 1]
      "positive_label": 1,              # classes_[1]
      "bins": [                         # CALIBRATION_BINS equal-width bins of [0, 1], the
        {"lower": 0.1, "upper": 0.2,    # binning of sklearn.calibration.calibration_curve
         "count": 12,                   # (strategy "uniform"); empty bins are left out
         "mean_predicted": 0.16,        # calibration_curve's prob_pred
         "observed_rate": 0.25}, ...]}, # calibration_curve's prob_true: share positive
    "confusion": <confusion>

Multiclass classification, kind "classification": "confusion" only.

    <confusion> = {"labels": [0, 1],    # estimator.classes_ (numpy's tolist())
                   "counts": [[50, 3], [7, 40]]}   # sklearn.metrics.confusion_matrix at
                                                   # the model's own predict(): row =
                                                   # actual label, column = predicted

Anomaly detection, kind "not_applicable": `"reason"` says why (no target to compare with).
"""

from typing import Any

import numpy
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix

from core.errors import ValidationError
from core.ml.kinds import ANOMALY, BINARY, REGRESSION, TASKS

DIAGNOSTICS_FORMAT = 1
BINS = 10
CALIBRATION_BINS = 10
SAMPLE_SIZE = 300
RESIDUAL_QUANTILES = (0.1, 0.9)
RESIDUALS = "residuals"
CLASSIFICATION = "classification"
NOT_APPLICABLE = "not_applicable"


def _bin_index(values: numpy.ndarray, edges: numpy.ndarray) -> numpy.ndarray:
    """Which bin each value is in: bins (edges[0], edges[1]], ..., the first one closed
    below; calibration_curve bins the same way (searchsorted on the inner edges)."""
    return numpy.searchsorted(edges[1:-1], values)


def residual_summary(*, actual: Any, predicted: Any, sample_seed: int) -> dict:
    """Residuals (actual - predicted) binned by predicted value, and a bounded sample."""
    actual = numpy.asarray(actual, dtype=float)
    predicted = numpy.asarray(predicted, dtype=float)
    residuals = actual - predicted
    edges = numpy.unique(numpy.quantile(predicted, numpy.linspace(0, 1, BINS + 1)))
    if edges.size == 1:  # every prediction equal: one bin of zero width
        edges = numpy.repeat(edges, 2)
    index = _bin_index(predicted, edges)
    bins = []
    for position in range(edges.size - 1):
        inside = index == position
        if not inside.any():
            continue
        low, high = numpy.quantile(residuals[inside], RESIDUAL_QUANTILES)
        bins.append({"lower": float(edges[position]), "upper": float(edges[position + 1]),
                     "count": int(inside.sum()),
                     "predicted_mean": float(predicted[inside].mean()),
                     "residual_mean": float(residuals[inside].mean()),
                     "residual_p10": float(low), "residual_p90": float(high)})
    chosen = numpy.arange(predicted.size)
    if predicted.size > SAMPLE_SIZE:
        chosen = numpy.sort(numpy.random.default_rng(sample_seed).choice(
            predicted.size, size=SAMPLE_SIZE, replace=False))
    return {"mean": float(residuals.mean()), "bins": bins,
            "sample": [[float(predicted[i]), float(residuals[i])] for i in chosen],
            "sample_seed": int(sample_seed)}


def calibration_table(*, is_positive: Any, probability: Any, positive_label: Any) -> dict:
    """Reliability table of positive-class probabilities against the observed outcome;
    `positive_label` is recorded as given (a JSON value)."""
    is_positive = numpy.asarray(is_positive, dtype=bool)
    probability = numpy.asarray(probability, dtype=float)
    observed, mean_predicted = calibration_curve(
        is_positive, probability, pos_label=True, n_bins=CALIBRATION_BINS, strategy="uniform")
    edges = numpy.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    counts = numpy.bincount(_bin_index(probability, edges), minlength=CALIBRATION_BINS)
    filled = numpy.flatnonzero(counts)  # calibration_curve's bins, in the same order
    # Edges as i / CALIBRATION_BINS (0.3, not linspace's 0.30000000000000004).
    return {"positive_label": positive_label, "bins": [
        {"lower": int(index) / CALIBRATION_BINS, "upper": (int(index) + 1) / CALIBRATION_BINS,
         "count": int(counts[index]),
         "mean_predicted": float(predicted), "observed_rate": float(rate)}
        for index, predicted, rate in zip(filled, mean_predicted, observed, strict=True)]}


def confusion_counts(*, actual: Any, predicted: Any, labels: Any) -> dict:
    """Counts of (actual, predicted) label pairs over every class the model knows."""
    labels = numpy.asarray(labels)
    counts = confusion_matrix(numpy.asarray(actual), numpy.asarray(predicted), labels=labels)
    # tolist(): numpy's scalars as Python's, which JSON holds.
    return {"labels": labels.tolist(), "counts": counts.tolist()}


def validation_diagnostics(*, task: str, estimator: Any, features: Any, target: Any,
                           sample_seed: int) -> dict:
    """The diagnostics of a fitted estimator on (features, target): see the module docstring.

    `target` is not read for anomaly detection (None there); `sample_seed` draws the
    residual sample. Classifiers' rows are counted over `estimator.classes_`.
    """
    if task not in TASKS:
        raise ValidationError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
    rows = len(features)
    common = {"format": DIAGNOSTICS_FORMAT, "task": task, "rows": rows}
    if task == ANOMALY:
        return {**common, "kind": NOT_APPLICABLE,
                "reason": "anomaly detection has no target: there are no actual values to set "
                          "the model's answers against"}
    target = numpy.asarray(target)
    predicted = numpy.asarray(estimator.predict(features))
    if task == REGRESSION:
        return {**common, "kind": RESIDUALS,
                RESIDUALS: residual_summary(actual=target, predicted=predicted,
                                            sample_seed=sample_seed)}
    result = {**common, "kind": CLASSIFICATION}
    if task == BINARY:
        positive = estimator.classes_[1]
        result["calibration"] = calibration_table(
            is_positive=target == positive, positive_label=numpy.asarray(positive).tolist(),
            probability=numpy.asarray(estimator.predict_proba(features))[:, 1])
    result["confusion"] = confusion_counts(actual=target, predicted=predicted,
                                           labels=estimator.classes_)
    return result
