"""What a model answers, read the same way everywhere (pure: no database access).

- `anomaly_scores`: an outlier detector's score (lower is more anomalous);
- `model_outputs`: the output drift monitoring profiles, per task kind
  (docs/monitoring.md#reference-profile);
- `outputs_bounded`: regression values at or above the version's lower bound (a count
  target's 0, docs/training.md#count-targets);
- `class_label`: a class label given as a string (a probabilities key, an outcome posted
  as text) in the type of the model's own labels.
"""

from typing import Any

import numpy

from core.ml.kinds import ANOMALY, BINARY, MULTICLASS
from core.ml.profile import CATEGORICAL, NUMERIC


def anomaly_scores(*, estimator: Any, features: Any) -> numpy.ndarray:
    """The anomaly score: `decision_function` when the detector has one, else `score_samples`.

    Lower means more anomalous for every sklearn outlier detector.
    """
    if hasattr(estimator, "decision_function"):
        return numpy.asarray(estimator.decision_function(features), dtype=float)
    return numpy.asarray(estimator.score_samples(features), dtype=float)


def model_outputs(*, task: str, estimator: Any, features: Any) -> tuple[numpy.ndarray, str]:
    """The model's output as drift monitoring profiles it (docs/monitoring.md#reference-profile),
    and its kind.

    Regression: the value; binary: the positive-class probability; multiclass: the
    predicted class (categorical); anomaly detection: the anomaly score.
    """
    if task == BINARY:
        return numpy.asarray(estimator.predict_proba(features))[:, 1].astype(float), NUMERIC
    if task == MULTICLASS:
        return numpy.asarray(estimator.predict(features)), CATEGORICAL
    if task == ANOMALY:
        return anomaly_scores(estimator=estimator, features=features), NUMERIC
    return numpy.asarray(estimator.predict(features), dtype=float), NUMERIC


def outputs_bounded(values: numpy.ndarray, *, lower: float | None) -> numpy.ndarray:
    """Regression values as served: never below `lower` (None: unbounded, unchanged)."""
    return values if lower is None else numpy.maximum(values, lower)


def class_label(key: str, like: Any) -> Any:
    """A class label given as its string (a probabilities key) in the type of the model's
    own labels (`like`, a label the model gave), as feedback stores the actual."""
    if isinstance(like, bool):
        return key == "True"
    if isinstance(like, int):
        return int(key)
    if isinstance(like, float):
        return float(key)
    return key
