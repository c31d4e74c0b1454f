"""The compiled inference path (core.ml.compiled, docs/api.md#compiled-inference): the demo
recipes' pipelines compiled give the pipelines' answers exactly; other pipelines are not
compiled; a compiled form that answers differently is caught at load and not served."""

import dataclasses
import logging

import numpy
import pandas
import pytest
from prometheus_client import REGISTRY
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from core.ml import compiled, explain
from core.ml.features import model_frame
from core.ml.recipes import recipe_get
from core.ml.schema import feature_spec
from demo import data as demo_data
from mlregistry.selectors import LiveVersion
from predictions.loader import ServedVersion
from predictions.validation import ValidatedBatch
from training.trainer import train_recipe

RECIPES = {"engagement-likes": "posts", "engagement-comments": "posts",
           "lead-conversion": "leads", "engagement-anomaly": "posts"}


@pytest.fixture(scope="module")
def trained() -> dict:
    frames = {"posts": demo_data.demo_posts(n=600), "leads": demo_data.demo_leads(n=600)}
    return {name: train_recipe(recipe=recipe_get(name), frame=frames[kind], seed=0)
            for name, kind in RECIPES.items()}


def canonical(raw: pandas.DataFrame, schema: dict) -> pandas.DataFrame:
    return model_frame(raw, schema)[0]


def edge_rows(schema: dict, profile: dict) -> pandas.DataFrame:
    """The verification rows' last four: all missing, out of range / unknown, extremes."""
    return compiled.verification_frame(schema=schema, reference_profile=profile).tail(4)


@pytest.mark.parametrize("name", RECIPES)
def test_every_demo_recipe_compiles(trained, name):
    assert compiled.pipeline_compile(trained[name].estimator) is not None


@pytest.mark.parametrize("name", RECIPES)
@pytest.mark.parametrize("rows", ["single", "batch", "edge cases"])
def test_compiled_answers_are_the_pipelines_bit_for_bit(trained, name, rows):
    model = trained[name]
    raw = {"single": lambda f: f.head(1), "batch": lambda f: f.head(300),
           "edge cases": lambda f: edge_rows(model.schema, model.reference_profile)}[rows](
        compiled.verification_frame(schema=model.schema,
                                    reference_profile=model.reference_profile))
    frame = canonical(raw, model.schema)
    task = recipe_get(name).task
    compiled_model = compiled.pipeline_compile(model.estimator)

    expected = compiled.model_answers(task=task, model=model.estimator, frame=frame)
    got = compiled.model_answers(task=task, model=compiled_model, frame=frame)

    for want, have in zip(expected, got, strict=True):
        numpy.testing.assert_array_equal(have, want)


def columns_of(frame: pandas.DataFrame) -> dict:
    """The frame's columns as predictions.validation gives them: float arrays, str lists."""
    return {name: frame[name].tolist() if frame[name].dtype == object
            else frame[name].to_numpy() for name in frame.columns}


@pytest.mark.parametrize("name", RECIPES)
def test_compiled_answers_from_columns_are_the_pipelines_bit_for_bit(trained, name):
    model = trained[name]
    frame = canonical(compiled.verification_frame(
        schema=model.schema, reference_profile=model.reference_profile), model.schema)
    task = recipe_get(name).task

    expected = compiled.model_answers(task=task, model=model.estimator, frame=frame)
    got = compiled.model_answers(task=task, model=compiled.pipeline_compile(model.estimator),
                                 frame=columns_of(frame))

    for want, have in zip(expected, got, strict=True):
        numpy.testing.assert_array_equal(have, want)


@pytest.mark.parametrize("name", ["engagement-likes", "lead-conversion"])
def test_a_tree_explainer_on_the_compiled_form_explains_columns_as_it_explains_the_frame(
        trained, name):
    model = trained[name]
    explainer = explain.explainer_build(
        estimator=model.estimator, task=recipe_get(name).task, schema=model.schema,
        reference_profile=model.reference_profile)
    frame = canonical(compiled.verification_frame(
        schema=model.schema, reference_profile=model.reference_profile).head(40), model.schema)
    expected = explainer.explain(frame)
    assert not explainer.takes_columns

    explainer.preprocessing = compiled.pipeline_compile(model.estimator)

    assert explainer.takes_columns
    assert explainer.explain(columns_of(frame)) == expected


def test_compiled_preprocessing_gives_the_pipelines_array(trained):
    model = trained["lead-conversion"]
    frame = canonical(compiled.verification_frame(
        schema=model.schema, reference_profile=model.reference_profile), model.schema)

    array = compiled.pipeline_compile(model.estimator).transform(frame)

    numpy.testing.assert_array_equal(array, model.estimator[:-1].transform(frame))


SCHEMA = {"target": "y", "features": [feature_spec(name="x", dtype="float"),
                                      feature_spec(name="z", dtype="float")]}
FRAME = pandas.DataFrame({"x": numpy.arange(20.0), "z": numpy.arange(20.0) % 3})


def batch_of(frame: pandas.DataFrame) -> ValidatedBatch:
    """A validated batch holding the canonical frame's columns."""
    return ValidatedBatch(columns={name: frame[name].to_numpy() for name in frame.columns},
                          logged=[], extra=[], rows=len(frame),
                          dtypes=dict.fromkeys(frame.columns, "float"))


def fitted(*steps) -> Pipeline:
    return Pipeline([*steps, ("model", LinearRegression())]).fit(FRAME, FRAME["x"] * 2)


def test_a_pipeline_with_a_step_it_does_not_know_is_not_compiled():
    pipeline = fitted(("prep", ColumnTransformer([("scaled", StandardScaler(), ["x", "z"])])))

    assert compiled.pipeline_compile(pipeline) is None


def test_an_estimator_that_is_not_a_pipeline_is_not_compiled():
    assert compiled.pipeline_compile(LinearRegression().fit(FRAME, FRAME["x"])) is None


def jitter(array: numpy.ndarray) -> numpy.ndarray:
    """Answers that differ on every call: what a compiled form must never be trusted on."""
    return array + numpy.random.default_rng().normal(0.0, 1e-6, array.shape)


def served(estimator, schema=SCHEMA) -> ServedVersion:
    live = LiveVersion(version_id=1, model_name="compiled-check", global_model_name="",
                       client_id="", task="regression", version="1.0.0", status="production",
                       traffic_percentage=100, is_shadow=False, model_sha256="0" * 64,
                       artifact_manifest={}, feature_schema=schema, recipe="")
    return ServedVersion(live=live, estimator=estimator,
                         reference_profile={"features": {"x": {"sample": [1.0, 2.0]}}})


def inference_paths(**labels) -> float:
    return REGISTRY.get_sample_value("pulselytics_model_inference_paths_total", labels) or 0.0


def test_a_compiled_form_that_answers_differently_is_not_served_and_is_reported(caplog):
    pipeline = fitted(("prep", ColumnTransformer([("numeric", SimpleImputer(), ["x", "z"])])),
                      ("jitter", FunctionTransformer(jitter)))
    version = served(pipeline)
    before = inference_paths(model="compiled-check", version="1.0.0", path="pipeline",
                             reason="mismatch")

    with caplog.at_level(logging.WARNING, logger="pulselytics.predictions"):
        version.compile()

    assert version.model is pipeline
    assert "differ" in version.not_compiled_because
    assert "compiled-check 1.0.0 is served through its pipeline" in caplog.text
    assert inference_paths(model="compiled-check", version="1.0.0", path="pipeline",
                           reason="mismatch") == before + 1


def test_a_version_whose_pipeline_compiles_exactly_is_served_compiled():
    version = served(fitted(("prep", ColumnTransformer(
        [("numeric", SimpleImputer(), ["x", "z"])]))))

    version.compile()

    assert isinstance(version.model, compiled.CompiledModel)
    assert version.not_compiled_because == ""
    frame = canonical(pandas.DataFrame({"x": [3.0, None], "z": [1.0, 2.0]}), SCHEMA)
    assert version.predict(batch_of(frame)).values == version.estimator.predict(frame).tolist()


def test_the_compiled_path_answers_from_the_columns_without_building_a_frame():
    version = served(fitted(("prep", ColumnTransformer(
        [("numeric", SimpleImputer(), ["x", "z"])]))))
    version.compile()
    batch = batch_of(canonical(pandas.DataFrame({"x": [3.0], "z": [1.0]}), SCHEMA))

    version.predict(batch)

    assert "frame" not in vars(batch)  # the cached DataFrame was never built


def verification_array(model, compiled_model) -> numpy.ndarray:
    frame = canonical(compiled.verification_frame(
        schema=model.schema, reference_profile=model.reference_profile), model.schema)
    return compiled_model.transform(frame)


def test_a_boosted_trees_regressor_answers_from_its_trees_bit_for_bit(trained):
    model = trained["engagement-likes"]
    compiled_model = compiled.pipeline_compile(model.estimator)
    array = verification_array(model, compiled_model)

    assert compiled_model.trees is not None
    numpy.testing.assert_array_equal(compiled_model.trees.predict(array),
                                     compiled_model.estimator.predict(array))
    numpy.testing.assert_array_equal(compiled_model.trees.predict(array[:1]),
                                     compiled_model.estimator.predict(array[:1]))


def test_a_few_rows_are_answered_by_the_trees_and_many_by_the_estimator(trained, monkeypatch):
    model = trained["engagement-likes"]
    compiled_model = compiled.pipeline_compile(model.estimator)
    frame = canonical(compiled.verification_frame(
        schema=model.schema, reference_profile=model.reference_profile), model.schema)
    calls = []
    real_predict = type(compiled_model.estimator).predict
    monkeypatch.setattr(type(compiled_model.estimator), "predict",
                        lambda self, x: calls.append(len(x)) or real_predict(self, x))

    compiled_model.predict(frame.head(compiled.TREES_MAX_ROWS))
    compiled_model.predict(frame.head(compiled.TREES_MAX_ROWS + 1))

    assert calls == [compiled.TREES_MAX_ROWS + 1]


def test_trees_that_answer_differently_are_not_used(trained, monkeypatch):
    model = trained["engagement-likes"]
    real = compiled._boosted_trees
    monkeypatch.setattr(compiled, "_boosted_trees", lambda estimator: dataclasses.replace(
        real(estimator), initial=real(estimator).initial + 1e-9))

    compilation = compiled.version_compile(
        estimator=model.estimator, task="regression", schema=model.schema,
        reference_profile=model.reference_profile)

    assert compilation.reason == ""  # still compiled: the estimator answers after the array
    assert compilation.model.trees is None
