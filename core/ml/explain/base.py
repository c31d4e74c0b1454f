"""The explanation contract every path shares: the explainer interface (`ModelExplainer`,
whose `explain` checks the request and builds one explanation per row), the input features
it explains (`InputFeature`, `input_features`), one row's explanation and its additivity
check (`explanation_row`), the constants of the contract (MAX_INSTANCES, the output spaces,
the method names) and the errors. Pure: no database, no Django.

`ModelExplainer.explain` turns up to MAX_INSTANCES rows of the canonical input frame
(core.ml.features.model_frame) into one explanation each:

    {"output_space": "raw" | "log_odds", "base_value", "value",
     "contributions": {input feature: float},             # every input feature, schema order
     "top_positive": [{"feature", "contribution"}],       # <= 3, largest first
     "top_negative": [{"feature", "contribution"}],       # <= 3, most negative first
     "probability": float}                                # binary classification only

|base_value + sum(contributions) - value| <= 1e-6 * max(1, |value|) is checked on every
row before anything is returned; a violation raises ExplanationInconsistentError.

`value` is computed by the model, never by SHAP: regression `predict` ("raw"); binary
classification the log-odds of `classes_[1]` ("log_odds", with `probability` =
`predict_proba[:, 1]`); anomaly detection the anomaly score (`decision_function`, else
`score_samples`, as core.ml.outputs.anomaly_scores; "raw"). Multiclass models
are refused (ExplanationUnsupportedError): no class's log-odds are additive over a softmax.
"""

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy
import pandas

from core.errors import ApplicationError, ValidationError
from core.ml.kinds import BINARY

MAX_INSTANCES = 100
TOP_CONTRIBUTIONS = 3
ADDITIVITY_TOLERANCE = 1e-6

TREE, TREE_CALIBRATED, MODEL_AGNOSTIC = "tree", "tree_calibrated", "model_agnostic"
RAW, LOG_ODDS = "raw", "log_odds"
NUMERIC_DTYPES = ("float", "int", "bool")  # float64 in the canonical frame


class ExplanationUnsupportedError(ValidationError, ValueError):
    """The model or the request cannot be explained (multiclass, no background, ...)."""

    code = "explanation_unsupported"


class ExplanationInconsistentError(ApplicationError, ArithmeticError):
    """The contributions do not add up to the model's value: a bug, never a response."""

    code = "explanation_inconsistent"
    http_status = 500


@dataclass(frozen=True)
class InputFeature:
    name: str
    dtype: str

    @property
    def numeric(self) -> bool:
        return self.dtype in NUMERIC_DTYPES


def input_features(schema: dict) -> tuple[InputFeature, ...]:
    return tuple(InputFeature(name=f["name"], dtype=f["dtype"])
                 for f in schema["features"] if f.get("input", True))


def explanation_row(*, output_space: str, base_value: float, value: float,
                    contributions: Any, features: list[str],
                    probability: float | None = None) -> dict:
    """One row's JSON-safe explanation, after checking that it adds up."""
    numbers = [float(c) for c in contributions]
    total = base_value + sum(numbers)
    if (not all(math.isfinite(x) for x in (base_value, value, total))
            or abs(total - value) > ADDITIVITY_TOLERANCE * max(1.0, abs(value))):
        raise ExplanationInconsistentError(
            f"contributions do not add up: base {base_value!r} + contributions "
            f"{sum(numbers)!r} = {total!r}, but the model's value is {value!r}",
            details={"base_value": base_value, "value": value, "sum": total})
    # sorted() is stable: ties keep schema order.
    positive = sorted((i for i, c in enumerate(numbers) if c > 0), key=lambda i: -numbers[i])
    negative = sorted((i for i, c in enumerate(numbers) if c < 0), key=lambda i: numbers[i])
    row = {
        "output_space": output_space, "base_value": base_value, "value": value,
        "contributions": dict(zip(features, numbers, strict=True)),
        "top_positive": [{"feature": features[i], "contribution": numbers[i]}
                         for i in positive[:TOP_CONTRIBUTIONS]],
        "top_negative": [{"feature": features[i], "contribution": numbers[i]}
                         for i in negative[:TOP_CONTRIBUTIONS]],
    }
    if probability is not None:
        row["probability"] = probability
    return row


def explanation_bounded(row: dict, *, lower: float | None) -> dict:
    """A regression row as served by a version never answering below `lower` (a count
    target's 0, docs/training.md#count-targets; None: no bound).

    A row whose value is below the bound gets the answer as `value` and a `bound`
    (`lower`, `raw_value`: the model's own value, which the contributions keep adding up
    to, and `adjustment` = value - raw_value): base_value + sum(contributions) +
    adjustment = value. Any other row is returned as it is.
    """
    if lower is None or not row["value"] < lower:
        return row
    raw = row["value"]
    return {**row, "value": lower,
            "bound": {"lower": lower, "raw_value": raw, "adjustment": lower - raw}}


@dataclass
class ModelExplainer(ABC):
    """Built once per loaded version by `explainer_build`; then `explain` is cheap."""

    task: str
    features: tuple[InputFeature, ...]
    method: str = field(init=False, default="")

    @property
    def output_space(self) -> str:
        return LOG_ODDS if self.task == BINARY else RAW

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.features]

    @property
    def takes_columns(self) -> bool:
        """Whether `explain` may be given the canonical columns as a mapping of name to
        array or list instead of a DataFrame (core.ml.compiled.Columns)."""
        return False

    def explain(self, frame: pandas.DataFrame | Mapping[str, Any]) -> list[dict]:
        """One explanation per row of the canonical input frame (at most MAX_INSTANCES);
        where `takes_columns`, the frame's columns as a mapping will do."""
        is_frame = isinstance(frame, pandas.DataFrame)
        if not (is_frame or self.takes_columns):
            raise TypeError(f"{type(self).__name__} explains a DataFrame")
        rows = len(frame) if is_frame else len(next(iter(frame.values()), ()))
        if rows > MAX_INSTANCES:
            raise ExplanationUnsupportedError(
                f"at most {MAX_INSTANCES} instances can be explained at once; got {rows}",
                details={"instances": rows, "maximum": MAX_INSTANCES})
        names = frame.columns if is_frame else frame.keys()
        missing = [name for name in self.feature_names if name not in names]
        if missing:
            raise ExplanationUnsupportedError(
                f"the frame lacks input features: {', '.join(missing)}",
                details={"missing": missing})
        if rows == 0:
            return []
        inputs = (frame[self.feature_names] if is_frame
                  else {name: frame[name] for name in self.feature_names})
        base, values, contributions, probabilities = self._explain(inputs)
        return [explanation_row(
            output_space=self.output_space, base_value=float(base[i]), value=float(values[i]),
            contributions=contributions[i], features=self.feature_names,
            probability=None if probabilities is None else float(probabilities[i]),
        ) for i in range(rows)]

    @abstractmethod
    def _explain(self, frame: pandas.DataFrame) -> tuple[numpy.ndarray, numpy.ndarray,
                                                         numpy.ndarray, numpy.ndarray | None]:
        """(base values (n,), values (n,), contributions (n, features), probabilities)."""
