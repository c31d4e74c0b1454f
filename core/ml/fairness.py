"""Fairness audit of a model's predictions per protected attribute (docs/monitoring.md#fairness).

Pure: numpy and pandas only, no database access (the default minimum group size is read
from `settings.FAIRNESS_MIN_GROUP_SIZE`). The caller passes the protected attributes' group
values, the true labels and the model's predictions for the same rows: the validation
split when training, the labelled rows of the data for `register_model`.

Every per-group figure is computed by Fairlearn (`fairlearn.metrics.MetricFrame`, with
its `selection_rate`, `true_positive_rate`, `false_positive_rate` and `count` and
scikit-learn's `accuracy_score`), and every between-groups figure is that MetricFrame's
`difference()` or `ratio()` over the groups compared (tests/core/ml/test_fairness.py checks
the figures against MetricFrame on the same rows). What is measured, per task:

- binary_classification: per group the *selection rate* (share of predictions equal to
  the positive class), and over its labelled rows the *true-positive rate* (share of the
  truly positive rows predicted positive; None when the group has no positive row or
  there are no labels), the *false-positive rate* (share of the truly negative rows
  predicted positive; None without negatives) and the *accuracy*. Per attribute:
  demographic parity difference (highest selection rate minus lowest) and ratio (lowest /
  highest; 1.0 when the highest is 0), the equal opportunity difference (highest TPR minus
  lowest, over the groups that have a TPR), the equalized odds difference (the greater of
  the TPR and FPR differences, as Fairlearn's `equalized_odds_difference`) and the error
  rate difference (highest error rate, 1 - accuracy, minus lowest: error-rate parity).
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

Intersectional groups: with two or more protected attributes, `intersections` holds the
same figures for each pair of attributes, its groups named by both values ("f × north"),
so that a group that is small or disadvantaged only in combination is seen.

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
                    "selection_rate": 0.41, "positives": 80, "true_positive_rate": 0.9,
                    "negatives": 150, "false_positive_rate": 0.12, "labelled": 230,
                    "accuracy": 0.87},
              ...},
           "groups_compared": 2,
           "demographic_parity_difference": 0.08,
           "demographic_parity_ratio": 0.84,
           "equal_opportunity_difference": 0.05,
           "equalized_odds_difference": 0.05,
           "error_rate_difference": 0.03,
           "note": null}},
     "intersections": {"gender × region": {...as an attribute...}}}  # two or more attributes

Group fields by task: binary `selection_rate`, `positives`, `true_positive_rate`,
`negatives`, `false_positive_rate`, `labelled`, `accuracy`; anomaly `selection_rate`;
regression `mean_prediction`, `mean_actual`; multiclass `labelled`, `accuracy`. Attribute
fields: the parity figures above for every task (None where they do not apply), plus
`accuracy_difference` for multiclass. With no protected attributes `attributes` is empty.
Reports stored before Fairlearn lack the binary FPR, accuracy, equalized odds and error
rate figures and `intersections`; readers take their absence as "not computed".
"""

import functools
import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy
import pandas
from django.conf import settings
from fairlearn.metrics import MetricFrame, count, false_positive_rate, true_positive_rate
from sklearn import metrics as skm

from core.errors import ValidationError
from core.ml.kinds import ANOMALY, ANOMALY_LABEL, BINARY, MULTICLASS, REGRESSION, TASK_KINDS, TASKS

MISSING = "(missing)"
INTERSECTION = " × "


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


def _selection_rate(y_true, y_pred) -> float:
    """Share of rows predicted positive (y_pred already 1 for the positive class)."""
    return float(numpy.mean(y_pred)) if len(y_pred) else float("nan")


def _mean_prediction(y_true, y_pred) -> float:
    return float(numpy.mean(y_pred)) if len(y_pred) else float("nan")


def _mean_actual(y_true, y_pred) -> float:
    return float(numpy.mean(y_true)) if len(y_true) else float("nan")


def _by_group(metrics: dict, *, y_true, y_pred, names: numpy.ndarray) -> pandas.DataFrame:
    """Fairlearn's MetricFrame of `metrics` per group (one row per group name); no rows,
    no groups (MetricFrame needs at least one row)."""
    if not len(names):
        return pandas.DataFrame(columns=list(metrics), dtype=float)
    frame = MetricFrame(metrics=metrics, y_true=numpy.asarray(y_true),
                        y_pred=numpy.asarray(y_pred),
                        sensitive_features=pandas.Series(names, name="group", dtype=object))
    return frame.by_group


def _label_figures(task: str, *, names, truth, predicted, labelled, positive) -> pandas.DataFrame:
    """Per group, over its labelled rows: the figures that need the truth."""
    at = labelled.to_numpy()
    if not at.any():
        return pandas.DataFrame()
    if task == BINARY:
        truth01 = (truth[labelled] == positive).to_numpy(dtype=int)
        predicted01 = (predicted[labelled] == positive).to_numpy(dtype=int)
        frame = _by_group({"labelled": count, "true_positive_rate": true_positive_rate,
                           "false_positive_rate": false_positive_rate,
                           "accuracy": skm.accuracy_score},
                          y_true=truth01, y_pred=predicted01, names=names[at])
        # Counts of the truth per group (no metric of Fairlearn's: a sum).
        frame["positives"] = pandas.Series(truth01).groupby(names[at]).sum()
        frame["negatives"] = frame["labelled"] - frame["positives"]
        # No positive (negative) row: the rate is undefined, not 0.
        frame.loc[frame["positives"] == 0, "true_positive_rate"] = numpy.nan
        frame.loc[frame["negatives"] == 0, "false_positive_rate"] = numpy.nan
        return frame
    if task == REGRESSION:
        return _by_group({"mean_actual": _mean_actual},
                         y_true=truth[labelled].to_numpy(dtype=float),
                         y_pred=predicted[labelled].to_numpy(dtype=float), names=names[at])
    return _by_group({"labelled": count, "accuracy": skm.accuracy_score},
                     y_true=truth[labelled].astype(str).to_numpy(),
                     y_pred=predicted[labelled].astype(str).to_numpy(), names=names[at])


def _group_table(task: str, *, names: numpy.ndarray, y_true: pandas.Series | None,
                 y_pred: pandas.Series, positive: Any) -> pandas.DataFrame:
    """One row per group with every figure of its task (NaN where undefined)."""
    if task in (BINARY, ANOMALY):
        flagged = (y_pred == (positive if task == BINARY else ANOMALY_LABEL)).to_numpy(dtype=int)
        table = _by_group({"n": count, "selection_rate": _selection_rate},
                          y_true=flagged, y_pred=flagged, names=names)
    elif task == REGRESSION:
        values = y_pred.to_numpy(dtype=float)
        table = _by_group({"n": count, "mean_prediction": _mean_prediction},
                          y_true=values, y_pred=values, names=names)
    else:
        table = _by_group({"n": count}, y_true=numpy.zeros(len(names)),
                          y_pred=numpy.zeros(len(names)), names=names)
    if task == ANOMALY or y_true is None:
        labelled = pandas.Series(False, index=y_pred.index)
    else:
        labelled = y_true.notna()
    labels = _label_figures(task, names=names, truth=y_true, predicted=y_pred,
                            labelled=labelled, positive=positive)
    table = table.join(labels, how="left") if len(labels.columns) else table
    if task == BINARY:
        for column in ("positives", "negatives", "labelled"):
            table[column] = (table[column].fillna(0) if column in table
                             else pandas.Series(0, index=table.index))
        for column in ("true_positive_rate", "false_positive_rate", "accuracy"):
            if column not in table:
                table[column] = numpy.nan
    elif task == MULTICLASS:
        table["labelled"] = table["labelled"].fillna(0) if "labelled" in table else 0
        if "accuracy" not in table:
            table["accuracy"] = numpy.nan
    elif task == REGRESSION and "mean_actual" not in table:
        table["mean_actual"] = numpy.nan
    return table


# The group figures of each task, in the report's order.
GROUP_FIELDS = {
    BINARY: ("selection_rate", "positives", "true_positive_rate", "negatives",
             "false_positive_rate", "labelled", "accuracy"),
    ANOMALY: ("selection_rate",),
    REGRESSION: ("mean_prediction", "mean_actual"),
    MULTICLASS: ("labelled", "accuracy"),
}
_COUNTS = {"positives", "negatives", "labelled"}


def _json_figure(name: str, value: Any) -> Any:
    if name in _COUNTS:
        return int(value)
    return None if value is None or pandas.isna(value) else _float(value)


def _spread(values: list[float]) -> float | None:
    return _float(max(values) - min(values)) if len(values) >= 2 else None


def _attribute(task: str, *, names: numpy.ndarray, y_true: pandas.Series | None,
               y_pred: pandas.Series, positive: Any, min_group_size: int) -> dict:
    table = _group_table(task, names=names, y_true=y_true, y_pred=y_pred, positive=positive)
    groups: dict[str, dict] = {}
    for name in sorted(table.index):
        row = table.loc[name]
        groups[name] = {"n": int(row["n"]), "small": int(row["n"]) < min_group_size,
                        **{field: _json_figure(field, row[field])
                           for field in GROUP_FIELDS[task]}}
    compared = table.loc[[name for name, g in groups.items() if not g["small"]]]
    result = {"groups": groups, "groups_compared": len(compared),
              "demographic_parity_difference": None, "demographic_parity_ratio": None,
              "equal_opportunity_difference": None, "note": None}
    if len(compared) < 2:
        result["note"] = (f"fewer than two groups of at least {min_group_size} rows to compare")
    if task == MULTICLASS:
        result["accuracy_difference"] = _between(compared["accuracy"])
        if len(compared) >= 2:
            result["note"] = "no parity ratio for multiclass classification (no positive class)"
        return result
    basis = TASK_KINDS[task].parity_basis
    levels = compared[basis].dropna()
    result["demographic_parity_difference"] = _between(levels)
    if len(levels) >= 2:
        highest, lowest = float(levels.max()), float(levels.min())
        if lowest < 0:
            result["note"] = ("a group's mean prediction is below zero: a ratio of means is "
                              "not meaningful, see the difference")
        else:
            result["demographic_parity_ratio"] = 1.0 if highest == 0 else _float(lowest / highest)
    if task == BINARY:
        tpr = _between(compared["true_positive_rate"])
        fpr = _between(compared["false_positive_rate"])
        result["equal_opportunity_difference"] = tpr
        result["equalized_odds_difference"] = (None if tpr is None or fpr is None
                                               else max(tpr, fpr))
        result["error_rate_difference"] = _between(1 - compared["accuracy"])
    return result


def _between(column: pandas.Series) -> float | None:
    """Highest minus lowest over the groups that have the figure (MetricFrame's
    `difference()` between groups); None with fewer than two."""
    values = column.dropna()
    return _float(values.max() - values.min()) if len(values) >= 2 else None


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
    names = {str(name): _group_names(values, rows, str(name))
             for name, values in protected.items()}
    audit = functools.partial(_attribute, task, y_true=truth, y_pred=predictions,
                              positive=positive, min_group_size=min_group_size)
    report = {
        "task": task,
        "positive_label": _json_label(positive),
        "parity_basis": TASK_KINDS[task].parity_basis,
        "min_group_size": min_group_size,
        "rows": rows,
        "attributes": {name: audit(names=groups) for name, groups in names.items()},
    }
    if len(names) >= 2:
        report["intersections"] = {
            f"{first}{INTERSECTION}{second}": audit(names=numpy.array(
                [f"{a}{INTERSECTION}{b}" for a, b in zip(names[first], names[second],
                                                        strict=True)], dtype=object))
            for first, second in itertools.combinations(sorted(names), 2)}
    return report
