"""Estimated performance without labels (docs/monitoring.md#estimated-performance).

Pure: numpy and scikit-learn only, no database access, no storage.

At training or registration, a *reference* is built on the rows the validation metrics
were computed on (a recipe's held-out validation rows, `register_model`'s labelled rows):
a JSON document (stored in `training_report["estimation"]`) and, where needed, fitted
objects stored in the version's bundle beside the estimator (hashed, in the manifest),
used for estimation only and never for serving. At monitoring time a window of logged
predictions, without labels, is turned into expected metrics with a confidence band.

Binary classifiers: confidence-based performance estimation (CBPE, as NannyML defines it).

- Reliability check: the expected calibration error (ECE) of the positive-class
  probability on the reference rows, 10 bins of width 0.1, `sum_b n_b / n * |mean p_b -
  positive rate_b|`. A calibrated model shows an ECE of about 0.4 sqrt(bins / n) on n rows
  by chance alone, so the limit is `CALIBRATION_MAX_ECE + sqrt(bins / n) / 2` (0.05 plus
  the noise: 0.115 on 600 rows, 0.085 on 2000). Above it a calibrator is fitted:
  `IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)` of the outcome on the
  probability, stored as the bundle object CALIBRATOR. Otherwise the probabilities are
  used as they are.
- With p the (calibrated) probability of the positive class and the model's own
  predicted class, the expected confusion matrix is TP = sum p over predicted positives,
  FP = sum (1 - p) over predicted positives, FN = sum p over predicted negatives,
  TN = sum (1 - p) over predicted negatives; accuracy = (TP + TN) / n,
  precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN).
- ROC AUC: the expected ROC curve. Rows are ranked by the model's own score
  (descending, ties grouped as `sklearn.metrics.roc_curve` groups them); at each distinct
  score the expected TPR is the cumulated p over all p, the expected FPR the cumulated
  (1 - p) over all (1 - p); the estimate is the area under that curve (trapezoids). With
  p equal to the outcomes (0 or 1) every figure equals scikit-learn's.

Regressors: direct loss estimation (DLE).

- Two small seeded `HistGradientBoostingRegressor`s (behind an `OrdinalEncoder` for the
  categorical inputs) learn, on the reference rows, the absolute error and the squared
  error of the model from its inputs (not the personal ones, which are never logged) and
  its prediction. Stored as the bundle objects ABSOLUTE_ERROR_MODEL and
  SQUARED_ERROR_MODEL.
- Expected MAE = mean of the predicted absolute errors (each at least 0); expected RMSE
  = square root of the mean predicted squared error (each at least 0).

Confidence band (both methods): the sampling error of each metric is measured on the
reference rows: the standard deviation std_ref of the *realized* metric over
SAMPLING_RESAMPLES bootstrap resamples of the n_ref reference rows (drawn with the run's
seed). As NannyML does, a window of n rows has the sampling error std_ref * sqrt(n_ref /
n); to it we add the reference's own (the calibrator and the error models learnt their
level from those n_ref rows, which were a sample too), so sigma = std_ref * sqrt(n_ref /
n + 1), and the band is value +- BAND_SIGMAS * sigma, clipped to the metric's range ([0,
1] for classifiers, at least 0 for errors).
A metric that is undefined on the window (precision with no predicted positive) is None,
and so is a band whose sampling error could not be measured.

Fewer than MIN_REFERENCE_ROWS reference rows, or a reference with a single class: no
reference (estimation is "not available" for the version, as for versions stored before
estimation existed).
"""

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy
import pandas
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from core.ml.kinds import BINARY, REGRESSION

FORMAT = 1
CBPE = "cbpe"
DLE = "dle"
CBPE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
DLE_METRICS = ("mae", "rmse")
CALIBRATION_BINS = 10
CALIBRATION_MAX_ECE = 0.05
SAMPLING_RESAMPLES = 50
BAND_SIGMAS = 3.0
MIN_REFERENCE_ROWS = 20
# Bundle objects (skops files beside the estimator), for estimation only.
CALIBRATOR = "estimation_calibrator"
ABSOLUTE_ERROR_MODEL = "estimation_absolute_error"
SQUARED_ERROR_MODEL = "estimation_squared_error"
PREDICTION_COLUMN = "__prediction__"
MISSING_CATEGORY = "(missing)"


@dataclass(frozen=True)
class EstimationReference:
    """What training stores for estimation: `document` (JSON, in the training report) and
    `objects` (fitted estimators, by bundle name)."""

    document: dict
    objects: dict[str, Any] = field(default_factory=dict)


def _float(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _ratio(numerator: float, denominator: float) -> float | None:
    return _float(numerator / denominator) if denominator > 0 else None


# --- binary classifiers: CBPE -------------------------------------------------------------


def expected_calibration_error(probability: numpy.ndarray, is_positive: numpy.ndarray,
                               bins: int = CALIBRATION_BINS) -> float:
    """ECE over `bins` bins of equal width on [0, 1] (the last bin includes 1)."""
    probability = numpy.asarray(probability, dtype=float)
    outcome = numpy.asarray(is_positive, dtype=float)
    which = numpy.minimum((probability * bins).astype(int), bins - 1)
    total = 0.0
    for b in numpy.unique(which):
        in_bin = which == b
        total += in_bin.sum() * abs(probability[in_bin].mean() - outcome[in_bin].mean())
    return float(total / len(probability))


def calibration_limit(n: int) -> float:
    """The ECE above which n reference rows' probabilities are taken as not calibrated."""
    return CALIBRATION_MAX_ECE + math.sqrt(CALIBRATION_BINS / n) / 2


def calibrator_fit(probability: numpy.ndarray, is_positive: numpy.ndarray) -> Any:
    from sklearn.isotonic import IsotonicRegression  # noqa: PLC0415 - only to train

    return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(
        numpy.asarray(probability, dtype=float), numpy.asarray(is_positive, dtype=float))


def expected_roc_auc(scores: numpy.ndarray, probability: numpy.ndarray) -> float | None:
    """The area under the expected ROC curve: rows ranked by `scores`, each counting
    `probability` of a positive and 1 - `probability` of a negative."""
    scores = numpy.asarray(scores, dtype=float)
    probability = numpy.asarray(probability, dtype=float)
    order = numpy.argsort(-scores, kind="mergesort")
    ranked, expected = scores[order], probability[order]
    true_positives = numpy.cumsum(expected)
    false_positives = numpy.cumsum(1.0 - expected)
    if not len(ranked) or true_positives[-1] <= 0 or false_positives[-1] <= 0:
        return None
    last_of_each = numpy.r_[numpy.nonzero(numpy.diff(ranked))[0], len(ranked) - 1]
    tpr = numpy.r_[0.0, true_positives[last_of_each] / true_positives[-1]]
    fpr = numpy.r_[0.0, false_positives[last_of_each] / false_positives[-1]]
    return _float(skm.auc(fpr, tpr))


def cbpe_expected(*, scores: numpy.ndarray, probability: numpy.ndarray,
                  predicted_positive: numpy.ndarray) -> dict:
    """Expected accuracy, precision, recall, F1 and ROC AUC (None where undefined)."""
    probability = numpy.asarray(probability, dtype=float)
    predicted = numpy.asarray(predicted_positive, dtype=bool)
    n = len(probability)
    if not n:
        return dict.fromkeys(CBPE_METRICS)
    tp = float(probability[predicted].sum())
    fp = float((1.0 - probability[predicted]).sum())
    fn = float(probability[~predicted].sum())
    tn = float((1.0 - probability[~predicted]).sum())
    return {"accuracy": _float((tp + tn) / n), "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn), "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "roc_auc": expected_roc_auc(scores, probability)}


def cbpe_realized(*, scores: numpy.ndarray, is_positive: numpy.ndarray,
                  predicted_positive: numpy.ndarray) -> dict:
    """The same metrics from outcomes, by scikit-learn (None where undefined)."""
    actual = numpy.asarray(is_positive, dtype=bool)
    predicted = numpy.asarray(predicted_positive, dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        figures = {
            "accuracy": skm.accuracy_score(actual, predicted),
            "precision": (skm.precision_score(actual, predicted, zero_division=0)
                          if predicted.any() else None),
            "recall": skm.recall_score(actual, predicted, zero_division=0) if actual.any()
            else None,
            "f1": skm.f1_score(actual, predicted, zero_division=0)
            if actual.any() or predicted.any() else None,
            "roc_auc": skm.roc_auc_score(actual, scores) if 0 < actual.sum() < len(actual)
            else None,
        }
    return {name: _float(value) for name, value in figures.items()}


def _average_ranks(values: numpy.ndarray) -> numpy.ndarray:
    """1-based ranks, tied values sharing their average rank."""
    _, inverse, counts = numpy.unique(values, return_inverse=True, return_counts=True)
    starts = numpy.cumsum(counts) - counts
    return (starts + (counts + 1) / 2.0)[inverse]


def binary_realized(*, scores: numpy.ndarray, is_positive: numpy.ndarray,
                    predicted_positive: numpy.ndarray) -> dict:
    """`cbpe_realized` in numpy alone (the bootstrap calls it many times): the same
    figures, ROC AUC by the rank-sum (Mann-Whitney) formula with tied scores averaged."""
    actual = numpy.asarray(is_positive, dtype=bool)
    predicted = numpy.asarray(predicted_positive, dtype=bool)
    n, positives = len(actual), int(actual.sum())
    tp = int((actual & predicted).sum())
    fp = int((~actual & predicted).sum())
    fn = positives - tp
    roc_auc = None
    if 0 < positives < n:
        ranks = _average_ranks(numpy.asarray(scores, dtype=float))
        negatives = n - positives
        roc_auc = _float((ranks[actual].sum() - positives * (positives + 1) / 2.0)
                         / (positives * negatives))
    return {"accuracy": _float((n - fp - fn) / n) if n else None,
            "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn), "roc_auc": roc_auc}


def _sampling_errors(realized, n: int, seed: int) -> dict:
    """{metric: std of the realized metric over bootstrap resamples of the n rows}."""
    rng = numpy.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(SAMPLING_RESAMPLES):
        for name, value in realized(rng.integers(0, n, n)).items():
            if value is not None:
                draws.setdefault(name, []).append(value)
    return {name: _float(numpy.std(values, ddof=1)) if len(values) >= 2 else None
            for name, values in draws.items()}


def cbpe_reference_build(*, scores: numpy.ndarray, is_positive: numpy.ndarray,
                         predicted_positive: numpy.ndarray, seed: int
                         ) -> EstimationReference | None:
    """The CBPE reference of a binary classifier on its validation rows: `scores` the
    positive-class probability, `is_positive` the outcomes, `predicted_positive` the
    model's own predictions. None when it cannot be built (see the module docstring)."""
    scores = numpy.asarray(scores, dtype=float)
    actual = numpy.asarray(is_positive, dtype=bool)
    predicted = numpy.asarray(predicted_positive, dtype=bool)
    n = len(scores)
    if n < MIN_REFERENCE_ROWS or actual.all() or not actual.any():
        return None
    ece = expected_calibration_error(scores, actual)
    limit = calibration_limit(n)
    objects = {}
    probability = scores
    if ece > limit:
        calibrator = calibrator_fit(scores, actual)
        objects[CALIBRATOR] = calibrator
        probability = calibrator.predict(scores)
    errors = _sampling_errors(
        lambda at: binary_realized(scores=scores[at], is_positive=actual[at],
                                   predicted_positive=predicted[at]), n, seed)
    document = {
        "format": FORMAT, "method": CBPE, "rows": n, "seed": seed,
        "calibration": {"ece": _float(ece), "max_ece": limit,
                        "calibrator": CALIBRATOR if objects else None},
        "sampling_error": {name: errors.get(name) for name in CBPE_METRICS},
        "realized": cbpe_realized(scores=scores, is_positive=actual,
                                  predicted_positive=predicted),
        "estimated": cbpe_expected(scores=scores, probability=probability,
                                   predicted_positive=predicted),
        "artifacts": sorted(objects),
    }
    return EstimationReference(document=document, objects=objects)


# --- regressors: DLE ----------------------------------------------------------------------


def dle_frame(features: pandas.DataFrame, predicted: numpy.ndarray, columns: list[dict]
              ) -> pandas.DataFrame:
    """The error models' input: `columns` ({"name", "kind": "numeric"|"categorical"}) of a
    canonical feature frame (core.ml.features.model_frame), missing categories as a
    category of their own, then the model's prediction."""
    data = {}
    for column in columns:
        values = features[column["name"]]
        if column["kind"] == "categorical":
            data[column["name"]] = [MISSING_CATEGORY if missing else str(value)
                                    for value, missing in zip(values.tolist(),
                                                              values.isna().tolist(),
                                                              strict=True)]
        else:
            data[column["name"]] = pandas.to_numeric(values, errors="coerce").astype(float
                                                                                    ).to_numpy()
    data[PREDICTION_COLUMN] = numpy.asarray(predicted, dtype=float)
    return pandas.DataFrame(data)


def _error_model(columns: list[dict], seed: int) -> Any:
    from sklearn.compose import ColumnTransformer  # noqa: PLC0415 - only to train
    from sklearn.ensemble import HistGradientBoostingRegressor  # noqa: PLC0415
    from sklearn.pipeline import Pipeline  # noqa: PLC0415
    from sklearn.preprocessing import OrdinalEncoder  # noqa: PLC0415

    categorical = [c["name"] for c in columns if c["kind"] == "categorical"]
    encode = ColumnTransformer(
        [("categories", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
          categorical)] if categorical else [],
        remainder="passthrough", verbose_feature_names_out=False)
    return Pipeline([("encode", encode), ("errors", HistGradientBoostingRegressor(
        max_iter=60, learning_rate=0.1, max_leaf_nodes=8, min_samples_leaf=10,
        l2_regularization=1.0, early_stopping=False, random_state=seed))])


def dle_row_errors(*, frame: pandas.DataFrame, absolute_model: Any, squared_model: Any
                   ) -> tuple[numpy.ndarray, numpy.ndarray]:
    """The expected absolute and squared error of each row of a `dle_frame` (at least 0)."""
    if not len(frame):
        return numpy.zeros(0), numpy.zeros(0)
    absolute = numpy.maximum(numpy.asarray(absolute_model.predict(frame), dtype=float), 0.0)
    squared = numpy.maximum(numpy.asarray(squared_model.predict(frame), dtype=float), 0.0)
    return absolute, squared


def dle_figures(*, absolute: numpy.ndarray, squared: numpy.ndarray) -> dict:
    """Expected MAE and RMSE from the rows' expected errors."""
    if not len(absolute):
        return dict.fromkeys(DLE_METRICS)
    return {"mae": _float(numpy.mean(absolute)), "rmse": _float(math.sqrt(numpy.mean(squared)))}


def dle_expected(*, frame: pandas.DataFrame, absolute_model: Any, squared_model: Any) -> dict:
    """Expected MAE and RMSE of the rows of a `dle_frame`."""
    absolute, squared = dle_row_errors(frame=frame, absolute_model=absolute_model,
                                       squared_model=squared_model)
    return dle_figures(absolute=absolute, squared=squared)


def _dle_realized(errors: numpy.ndarray) -> dict:
    return {"mae": _float(numpy.abs(errors).mean()),
            "rmse": _float(math.sqrt(numpy.mean(errors ** 2)))}


def dle_reference_build(*, features: pandas.DataFrame, columns: list[dict],
                        predicted: numpy.ndarray, actual: numpy.ndarray, seed: int
                        ) -> EstimationReference | None:
    """The DLE reference of a regressor on its validation rows: `features` canonical
    (model_frame), `columns` those the error models read, `predicted` the model's answers as
    served, `actual` the outcomes. None below MIN_REFERENCE_ROWS rows."""
    predicted = numpy.asarray(predicted, dtype=float)
    errors = numpy.asarray(actual, dtype=float) - predicted
    n = len(errors)
    if n < MIN_REFERENCE_ROWS:
        return None
    frame = dle_frame(features, predicted, columns)
    absolute_model = _error_model(columns, seed).fit(frame, numpy.abs(errors))
    squared_model = _error_model(columns, seed).fit(frame, errors ** 2)
    sampling = _sampling_errors(lambda at: _dle_realized(errors[at]), n, seed)
    document = {
        "format": FORMAT, "method": DLE, "rows": n, "seed": seed, "columns": columns,
        "sampling_error": {name: sampling.get(name) for name in DLE_METRICS},
        "realized": _dle_realized(errors),
        "estimated": dle_expected(frame=frame, absolute_model=absolute_model,
                                  squared_model=squared_model),
        "artifacts": [ABSOLUTE_ERROR_MODEL, SQUARED_ERROR_MODEL],
    }
    return EstimationReference(document=document, objects={
        ABSOLUTE_ERROR_MODEL: absolute_model, SQUARED_ERROR_MODEL: squared_model})


# --- bands --------------------------------------------------------------------------------


def with_bands(*, figures: dict, reference: dict, n: int) -> dict:
    """{metric: {"value", "lower", "upper", "method"}} for a window of n rows."""
    method = reference["method"]
    upper_limit = 1.0 if method == CBPE else math.inf
    result = {}
    for name, value in figures.items():
        std = reference.get("sampling_error", {}).get(name)
        lower = upper = None
        if value is not None and std is not None and n > 0:
            sigma = std * math.sqrt(reference["rows"] / n + 1.0)
            lower = max(0.0, value - BAND_SIGMAS * sigma)
            upper = min(upper_limit, value + BAND_SIGMAS * sigma)
        result[name] = {"value": value, "lower": lower, "upper": upper, "method": method}
    return result


# --- one entry point for training and registration ----------------------------------------


def error_model_columns(schema: dict) -> list[dict]:
    """The inputs the DLE error models read: every input feature but the personal ones
    (never logged), categorical for `category`, numeric otherwise."""
    return [{"name": feature["name"],
             "kind": "categorical" if feature["dtype"] == "category" else "numeric"}
            for feature in schema["features"]
            if feature.get("input", True) and not feature.get("pii")]


def reference_build(*, task: str, estimator: Any, features: Any, target: Any,
                    canonical: pandas.DataFrame, schema: dict, seed: int,
                    lower_bound: float | None = None) -> EstimationReference | None:
    """The estimation reference of a fitted model on its validation rows: `features` as the
    estimator takes them, `canonical` the same rows through core.ml.features.model_frame,
    `target` their outcomes. None for multiclass and anomaly models (not estimated) and
    where the reference cannot be built."""
    target = numpy.asarray(target)
    if task == BINARY:
        positive = estimator.classes_[1]
        return cbpe_reference_build(
            scores=numpy.asarray(estimator.predict_proba(features), dtype=float)[:, 1],
            is_positive=target == positive,
            predicted_positive=numpy.asarray(estimator.predict(features)) == positive,
            seed=seed)
    if task == REGRESSION:
        predicted = numpy.asarray(estimator.predict(features), dtype=float)
        if lower_bound is not None:
            predicted = numpy.maximum(predicted, lower_bound)
        return dle_reference_build(features=canonical.reset_index(drop=True),
                                   columns=error_model_columns(schema), predicted=predicted,
                                   actual=target.astype(float), seed=seed)
    return None
