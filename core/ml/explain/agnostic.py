"""The model-agnostic path ("model_agnostic") and the entry point: `ModelAgnosticExplainer`
(interventional Shapley values of the whole pipeline, evaluated per `coalition_plan`
against background rows from `background_from_profile`), and `explainer_build`, which
takes a tree path where tree.py explains the model exactly and falls back to this one
otherwise.

"model_agnostic" covers everything else (linear models, isotonic or ensembled calibration,
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
from dataclasses import dataclass
from typing import Any

import numpy
import pandas
from scipy.special import logit

from core.ml.explain.base import (
    MODEL_AGNOSTIC,
    ExplanationUnsupportedError,
    InputFeature,
    ModelExplainer,
    input_features,
)
from core.ml.explain.tree import _tree_explainer
from core.ml.kinds import ANOMALY, BINARY, MULTICLASS, REGRESSION
from core.ml.outputs import anomaly_scores

# Model-agnostic path: background rows; exact Shapley values up to this many features,
# else this many sampled permutations (even: antithetic pairs); rows per pipeline call.
BACKGROUND_ROWS = 50
EXACT_MAX_FEATURES = 8
PERMUTATIONS = 16
SAMPLING_SEED = 0
BATCH_ROWS = 200_000
# Model-agnostic log-odds: probabilities clipped to [eps, 1 - eps] (about +-34.5).
PROBABILITY_EPS = 1e-15
BOOL_KEYS = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0,
             "yes": 1.0, "no": 0.0}


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
        size = min(size, *lengths)
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
