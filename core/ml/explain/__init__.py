"""SHAP explanations for the explain endpoint (SPEC §4). Pure: no database, no Django.

`explainer_build` runs once per loaded model version (the serving cache keeps the result;
building costs far more than explaining a row), then `ModelExplainer.explain` turns up to
MAX_INSTANCES rows of the canonical input frame (core.ml.features.model_frame)
into one explanation each:

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
`score_samples`, as core.ml.metrics.anomaly_scores; "raw"). Multiclass models
are refused (ExplanationUnsupportedError): no class's log-odds are additive over a softmax.

The path chosen at build time is `ModelExplainer.method`:

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
- "model_agnostic": everything else (linear models, isotonic or ensembled calibration,
  rule-based detectors, pipelines that mix features such as the anomaly recipe's
  engagement rates; IsolationForest too, whose TreeExplainer output is a path length, not
  the decision function). Interventional Shapley values of the WHOLE pipeline in
  input-feature space: v(S) is the mean output over background rows whose features in S
  take the instance's values; base_value = v({}) is the mean output on the background,
  value = v(all). Up to EXACT_MAX_FEATURES features every coalition is evaluated (exact);
  above, PERMUTATIONS seeded permutations in antithetic pairs (as SHAP's
  PermutationExplainer). Either way the marginal contributions telescope, so they add up
  to value - base_value by construction. Written here rather than with shap's maskers
  because the canonical frame holds strings and None, which the pipeline takes and
  shap's numeric maskers do not. The background is at most BACKGROUND_ROWS rows drawn
  from the version's reference profile (`background_from_profile`). Cost per instance:
  at most 254 coalitions (8 features) or 16 x 11 (12 features) x 50 rows through the
  pipeline, in one batch.
"""

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy
import pandas
from scipy import sparse
from scipy.special import expit, logit
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

from core.ml.metrics import ANOMALY, BINARY, MULTICLASS, REGRESSION, anomaly_scores
from core.errors import ApplicationError, ValidationError

MAX_INSTANCES = 100
TOP_CONTRIBUTIONS = 3
ADDITIVITY_TOLERANCE = 1e-6
# expit(value) must match the served probability this closely on the tree paths.
PROBABILITY_TOLERANCE = 1e-9
# Model-agnostic path: background rows; exact Shapley values up to this many features,
# else this many sampled permutations (even: antithetic pairs); rows per pipeline call.
BACKGROUND_ROWS = 50
EXACT_MAX_FEATURES = 8
PERMUTATIONS = 16
SAMPLING_SEED = 0
BATCH_ROWS = 200_000
# Model-agnostic log-odds: probabilities clipped to [eps, 1 - eps] (about +-34.5).
PROBABILITY_EPS = 1e-15

TREE, TREE_CALIBRATED, MODEL_AGNOSTIC = "tree", "tree_calibrated", "model_agnostic"
RAW, LOG_ODDS = "raw", "log_odds"
NUMERIC_DTYPES = ("float", "int", "bool")  # float64 in the canonical frame
BOOL_KEYS = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0,
             "yes": 1.0, "no": 0.0}
TREE_REGRESSORS = (GradientBoostingRegressor, HistGradientBoostingRegressor,
                   RandomForestRegressor, ExtraTreesRegressor, DecisionTreeRegressor)
TREE_CLASSIFIERS = (GradientBoostingClassifier, HistGradientBoostingClassifier)


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

    def explain(self, frame: pandas.DataFrame) -> list[dict]:
        """One explanation per row of the canonical input frame (at most MAX_INSTANCES)."""
        if len(frame) > MAX_INSTANCES:
            raise ExplanationUnsupportedError(
                f"at most {MAX_INSTANCES} instances can be explained at once; got {len(frame)}",
                details={"instances": len(frame), "maximum": MAX_INSTANCES})
        missing = [name for name in self.feature_names if name not in frame.columns]
        if missing:
            raise ExplanationUnsupportedError(
                f"the frame lacks input features: {', '.join(missing)}",
                details={"missing": missing})
        if len(frame) == 0:
            return []
        base, values, contributions, probabilities = self._explain(frame[self.feature_names])
        return [explanation_row(
            output_space=self.output_space, base_value=float(base[i]), value=float(values[i]),
            contributions=contributions[i], features=self.feature_names,
            probability=None if probabilities is None else float(probabilities[i]),
        ) for i in range(len(frame))]

    @abstractmethod
    def _explain(self, frame: pandas.DataFrame) -> tuple[numpy.ndarray, numpy.ndarray,
                                                         numpy.ndarray, numpy.ndarray | None]:
        """(base values (n,), values (n,), contributions (n, features), probabilities)."""


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

    def _explain(self, frame):
        encoded = self.preprocessing.transform(frame)
        dense = encoded.toarray() if sparse.issparse(encoded) else encoded
        shap_values = numpy.asarray(
            self.shap_explainer.shap_values(dense, check_additivity=False), dtype=float)
        if shap_values.shape != (len(frame), len(self.encoded_columns)):
            raise ExplanationInconsistentError(
                f"TreeExplainer returned SHAP values of shape {shap_values.shape}; expected "
                f"{(len(frame), len(self.encoded_columns))}")
        contributions = self.scale * (shap_values @ self.aggregation)
        base = numpy.full(len(frame), self.base_value)
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
    import shap  # slow to import (numba): only when a tree model is explained

    try:
        shap_explainer = shap.TreeExplainer(tree_model, model_output="raw")
    except Exception:  # shap does not support this model: the model-agnostic path will do
        return None
    if numpy.size(shap_explainer.expected_value) != 1:
        return None
    return TreeModelExplainer(
        task=task, features=features, preprocessing=steps[0], model=model,
        tree_model=tree_model, shap_explainer=shap_explainer, encoded_columns=tuple(names),
        column_features=tuple(owners), scale=scale, shift=shift)


# --- Model-agnostic path ------------------------------------------------------------------


@dataclass(frozen=True)
class CoalitionPlan:
    """The coalitions to evaluate, and which differences make each contribution.

    Per instance, V = [v(masks[0]), ..., v(masks[K-1]), v(empty) = base_value,
    v(full) = value]; feature j's contribution is the sum, over pairs p with
    feature[p] == j, of weight[p] * (V[after[p]] - V[before[p]]). A feature the model
    ignores thus gets exactly 0.
    """

    masks: numpy.ndarray  # (K, M) bool: every coalition but the empty and the full one
    feature: numpy.ndarray  # (P,)
    after: numpy.ndarray  # (P,) index into V: the coalition with the feature
    before: numpy.ndarray  # (P,) index into V: the same without it
    weight: numpy.ndarray  # (P,)
    exact: bool

    def contributions(self, values: numpy.ndarray) -> numpy.ndarray:
        """(n, K + 2) coalition values -> (n, M) contributions."""
        differences = (values[:, self.after] - values[:, self.before]) * self.weight
        owner = numpy.zeros((len(self.feature), self.masks.shape[1]))
        owner[numpy.arange(len(self.feature)), self.feature] = 1.0
        return differences @ owner


def coalition_plan(n_features: int, *, seed: int = SAMPLING_SEED) -> CoalitionPlan:
    """Exact Shapley weights up to EXACT_MAX_FEATURES features, else PERMUTATIONS
    permutations in antithetic pairs. Summed over the features, every coalition cancels
    but the full one (+1) and the empty one (-1): additivity by construction."""
    m, full = n_features, (1 << n_features) - 1
    pairs: list[tuple[int, int, int, float]] = []  # (feature, after, before, weight)
    if m <= EXACT_MAX_FEATURES:
        fact = [math.factorial(k) for k in range(m + 1)]
        for mask in range(full):
            size = bin(mask).count("1")
            w = fact[size] * fact[m - size - 1] / fact[m]
            pairs += [(j, mask | 1 << j, mask, w) for j in range(m) if not mask >> j & 1]
    else:
        rng = numpy.random.default_rng(seed)
        orders: list[list[int]] = []
        for _ in range(PERMUTATIONS // 2):
            order = [int(j) for j in rng.permutation(m)]
            orders += [order, order[::-1]]
        for order in orders:
            mask = 0
            for j in order:
                pairs.append((j, mask | 1 << j, mask, 1.0 / len(orders)))
                mask |= 1 << j
    inner = sorted({mask for _, after, before, _ in pairs for mask in (after, before)}
                   - {0, full})
    position = {mask: k for k, mask in enumerate(inner)} | {0: len(inner), full: len(inner) + 1}
    return CoalitionPlan(
        masks=numpy.array([[bool(mask >> j & 1) for j in range(m)] for mask in inner],
                          dtype=bool).reshape(len(inner), m),
        feature=numpy.array([p[0] for p in pairs], dtype=int),
        after=numpy.array([position[p[1]] for p in pairs], dtype=int),
        before=numpy.array([position[p[2]] for p in pairs], dtype=int),
        weight=numpy.array([p[3] for p in pairs], dtype=float),
        exact=m <= EXACT_MAX_FEATURES,
    )


def background_from_profile(*, schema: dict, reference_profile: dict,
                            rows: int = BACKGROUND_ROWS) -> pandas.DataFrame:
    """At most `rows` canonical rows drawn from a reference profile (core.ml.profile).

    Numeric features come from the profile's samples. When they all have samples of one
    length, those are the same training rows (all values in row order, or the same
    indices drawn with the same seed), so the same positions are taken from each and the
    rows keep their joint distribution; otherwise each is drawn on its own. Categories and
    flags only have counts: values are laid out at the (i + 0.5) / rows quantiles of the
    counts (shares kept) and shuffled, independently of the rest. A feature with nothing
    profiled is missing (the pipeline imputes it). Seeded with the profile's seed.
    """
    features = input_features(schema)
    entries = reference_profile.get("features", {})
    rng = numpy.random.default_rng(int(reference_profile.get("seed") or 0))
    samples = {f.name: numpy.asarray(entries[f.name].get("sample") or [], dtype=float)
               for f in features
               if f.numeric and entries.get(f.name, {}).get("kind") == "numeric"}
    lengths = {len(sample) for sample in samples.values()}
    size = max(1, min(rows, max([int(reference_profile.get("rows") or 0), *lengths])))
    positions = None
    if len(lengths) == 1 and min(lengths) > 0:
        size = min(size, min(lengths))
        positions = numpy.sort(rng.choice(min(lengths), size=size, replace=False))
    columns = {}
    for feature in features:
        if feature.name in samples:
            sample = samples[feature.name]
            if positions is not None:
                values = sample[positions]
            elif sample.size:
                values = rng.choice(sample, size=size, replace=sample.size < size)
            else:
                values = numpy.full(size, numpy.nan)
            columns[feature.name] = pandas.Series(values, dtype=float)
            continue
        entry = entries.get(feature.name, {})
        counts = entry.get("counts") if entry.get("kind") == "categorical" else None
        values = _stratified(counts, size, rng) if counts else [None] * size
        if feature.numeric:
            columns[feature.name] = pandas.Series([_number(v, feature.dtype) for v in values],
                                                  dtype=float)
        else:
            columns[feature.name] = pandas.Series(values, dtype=object)
    return pandas.DataFrame(columns)


def _number(value: Any, dtype: str) -> float:
    """A profiled category key ("1.0", "True", "3") as the canonical float."""
    if value is None:
        return numpy.nan
    if dtype == "bool":
        return BOOL_KEYS.get(str(value).strip().lower(), numpy.nan)
    try:
        return float(value)
    except (TypeError, ValueError):
        return numpy.nan


def _stratified(counts: dict, size: int, rng: numpy.random.Generator) -> list:
    keys = list(counts)
    cumulative = numpy.cumsum([counts[key] for key in keys], dtype=float)
    points = (numpy.arange(size) + 0.5) / size * cumulative[-1]
    picked = [keys[i] for i in numpy.searchsorted(cumulative, points, side="right")]
    return [picked[i] for i in rng.permutation(size)]


def _row_means(outputs: numpy.ndarray) -> numpy.ndarray:
    """(n, k, b) -> (n, k): the one reduction used for every coalition value, so that
    identical outputs give bitwise-identical means (and ignored features exactly 0)."""
    return numpy.ascontiguousarray(outputs).mean(axis=2)


@dataclass
class ModelAgnosticExplainer(ModelExplainer):
    """Shapley values of the whole pipeline in input-feature space (see the module doc)."""

    estimator: Any = None
    background: pandas.DataFrame | None = None
    plan: CoalitionPlan | None = None

    def __post_init__(self) -> None:
        self.method = MODEL_AGNOSTIC
        self.background = self.background[self.feature_names].reset_index(drop=True)
        self._background_columns = [_column(self.background, f) for f in self.features]
        self.base_value = float(_row_means(self._values(self.background)[None, None, :])[0, 0])

    def _outputs(self, frame: pandas.DataFrame) -> tuple[numpy.ndarray, numpy.ndarray | None]:
        """(the explained value, the positive-class probability or None) per row."""
        if self.task == REGRESSION:
            return numpy.asarray(self.estimator.predict(frame), dtype=float).ravel(), None
        if self.task == BINARY:
            p = numpy.asarray(self.estimator.predict_proba(frame), dtype=float)[:, 1]
            return logit(numpy.clip(p, PROBABILITY_EPS, 1.0 - PROBABILITY_EPS)), p
        return anomaly_scores(estimator=self.estimator, features=frame).ravel(), None

    def _values(self, frame: pandas.DataFrame) -> numpy.ndarray:
        return self._outputs(frame)[0]

    def _explain(self, frame):
        n, k, b = len(frame), len(self.plan.masks), len(self.background)
        values, probabilities = self._outputs(frame)
        coalition_values = numpy.empty((n, k + 2))
        if k:
            columns = [_column(frame, f) for f in self.features]
            chunk = max(1, BATCH_ROWS // (k * b))
            for start in range(0, n, chunk):
                stop = min(n, start + chunk)
                outputs = self._values(self._composite(columns, start, stop))
                coalition_values[start:stop, :k] = _row_means(outputs.reshape(stop - start, k, b))
        base = numpy.full(n, self.base_value)
        # The full coalition averaged like the others (b copies of the value).
        full = _row_means(numpy.repeat(values, b).reshape(n, 1, b))[:, 0]
        coalition_values[:, k], coalition_values[:, k + 1] = base, full
        return base, values, self.plan.contributions(coalition_values), probabilities

    def _composite(self, columns: list[numpy.ndarray], start: int, stop: int) -> pandas.DataFrame:
        """Rows (instance, coalition, background row): the instance's values inside the
        coalition, the background row's outside."""
        shape = (stop - start, len(self.plan.masks), len(self.background))
        data = {}
        for j, feature in enumerate(self.features):
            take = numpy.broadcast_to(self.plan.masks[:, j][None, :, None], shape)
            mine = numpy.broadcast_to(columns[j][start:stop][:, None, None], shape)
            theirs = numpy.broadcast_to(self._background_columns[j][None, None, :], shape)
            data[feature.name] = pandas.Series(numpy.where(take, mine, theirs).reshape(-1),
                                               dtype=float if feature.numeric else object)
        return pandas.DataFrame(data)


def _column(frame: pandas.DataFrame, feature: InputFeature) -> numpy.ndarray:
    """A canonical column as float64, or as objects with None for missing."""
    if feature.numeric:
        return frame[feature.name].to_numpy(dtype=float, na_value=numpy.nan)
    return numpy.array([None if pandas.isna(v) else v for v in frame[feature.name]], dtype=object)


# --- Entry point --------------------------------------------------------------------------


def explainer_build(*, estimator: Any, task: str, schema: dict,
                    reference_profile: dict | None = None,
                    background: pandas.DataFrame | None = None) -> ModelExplainer:
    """The explainer of one fitted model version: build once, keep beside the model.

    The model-agnostic path needs background rows: from `reference_profile` (the
    version's, see `background_from_profile`) or given as `background` (canonical rows;
    BACKGROUND_ROWS of them are sampled). The tree paths need neither.
    """
    if task == MULTICLASS:
        raise ExplanationUnsupportedError(
            "multiclass models cannot be explained: no class's log-odds are additive over "
            "a softmax", details={"task": task})
    if task not in (REGRESSION, BINARY, ANOMALY):
        raise ExplanationUnsupportedError(f"cannot explain task {task!r}", details={"task": task})
    features = input_features(schema)
    if not features:
        raise ExplanationUnsupportedError("the schema declares no input features")
    tree = _tree_explainer(estimator=estimator, task=task, features=features)
    if tree is not None:
        return tree
    if background is None and reference_profile is not None:
        background = background_from_profile(schema=schema, reference_profile=reference_profile)
    if background is None or len(background) == 0:
        raise ExplanationUnsupportedError(
            "this model is explained model-agnostically, against background rows drawn from "
            "the version's reference profile; none were given", details={"task": task})
    if len(background) > BACKGROUND_ROWS:
        background = background.sample(n=BACKGROUND_ROWS, random_state=SAMPLING_SEED)
    return ModelAgnosticExplainer(task=task, features=features, estimator=estimator,
                                  background=background, plan=coalition_plan(len(features)))
