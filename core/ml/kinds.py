"""Task kinds: what every app needs to know about a kind of model, defined once.

A model's task (its `MLModel.task`) is one of the names below. For each kind:

- `primary_metric`: the validation metric the validation gate compares with production
  (docs/training.md#validation-gate); None when no metric ranks candidates (anomaly
  detection: contamination and score quantiles describe the data, not quality);
- `live_metric`: the per-prediction figure an A/B test compares between arms
  (docs/monitoring.md#ab-tests): absolute error for regression, correctness for
  classifiers, none for anomaly detection (no labels judge it);
- `answer_fields`: what a prediction carries besides `value` (docs/api.md#predict);
- `parity_basis`: the per-group figure a fairness audit compares (docs/training.md#fairness-gate);
  None when the kind has no single one (multiclass).

Which direction is better for each metric is `HIGHER_IS_BETTER`; metrics not listed
(anomaly contamination and score quantiles, counts) have no better direction.
"""

from dataclasses import dataclass

from core.errors import ValidationError

REGRESSION = "regression"
BINARY = "binary_classification"
MULTICLASS = "multiclass_classification"
ANOMALY = "anomaly_detection"

# What an sklearn outlier detector's `predict` gives for a flagged row (normal rows: 1).
ANOMALY_LABEL = -1

HIGHER_IS_BETTER = {"r2": True, "mae": False, "rmse": False, "accuracy": True,
                    "precision": True, "recall": True, "f1": True, "roc_auc": True,
                    "brier": False}


@dataclass(frozen=True)
class TaskKind:
    name: str
    primary_metric: str | None
    live_metric: str | None
    answer_fields: tuple[str, ...]
    parity_basis: str | None

    @property
    def primary_higher_is_better(self) -> bool | None:
        return HIGHER_IS_BETTER[self.primary_metric] if self.primary_metric else None

    @property
    def live_higher_is_better(self) -> bool | None:
        return HIGHER_IS_BETTER[self.live_metric] if self.live_metric else None

    @property
    def is_classifier(self) -> bool:
        return "probabilities" in self.answer_fields


TASK_KINDS: dict[str, TaskKind] = {kind.name: kind for kind in (
    TaskKind(REGRESSION, primary_metric="r2", live_metric="mae", answer_fields=(),
             parity_basis="mean_prediction"),
    TaskKind(BINARY, primary_metric="roc_auc", live_metric="accuracy",
             answer_fields=("probabilities",), parity_basis="selection_rate"),
    TaskKind(MULTICLASS, primary_metric="f1", live_metric="accuracy",
             answer_fields=("probabilities",), parity_basis=None),
    TaskKind(ANOMALY, primary_metric=None, live_metric=None,
             answer_fields=("anomaly_score",), parity_basis="selection_rate"),
)}
TASKS = tuple(TASK_KINDS)

# task -> (metric name, higher is better), or None when no metric ranks candidates.
PRIMARY_METRIC: dict[str, tuple[str, bool] | None] = {
    kind.name: (kind.primary_metric, kind.primary_higher_is_better) if kind.primary_metric
    else None
    for kind in TASK_KINDS.values()
}


def task_kind(task: str) -> TaskKind:
    try:
        return TASK_KINDS[task]
    except KeyError:
        raise ValidationError(f"unknown task {task!r}; one of {', '.join(TASKS)}",
                              details={"task": task}) from None
