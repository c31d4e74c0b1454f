"""The tree paths ("tree" and "tree_calibrated"): SHAP's TreeExplainer on the tree model at
the end of a Pipeline, where it explains the model's value exactly, with the encoded
columns' contributions summed back to the input features they came from
(`TreeModelExplainer`, `encoded_column_features`). `_tree_explainer` builds one, or returns
None when the model must take the model-agnostic path; shap is imported only there.

- "tree": a Pipeline of one ColumnTransformer and a tree model that SHAP's TreeExplainer
  explains exactly in the output space (gradient boosting, random forests, extra trees,
  decision trees; classifiers only where the raw output is the log-odds: binary
  GradientBoostingClassifier with log loss, binary HistGradientBoostingClassifier).
  TreeExplainer (`model_output="raw"`, tree-path-dependent: no background) explains the
  encoded columns; each column's value goes to the input feature it came from. That
  mapping is read from the fitted ColumnTransformer, not parsed from names: each
  transformer's output slice (`output_indices_`) belongs to its input columns; a
  OneHotEncoder's slice is split by its `categories_` lengths (less a dropped category,
  infrequent ones counted once); a one-column transformer's outputs all belong to that
  column; any other must keep its columns (`get_feature_names_out` a subset of its
  inputs). Preprocessing that cannot be traced takes the model-agnostic path.
- "tree_calibrated": the same under CalibratedClassifierCV(method="sigmoid") holding a
  single calibrated classifier (ensemble=False). sklearn's _SigmoidCalibration gives
  p = expit(-(a * f + b)) for the base model's log-odds f, so the calibrated log-odds are
  -(a * f + b): contributions are the base model's SHAP values times -a, the base value
  is -(a * base + b). The convention is checked on every row: expit(value) must be the
  served probability.
"""

from dataclasses import dataclass
from typing import Any

import numpy
from scipy import sparse
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeRegressor

from core.ml.compiled import CompiledModel
from core.ml.explain.base import (
    TREE,
    TREE_CALIBRATED,
    ExplanationInconsistentError,
    InputFeature,
    ModelExplainer,
)
from core.ml.kinds import BINARY, REGRESSION

# expit(value) must match the served probability this closely on the tree paths.
PROBABILITY_TOLERANCE = 1e-9
TREE_REGRESSORS = (GradientBoostingRegressor, HistGradientBoostingRegressor,
                   RandomForestRegressor, ExtraTreesRegressor, DecisionTreeRegressor)
TREE_CLASSIFIERS = (GradientBoostingClassifier, HistGradientBoostingClassifier)


# --- Tree paths ---------------------------------------------------------------------------


@dataclass
class TreeModelExplainer(ModelExplainer):
    """TreeExplainer on the last step of a Pipeline, summed back to input features."""

    preprocessing: Any = None  # fitted: canonical frame -> encoded columns
    model: Any = None  # the Pipeline's last step (the calibrated classifier, if any)
    tree_model: Any = None  # what TreeExplainer explains
    shap_explainer: Any = None
    encoded_columns: tuple[str, ...] = ()
    column_features: tuple[str, ...] = ()  # the input feature of each encoded column
    # Explained value = scale * tree model's raw output + shift (1, 0 unless calibrated).
    scale: float = 1.0
    shift: float = 0.0

    def __post_init__(self) -> None:
        self.method = TREE_CALIBRATED if isinstance(self.model, CalibratedClassifierCV) else TREE
        self.base_value = (self.scale * float(numpy.ravel(self.shap_explainer.expected_value)[0])
                           + self.shift)
        index = {name: j for j, name in enumerate(self.feature_names)}
        # (encoded columns, input features): 1 where the column comes from the feature.
        self.aggregation = numpy.zeros((len(self.column_features), len(self.features)))
        for column, owner in enumerate(self.column_features):
            self.aggregation[column, index[owner]] = 1.0

    @property
    def takes_columns(self) -> bool:
        # The compiled preprocessing (core.ml.compiled) reads columns as well as a frame.
        return isinstance(self.preprocessing, CompiledModel)

    def _explain(self, frame):
        encoded = self.preprocessing.transform(frame)
        dense = encoded.toarray() if sparse.issparse(encoded) else encoded
        rows = dense.shape[0]
        shap_values = numpy.asarray(
            self.shap_explainer.shap_values(dense, check_additivity=False), dtype=float)
        if shap_values.shape != (rows, len(self.encoded_columns)):
            raise ExplanationInconsistentError(
                f"TreeExplainer returned SHAP values of shape {shap_values.shape}; expected "
                f"{(rows, len(self.encoded_columns))}")
        contributions = self.scale * (shap_values @ self.aggregation)
        base = numpy.full(rows, self.base_value)
        if self.task == REGRESSION:
            values = numpy.asarray(self.model.predict(encoded), dtype=float)
            return base, values, contributions, None
        probabilities = numpy.asarray(self.model.predict_proba(encoded), dtype=float)[:, 1]
        raw = numpy.ravel(numpy.asarray(self.tree_model.decision_function(encoded), dtype=float))
        values = self.scale * raw + self.shift
        mismatch = float(numpy.max(numpy.abs(expit(values) - probabilities)))
        if not mismatch <= PROBABILITY_TOLERANCE:
            raise ExplanationInconsistentError(
                f"the explained log-odds do not give the served probability (off by "
                f"{mismatch!r}); has the calibration's sign convention changed?",
                details={"difference": mismatch})
        return base, values, contributions, probabilities


def _selected_columns(preprocessing: ColumnTransformer, columns: Any) -> list[str] | None:
    """A ColumnTransformer's column selection as input column names (None if unknown)."""
    if isinstance(columns, str):
        return [columns]
    if callable(columns) or isinstance(columns, slice):
        return None
    columns = list(numpy.atleast_1d(numpy.asarray(columns, dtype=object)))
    if all(isinstance(c, str) for c in columns):
        return columns
    names = getattr(preprocessing, "feature_names_in_", None)
    if names is None:
        return None
    if all(isinstance(c, (bool, numpy.bool_)) for c in columns):
        return [str(n) for n, keep in zip(names, columns, strict=True) if keep]
    if all(isinstance(c, (int, numpy.integer)) for c in columns):
        return [str(names[int(c)]) for c in columns]
    return None


def _onehot_widths(encoder: OneHotEncoder) -> list[int]:
    infrequent = (encoder.infrequent_categories_
                  if getattr(encoder, "_infrequent_enabled", False) else None)
    drop = getattr(encoder, "drop_idx_", None)
    widths = []
    for j, categories in enumerate(encoder.categories_):
        width = len(categories)
        if infrequent is not None and infrequent[j] is not None:
            width += 1 - len(infrequent[j])
        if drop is not None and drop[j] is not None:
            width -= 1
        widths.append(width)
    return widths


def _output_owners(transformer: Any, columns: list[str], width: int) -> list[str] | None:
    """The input column each of `transformer`'s `width` outputs comes from, or None."""
    if isinstance(transformer, str):  # "passthrough"
        return list(columns) if transformer == "passthrough" and width == len(columns) else None
    if len(columns) == 1:
        return [columns[0]] * width
    if isinstance(transformer, Pipeline):
        *steps, (_, last) = transformer.steps
        if not all(_output_owners(step, columns, len(columns)) == list(columns)
                   for _, step in steps):
            return None
        return _output_owners(last, columns, width)
    if isinstance(transformer, OneHotEncoder):
        widths = _onehot_widths(transformer)
        if len(widths) != len(columns) or sum(widths) != width:
            return None
        return [column for column, w in zip(columns, widths, strict=True) for _ in range(w)]
    try:
        names = [str(n) for n in transformer.get_feature_names_out(numpy.asarray(columns))]
    except (AttributeError, ValueError, TypeError):
        return None
    return names if len(names) == width and set(names) <= set(columns) else None


def encoded_column_features(preprocessing: Any) -> tuple[list[str], list[str]] | None:
    """(encoded column names, the input feature of each), or None when not traceable."""
    if not isinstance(preprocessing, ColumnTransformer):
        return None
    try:
        names = [str(n) for n in preprocessing.get_feature_names_out()]
        spans = preprocessing.output_indices_
    except (AttributeError, ValueError):
        return None
    owners: list[str | None] = [None] * len(names)
    for name, transformer, columns in preprocessing.transformers_:
        span = spans.get(name, slice(0, 0))
        if span.stop == span.start:
            continue
        selected = _selected_columns(preprocessing, columns)
        outputs = None if selected is None else _output_owners(
            transformer, selected, span.stop - span.start)
        if outputs is None:
            return None
        owners[span] = outputs
    return None if None in owners else (names, owners)


def _is_log_odds_tree(model: Any) -> bool:
    """A binary tree classifier whose raw output (decision_function) is the log-odds."""
    if not isinstance(model, TREE_CLASSIFIERS) or len(getattr(model, "classes_", ())) != 2:
        return False
    return not isinstance(model, GradientBoostingClassifier) or model.loss == "log_loss"


def _tree_model(model: Any, task: str) -> tuple[Any, float, float] | None:
    """(tree model, scale, shift) when TreeExplainer explains `model`'s value exactly."""
    if task == REGRESSION:
        exact = isinstance(model, TREE_REGRESSORS) and getattr(model, "n_outputs_", 1) == 1
        return (model, 1.0, 0.0) if exact else None
    if _is_log_odds_tree(model):
        return model, 1.0, 0.0
    if not (isinstance(model, CalibratedClassifierCV) and model.method == "sigmoid"
            and len(getattr(model, "calibrated_classifiers_", ())) == 1
            and len(model.classes_) == 2):
        return None
    calibrated = model.calibrated_classifiers_[0]
    calibrators = getattr(calibrated, "calibrators", ())
    if (len(calibrators) != 1 or not hasattr(calibrators[0], "a_")
            or not _is_log_odds_tree(calibrated.estimator)):
        return None
    # _SigmoidCalibration.predict: p = expit(-(a * f + b)); checked on every row.
    return calibrated.estimator, -float(calibrators[0].a_), -float(calibrators[0].b_)


def _tree_explainer(*, estimator: Any, task: str,
                    features: tuple[InputFeature, ...]) -> TreeModelExplainer | None:
    if not isinstance(estimator, Pipeline) or task not in (REGRESSION, BINARY):
        return None
    steps = [step for _, step in estimator.steps[:-1] if step not in (None, "passthrough")]
    model = estimator.steps[-1][1]
    found = _tree_model(model, task)
    mapping = encoded_column_features(steps[0]) if len(steps) == 1 else None
    if found is None or mapping is None:
        return None
    names, owners = mapping
    tree_model, scale, shift = found
    if (not set(owners) <= {f.name for f in features}
            or getattr(tree_model, "n_features_in_", len(names)) != len(names)):
        return None
    import shap  # noqa: PLC0415 - slow to import (numba): only when a tree model is explained

    try:
        shap_explainer = shap.TreeExplainer(tree_model, model_output="raw")
    except Exception:  # noqa: BLE001 - shap refuses unsupported models in many ways; the
        # model-agnostic path will do
        return None
    if numpy.size(shap_explainer.expected_value) != 1:
        return None
    return TreeModelExplainer(
        task=task, features=features, preprocessing=steps[0], model=model,
        tree_model=tree_model, shap_explainer=shap_explainer, encoded_columns=tuple(names),
        column_features=tuple(owners), scale=scale, shift=shift)
