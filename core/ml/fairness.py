"""Fairness audit of a model's predictions per protected attribute (docs/monitoring.md#fairness).

Pure: numpy and pandas only, no database access (the default minimum group size is read
from `settings.FAIRNESS_MIN_GROUP_SIZE`). The caller passes the protected attributes' group
values, the true labels and the model's predictions for the same rows: the validation
split when training, the labelled rows of the data for `register_model`.

What is measured, per task:

- binary_classification: per group the *selection rate* (share of predictions equal to
  the positive class) and the *true-positive rate* (share of the group's truly positive
  rows predicted positive; None when the group has no positive row or there are no
  labels). Per attribute: demographic parity difference (highest selection rate minus
  lowest) and ratio (lowest / highest; 1.0 when the highest is 0), and the equal
  opportunity difference (highest TPR minus lowest, over the groups that have a TPR).
  The positive class is `positive_label`; by default scikit-learn's convention: 1 for
  0/1 labels (True for False/True), else the greater of the two labels (`classes_[1]`).
- anomaly_detection: the selection rate is the share flagged as anomalies
  (prediction == -1); the detector is unsupervised, so there is no true-positive rate and
  no equal opportunity difference.
- regression: per group the mean prediction (and the mean actual value over the group's
  labelled rows). The parity difference and ratio are taken over the mean predictions
  (lowest mean / highest). A ratio of means only means something for outputs that
  cannot be negative (counts, amounts): when a compared group's mean prediction is below
  zero the ratio is None, with a note; the difference is still reported.
- multiclass_classification: there is no single positive class, and one-vs-rest parity
  on every class would bury the report in figures, so no parity is computed; per group
  the accuracy over its labelled rows is reported, and per attribute the accuracy
  difference (highest minus lowest). The gate treats multiclass attributes as not
  assessable (see validation.fairness_gate).

Groups: every distinct value of the attribute is a group, named by its string form
(integral floats as integers, so a 0/1 column read with gaps gives "0" and "1", not
"0.0"); missing values (None, NaN, NA) form the group "(missing)". Continuous attributes
(age, income) should be binned into bands before the audit: each distinct value is its
own group. Groups with fewer rows than the minimum group size are reported with
`"small": true` and left out of the differences and ratios (and hence the gate). A figure
that needs two groups (difference, ratio) is None when fewer than two groups qualify,
with a note saying why.

JSON shape (strict JSON: plain floats, ints, str keys, None for undefined figures):

    {"task": "binary_classification",
     "positive_label": 1,                      # binary only, else None
     "parity_basis": "selection_rate" | "mean_prediction" | None,
     "min_group_size": 20,
     "rows": 480,
     "attributes": {
        "gender": {
           "groups": {
              "f": {"n": 240, "small": false,
                    "selection_rate": 0.41, "positives": 80, "true_positive_rate": 0.9},
              ...},
           "groups_compared": 2,
           "demographic_parity_difference": 0.08,
           "demographic_parity_ratio": 0.84,
           "equal_opportunity_difference": 0.05,
           "note": null}}}

Group fields by task: binary `selection_rate`, `positives`, `true_positive_rate`;
anomaly `selection_rate`; regression `mean_prediction`, `mean_actual`; multiclass
`labelled`, `accuracy`. Attribute fields: the three parity figures above for every task
(None where they do not apply), plus `accuracy_difference` for multiclass. With no
protected attributes `attributes` is empty.
"""

import math
from collections.abc import Mapping
from typing import Any

import numpy
import pandas
from django.conf import settings

from core.errors import ValidationError
from core.ml.kinds import ANOMALY, ANOMALY_LABEL, BINARY, MULTICLASS, REGRESSION, TASK_KINDS, TASKS

MISSING = "(missing)"


def _float(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _json_label(value: Any) -> Any:
    if isinstance(value, numpy.generic):
        value = value.item()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def _group_name(value: Any) -> str:
    if value is None or value is pandas.NA or value is pandas.NaT:
        return MISSING
    if isinstance(value, numpy.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return MISSING
        if value.is_integer():
            return str(int(value))
    return str(value)


def _group_names(values: Any, rows: int, attribute: str) -> numpy.ndarray:
    """The group name of every row (factorised first: one conversion per distinct value)."""
    series = pandas.Series(numpy.asarray(values, dtype=object))
    if len(series) != rows:
        raise ValidationError(
            f"protected attribute {attribute!r} has {len(series)} values for {rows} predictions")
    codes, uniques = pandas.factorize(series, use_na_sentinel=True)
    names = numpy.array([_group_name(u) for u in uniques] + [MISSING], dtype=object)
    return names[codes]  # code -1 (missing) picks the last entry


def _positive_label(y_true: pandas.Series | None, y_pred: pandas.Series, given: Any) -> Any:
    if given is not None:
        return given
    labels = set(y_pred.dropna().tolist())
    if y_true is not None:
        labels |= set(y_true.dropna().tolist())
    if labels <= {0, 1}:
        booleans = labels and all(isinstance(label, (bool, numpy.bool_)) for label in labels)
        return True if booleans else 1
    if len(labels) > 2:
        raise ValidationError(
            f"binary fairness audit needs two labels; got {len(labels)}: pass positive_label")
    return sorted(labels)[-1]


def _group_figures(task: str, at: numpy.ndarray, y_true: pandas.Series | None,
                   y_pred: pandas.Series, positive: Any) -> dict:
    """The figures of the group whose rows are at positions `at`."""
    pred = y_pred.iloc[at].reset_index(drop=True)
    truth = y_true.iloc[at].reset_index(drop=True) if y_true is not None else None
    labelled = truth.notna() if truth is not None else pandas.Series(False, index=pred.index)
    if task in (BINARY, ANOMALY):
        selected = pred == (positive if task == BINARY else ANOMALY_LABEL)
        figures = {"selection_rate": _float(selected.mean())}
        if task == BINARY:
            positives = labelled & (truth == positive) if truth is not None else labelled
            figures["positives"] = int(positives.sum())
            figures["true_positive_rate"] = (
                _float(selected[positives].mean()) if positives.any() else None)
        return figures
    if task == REGRESSION:
        actual = truth[labelled].astype(float) if truth is not None else None
        return {"mean_prediction": _float(pred.astype(float).mean()),
                "mean_actual": _float(actual.mean()) if labelled.any() else None}
    count = int(labelled.sum())
    accuracy = _float((pred[labelled] == truth[labelled]).mean()) if count else None
    return {"labelled": count, "accuracy": accuracy}


def _spread(values: list[float]) -> float | None:
    return _float(max(values) - min(values)) if len(values) >= 2 else None


def _attribute(task: str, *, names: numpy.ndarray, y_true: pandas.Series | None,
               y_pred: pandas.Series, positive: Any, min_group_size: int) -> dict:
    positions = pandas.Series(names, dtype=object).groupby(names, sort=False).indices
    groups: dict[str, dict] = {}
    for name in sorted(positions):
        at = positions[name]
        groups[name] = {"n": len(at), "small": len(at) < min_group_size,
                        **_group_figures(task, at, y_true, y_pred, positive)}
    compared = {name: g for name, g in groups.items() if not g["small"]}
    result = {"groups": groups, "groups_compared": len(compared),
              "demographic_parity_difference": None, "demographic_parity_ratio": None,
              "equal_opportunity_difference": None, "note": None}
    if len(compared) < 2:
        result["note"] = (f"fewer than two groups of at least {min_group_size} rows to compare")
    if task == MULTICLASS:
        result["accuracy_difference"] = _spread(
            [g["accuracy"] for g in compared.values() if g["accuracy"] is not None])
        if len(compared) >= 2:
            result["note"] = "no parity ratio for multiclass classification (no positive class)"
        return result
    basis = TASK_KINDS[task].parity_basis
    levels = [g[basis] for g in compared.values() if g[basis] is not None]
    result["demographic_parity_difference"] = _spread(levels)
    if len(levels) >= 2:
        highest, lowest = max(levels), min(levels)
        if lowest < 0:
            result["note"] = ("a group's mean prediction is below zero: a ratio of means is "
                              "not meaningful, see the difference")
        else:
            result["demographic_parity_ratio"] = 1.0 if highest == 0 else _float(lowest / highest)
    if task == BINARY:
        result["equal_opportunity_difference"] = _spread(
            [g["true_positive_rate"] for g in compared.values()
             if g["true_positive_rate"] is not None])
    return result


def fairness_report(
    *, task: str, protected: Mapping[str, Any], y_true: Any, y_pred: Any,
    positive_label: Any = None, min_group_size: int | None = None,
) -> dict:
    """Per protected attribute and group: the figures described in the module docstring.

    `protected` maps each attribute's name to its group values, row-aligned with
    `y_pred`; `y_true` may be None (no labels: no true-positive rates, accuracies or mean
    actuals); its missing entries count as unlabelled rows.
    """
    if task not in TASKS:
        raise ValidationError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
    if min_group_size is None:
        min_group_size = int(settings.FAIRNESS_MIN_GROUP_SIZE)
    predictions = pandas.Series(numpy.asarray(y_pred, dtype=object).ravel())
    rows = len(predictions)
    truth = None
    if y_true is not None:
        truth = pandas.Series(numpy.asarray(y_true, dtype=object).ravel())
        if len(truth) != rows:
            raise ValidationError(f"{len(truth)} labels for {rows} predictions")
        if task == REGRESSION:
            truth = pandas.to_numeric(truth, errors="coerce")
    if task == REGRESSION:
        predictions = pandas.to_numeric(predictions, errors="coerce").astype(float)
    positive = _positive_label(truth, predictions, positive_label) if task == BINARY else None
    attributes = {
        str(name): _attribute(task, names=_group_names(values, rows, str(name)), y_true=truth,
                              y_pred=predictions, positive=positive,
                              min_group_size=min_group_size)
        for name, values in protected.items()
    }
    return {
        "task": task,
        "positive_label": _json_label(positive),
        "parity_basis": TASK_KINDS[task].parity_basis,
        "min_group_size": min_group_size,
        "rows": rows,
        "attributes": attributes,
    }
