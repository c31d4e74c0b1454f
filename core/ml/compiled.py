"""The compiled inference path (docs/api.md#compiled-inference): a fitted Pipeline's
preprocessing turned into plain numpy over the canonical frame, then its own final
estimator on the resulting array. Pure: no database access.

scikit-learn's ColumnTransformer costs milliseconds per call whatever the batch size
(validation, column selection and concatenation through pandas); the fitted parameters it
applies are a few arrays. `pipeline_compile` reads those parameters from a Pipeline whose
steps before the last are all of:

- ColumnTransformer (selected by column name; remainder dropped) of SimpleImputer (numeric
  input, NaN as the missing value, no indicator, no empty feature dropped), OneHotEncoder
  (handle_unknown="ignore", no drop, no infrequent categories), "passthrough" or "drop";
- FunctionTransformer without input validation (its function is called on the array, as
  the transformer itself calls it),

and returns None for anything else: such models are served through their pipeline.
The compiled form takes the canonical frame, or the same columns as a mapping of name to
array or list (predictions.validation.ValidatedBatch.columns), which spares building a
DataFrame for every request. The final estimator receives the same float64 array the
pipeline would give it, so the answers are the pipeline's; `compiled_mismatch` checks
exactly that on sample rows before a compiled model is used, and a model it finds a
difference in is not compiled.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy
import pandas
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from core.ml import kinds, outputs
from core.ml.features import model_frame

# Answers may differ by at most this much, relative; in practice they are identical.
RELATIVE_TOLERANCE = 1e-12

ArrayStep = Callable[[numpy.ndarray], numpy.ndarray]
# The canonical frame, or its columns by name (arrays, lists or Series).
Columns = pandas.DataFrame | Mapping[str, Any]


def _numbers(data: Columns, columns: list[str]) -> numpy.ndarray:
    """The named columns side by side as a new float64 array (rows x columns)."""
    return numpy.column_stack([numpy.asarray(data[name], dtype=numpy.float64)
                               for name in columns])


def _values(column: Any) -> list:
    return column.tolist() if hasattr(column, "tolist") else column


@dataclass(frozen=True)
class _Imputed:
    """Numeric columns with their missing values replaced by the fitted statistics."""

    columns: list[str]
    fill: numpy.ndarray

    def block(self, data: Columns) -> numpy.ndarray:
        values = _numbers(data, self.columns)
        missing = numpy.isnan(values)
        if missing.any():
            values[missing] = numpy.broadcast_to(self.fill, values.shape)[missing]
        return values


@dataclass(frozen=True)
class _OneHot:
    """One 0/1 column per fitted category of each column; anything else is all zeros."""

    columns: list[str]
    categories: list[dict]  # per column: category -> its position in the column's block
    width: int

    def block(self, data: Columns) -> numpy.ndarray:
        result = None
        offset = 0
        for name, positions in zip(self.columns, self.categories, strict=True):
            values = _values(data[name])
            if result is None:
                result = numpy.zeros((len(values), self.width), dtype=numpy.float64)
            for row, value in enumerate(values):
                position = positions.get(value)
                if position is not None:
                    result[row, offset + position] = 1.0
            offset += len(positions)
        return result


@dataclass(frozen=True)
class _Passthrough:
    columns: list[str]

    def block(self, data: Columns) -> numpy.ndarray:
        return _numbers(data, self.columns)


def _imputer(imputer: SimpleImputer, columns: list[str]) -> _Imputed | None:
    fill = numpy.asarray(imputer.statistics_)
    if (imputer.add_indicator or not _is_nan(imputer.missing_values)
            or fill.dtype.kind not in "fiu" or numpy.isnan(fill.astype(float)).any()
            or len(fill) != len(columns)):
        return None
    return _Imputed(columns=columns, fill=fill.astype(numpy.float64))


def _one_hot(encoder: OneHotEncoder, columns: list[str]) -> _OneHot | None:
    if (encoder.handle_unknown != "ignore" or encoder.drop is not None
            or (getattr(encoder, "infrequent_categories_", None) is not None
            and any(c is not None for c in encoder.infrequent_categories_))
            or numpy.dtype(encoder.dtype) != numpy.float64):
        return None
    categories = []
    for fitted in encoder.categories_:
        if fitted.dtype != object or any(not isinstance(value, str) for value in fitted):
            return None  # the canonical frame holds categories as str (core.ml.features)
        categories.append({value: i for i, value in enumerate(fitted)})
    return _OneHot(columns=columns, categories=categories,
                   width=sum(len(positions) for positions in categories))


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and numpy.isnan(value)


def _column_transformer(transformer: ColumnTransformer) -> Callable | None:
    blocks = []
    for name, fitted, columns in transformer.transformers_:
        if fitted == "drop" or (name == "remainder" and len(columns) == 0):
            continue
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            return None
        if not columns:
            continue
        if fitted == "passthrough":
            block = _Passthrough(columns)
        elif isinstance(fitted, SimpleImputer):
            block = _imputer(fitted, columns)
        elif isinstance(fitted, OneHotEncoder):
            block = _one_hot(fitted, columns)
        else:
            block = None
        if block is None:
            return None
        blocks.append(block)
    if transformer.sparse_output_ or not blocks:
        return None

    def transform(data: Columns) -> numpy.ndarray:
        return numpy.hstack([block.block(data) for block in blocks])
    return transform


def _function(transformer: FunctionTransformer) -> ArrayStep | None:
    if transformer.validate or transformer.func is None:
        return None
    func, kw_args = transformer.func, transformer.kw_args or {}
    return lambda array: func(array, **kw_args)


# Rows up to which a boosted-trees regressor answers from its trees' arrays (BoostedTrees):
# its own predict spends ~0.3 ms a call checking its input, more than the walk takes for a
# few rows; for many rows its compiled loop is faster than the vectorised walk.
TREES_MAX_ROWS = 16


@dataclass(frozen=True)
class BoostedTrees:
    """A fitted GradientBoostingRegressor's predict, read from its trees' public arrays
    (`tree_.feature`, `threshold`, `children_left`, `children_right`, `value`) and walked
    with numpy: the inputs as float32, compared with the float64 thresholds, and the
    stages' `learning_rate * leaf value` added one after the other to the initial
    prediction, as scikit-learn's predict_stages does. `version_compile` checks that it
    answers exactly as the estimator before it is used."""

    feature: numpy.ndarray  # (trees, nodes); a leaf reads column 0 and stays where it is
    threshold: numpy.ndarray
    left: numpy.ndarray
    right: numpy.ndarray
    scaled_value: numpy.ndarray  # learning_rate * the node's value
    depth: int
    initial: float

    def predict(self, array: numpy.ndarray) -> numpy.ndarray:
        inputs = array.astype(numpy.float32).astype(numpy.float64)
        rows = numpy.arange(len(inputs))[:, None]
        trees = numpy.arange(self.feature.shape[0])[None, :]
        node = numpy.zeros((len(inputs), self.feature.shape[0]), dtype=numpy.intp)
        for _ in range(self.depth):
            goes_left = inputs[rows, self.feature[trees, node]] <= self.threshold[trees, node]
            node = numpy.where(goes_left, self.left[trees, node], self.right[trees, node])
        stages = numpy.concatenate([numpy.full((len(inputs), 1), self.initial),
                                    self.scaled_value[trees, node]], axis=1)
        return numpy.cumsum(stages, axis=1)[:, -1]  # cumsum adds in order, as the stages do


def _boosted_trees(estimator: Any) -> BoostedTrees | None:
    """The trees form of a gradient-boosting regressor started from a constant (the default
    DummyRegressor, or "zero"), else None."""
    if type(estimator) is not GradientBoostingRegressor:
        return None
    if isinstance(estimator.init_, DummyRegressor):
        constant = numpy.ravel(numpy.asarray(estimator.init_.constant_, dtype=numpy.float64))
        if constant.size != 1:
            return None
        initial = float(constant[0])
    elif isinstance(estimator.init_, str) and estimator.init_ == "zero":
        initial = 0.0
    else:
        return None
    fitted = [tree.tree_ for tree in estimator.estimators_[:, 0]]
    shape = (len(fitted), max(tree.node_count for tree in fitted))
    feature = numpy.zeros(shape, dtype=numpy.intp)
    threshold = numpy.zeros(shape)
    left = numpy.zeros(shape, dtype=numpy.intp)
    right = numpy.zeros(shape, dtype=numpy.intp)
    scaled_value = numpy.zeros(shape)
    for t, tree in enumerate(fitted):
        nodes = numpy.arange(tree.node_count)
        leaf = tree.children_left == -1
        feature[t, :tree.node_count] = numpy.where(leaf, 0, tree.feature)
        threshold[t, :tree.node_count] = tree.threshold
        left[t, :tree.node_count] = numpy.where(leaf, nodes, tree.children_left)
        right[t, :tree.node_count] = numpy.where(leaf, nodes, tree.children_right)
        scaled_value[t, :tree.node_count] = estimator.learning_rate * tree.value[:, 0, 0]
    return BoostedTrees(feature=feature, threshold=threshold, left=left, right=right,
                        scaled_value=scaled_value,
                        depth=max(tree.max_depth for tree in fitted), initial=initial)


@dataclass(frozen=True)
class CompiledModel:
    """The pipeline's preprocessing as numpy (`transform`) and its final estimator, with
    the prediction methods the pipeline offers; `trees`, when the estimator is a boosted
    trees regressor, answers for a few rows."""

    first: Callable[[Columns], numpy.ndarray]
    then: tuple[ArrayStep, ...]
    estimator: Any
    trees: BoostedTrees | None = None

    def transform(self, data: Columns) -> numpy.ndarray:
        array = self.first(data)
        for step in self.then:
            array = step(array)
        return array

    @property
    def classes_(self) -> numpy.ndarray:
        return self.estimator.classes_

    def predict(self, data: Columns) -> numpy.ndarray:
        array = self.transform(data)
        if self.trees is not None and len(array) <= TREES_MAX_ROWS:
            return self.trees.predict(array)
        return self.estimator.predict(array)

    def predict_proba(self, data: Columns) -> numpy.ndarray:
        return self.estimator.predict_proba(self.transform(data))

    def score_samples(self, data: Columns) -> numpy.ndarray:
        return self.estimator.score_samples(self.transform(data))

    def __getattr__(self, name: str) -> Any:
        # decision_function only where the estimator has one: outputs.anomaly_scores asks.
        if name == "decision_function" and hasattr(self.estimator, name):
            return lambda data: self.estimator.decision_function(self.transform(data))
        raise AttributeError(name)


def pipeline_compile(estimator: Any) -> CompiledModel | None:
    """The compiled form of a fitted Pipeline, or None when a step is not one it handles."""
    if not isinstance(estimator, Pipeline) or len(estimator.steps) < 2:
        return None
    steps = [step for _, step in estimator.steps]
    if not isinstance(steps[0], ColumnTransformer):
        return None
    first = _column_transformer(steps[0])
    then = []
    for step in steps[1:-1]:
        compiled = _function(step) if isinstance(step, FunctionTransformer) else None
        if compiled is None:
            return None
        then.append(compiled)
    final = steps[-1]
    if first is None or final is None or final == "passthrough":
        return None
    if hasattr(final, "feature_names_in_"):
        return None  # fitted on a DataFrame (set_output): an array would not be the same
    return CompiledModel(first=first, then=tuple(then), estimator=final,
                         trees=_boosted_trees(final))


def model_answers(*, task: str, model: Any, frame: pandas.DataFrame) -> list[numpy.ndarray]:
    """What serving takes from a model (the pipeline or its compiled form) for `frame`."""
    if task in (kinds.BINARY, kinds.MULTICLASS):
        return [numpy.asarray(model.predict_proba(frame), dtype=float)]
    if task == kinds.ANOMALY:
        return [outputs.anomaly_scores(estimator=model, features=frame),
                numpy.asarray(model.predict(frame))]
    return [numpy.asarray(model.predict(frame), dtype=float)]


def compiled_mismatch(*, task: str, estimator: Any, compiled: CompiledModel,
                      frame: pandas.DataFrame) -> str:
    """How the compiled model's answers for `frame` differ from the pipeline's, or "" when
    they agree (within RELATIVE_TOLERANCE; in practice bit for bit)."""
    expected = model_answers(task=task, model=estimator, frame=frame)
    got = model_answers(task=task, model=compiled, frame=frame)
    for want, have in zip(expected, got, strict=True):
        if want.shape != have.shape:
            return f"answers of shape {have.shape} instead of {want.shape}"
        if want.dtype.kind in "fc":
            close = numpy.isclose(have, want, rtol=RELATIVE_TOLERANCE, atol=0.0,
                                  equal_nan=True)
        else:
            close = have == want
        if not close.all():
            row = int(numpy.argwhere(~close)[0][0])
            return f"{int((~close).sum())} answer(s) differ, the first on sample row {row}"
    return ""


def verification_frame(*, schema: dict, reference_profile: dict, rows: int = 500
                       ) -> pandas.DataFrame:
    """Rows to check a compiled model on, in the raw form a request has (before
    core.ml.features.model_frame): the training values the profile kept, its categories
    in turn, and the edge cases serving must get right (every feature missing, unknown
    categories, values beyond the training range)."""
    profiled = reference_profile.get("features", {})
    columns = {}
    for feature in schema["features"]:
        if not feature.get("input", True):
            continue
        name, entry = feature["name"], profiled.get(feature["name"], {})
        if feature["dtype"] in ("float", "int"):
            sample = [float(v) for v in entry.get("sample") or [0.0, 1.0]]
            low, high = min(sample), max(sample)
            values = [sample[i % len(sample)] for i in range(rows)]
            edges = [None, low - abs(low) - 1.0, high + abs(high) + 1.0, 0.0]
        else:
            known = (list(entry.get("counts", {})) or list(feature.get("categories") or [])
                     or (["True", "False"] if feature["dtype"] == "bool" else ["a"]))
            values = [known[i % len(known)] for i in range(rows)]
            edges = [None, "(not a category seen in training)", known[0], known[-1]]
        columns[name] = values + edges
    return pandas.DataFrame(columns)


@dataclass(frozen=True)
class Compilation:
    """The outcome of compiling a version: `model` answers (the compiled form, or the
    estimator itself); `reason` ("" when compiled, else "unsupported", "mismatch" or
    "error") and `why` say why the estimator answers itself."""

    model: Any
    reason: str
    why: str

    @property
    def path(self) -> str:
        return "pipeline" if self.reason else "compiled"


def version_compile(*, estimator: Any, task: str, schema: dict, reference_profile: dict
                    ) -> Compilation:
    """Compile a version's estimator and check the compiled form on verification_frame
    rows; the estimator itself when it does not compile or answers differently."""
    try:
        compiled_model = pipeline_compile(estimator)
        if compiled_model is None:
            return Compilation(estimator, "unsupported",
                               "a pipeline step the compiler does not handle")
        frame, _ = model_frame(verification_frame(
            schema=schema, reference_profile=reference_profile), schema)
        mismatch = compiled_mismatch(task=task, estimator=estimator,
                                     compiled=compiled_model, frame=frame)
        if compiled_model.trees is not None:
            array = compiled_model.transform(frame)
            if not numpy.array_equal(compiled_model.trees.predict(array),
                                     compiled_model.estimator.predict(array)):
                compiled_model = replace(compiled_model, trees=None)  # its own predict then
    except Exception as exc:  # noqa: BLE001 - the estimator still answers
        return Compilation(estimator, "error", f"compiling failed: {type(exc).__name__}")
    if mismatch:
        return Compilation(estimator, "mismatch", mismatch)
    return Compilation(compiled_model, "", "")
