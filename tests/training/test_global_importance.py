"""Global SHAP importance: mean |contribution| per input feature on held-out rows, computed
once when a version is trained or registered, with the explain endpoint's explainer."""

import numpy
import pandas
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression

from core.ml import explain, importance
from core.ml.recipes import recipe_get
from core.ml.schema import feature_spec
from demo import data as demo_data
from training import registration, trainer
from training.services import model_train


@pytest.fixture(scope="module")
def likes():
    """engagement-likes (gradient boosting: the tree path) trained on 400 demo posts."""
    recipe = recipe_get("engagement-likes")
    frame = demo_data.demo_posts(n=400, seed=3)
    return recipe, frame, trainer.train_recipe(recipe=recipe, frame=frame, seed=0)


def validation_rows(recipe, frame, seed: int = 0) -> pandas.DataFrame:
    """The held-out rows train_recipe explained: its own preparation and split."""
    inputs, target, _, _ = trainer.prepare(recipe=recipe, frame=frame)
    _, held_out = trainer._split(recipe, len(inputs), target, seed)
    return inputs.iloc[held_out]


def test_training_records_importance_of_every_input_feature(likes):
    recipe, _, trained = likes

    result = trained.global_importance

    assert set(result["features"]) == set(recipe.input_features())
    assert all(value >= 0 for value in result["features"].values())
    assert max(result["features"].values()) > 0
    assert (result["method"], result["output_space"]) == ("tree", "raw")
    assert result["rows"] == trained.training_report["validation_rows"] == 80


def test_training_importance_is_mean_absolute_explained_contribution(likes):
    recipe, frame, trained = likes
    rows = validation_rows(recipe, frame)
    explainer = explain.explainer_build(estimator=trained.estimator, task=recipe.task,
                                        schema=trained.schema,
                                        reference_profile=trained.reference_profile)

    explanations = explainer.explain(rows.iloc[:50]) + explainer.explain(rows.iloc[50:])

    for name, value in trained.global_importance["features"].items():
        expected = numpy.mean([abs(row["contributions"][name]) for row in explanations])
        assert value == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_anomaly_recipe_importance_takes_model_agnostic_path():
    recipe = recipe_get("engagement-anomaly")

    trained = trainer.train_recipe(recipe=recipe, frame=demo_data.demo_posts(n=400, seed=3),
                                   seed=0)

    assert trained.global_importance["method"] == "model_agnostic"
    assert set(trained.global_importance["features"]) == set(recipe.input_features())
    assert all(value >= 0 for value in trained.global_importance["features"].values())


def test_explainer_failure_does_not_fail_training(monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("shap exploded")

    monkeypatch.setattr(explain, "explainer_build", broken)
    recipe = recipe_get("engagement-likes")

    trained = trainer.train_recipe(recipe=recipe, frame=demo_data.demo_posts(n=400, seed=3),
                                   seed=0)

    assert trained.global_importance is None
    assert trained.metrics["r2"] is not None
    assert "global importance could not be computed" in caplog.text


def test_explainer_failure_is_logged_without_its_message(monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("cannot explain ana@personal.test")

    monkeypatch.setattr(explain, "explainer_build", broken)
    schema = {"target": "y", "features": [feature_spec(name="x", dtype="float")]}

    result = importance.global_importance_compute(
        estimator=None, task="regression", schema=schema,
        frame=pandas.DataFrame({"x": [1.0, 2.0]}), reference_profile=None)

    assert result is None
    assert "global importance could not be computed" in caplog.text
    assert "ana@personal.test" not in caplog.text


def test_multiclass_model_has_no_importance():
    schema = {"target": "y", "features": [feature_spec(name="x", dtype="float")]}
    features = pandas.DataFrame({"x": numpy.arange(30, dtype=float)})
    estimator = LogisticRegression().fit(features, numpy.arange(30) % 3)

    result = importance.global_importance_compute(
        estimator=estimator, task="multiclass_classification", schema=schema, frame=features,
        reference_profile={"features": {}})

    assert result is None


def test_sample_is_capped_and_reproducible():
    frame = pandas.DataFrame({"x": numpy.arange(500)})

    first, second = importance.importance_sample(frame), importance.importance_sample(frame)

    assert len(first) == importance.MAX_ROWS
    assert first.index.equals(second.index)
    assert importance.importance_sample(frame.iloc[:50]).index.equals(frame.index[:50])


def test_model_train_stores_importance_on_the_version(data_scientist, tmp_path):
    path = tmp_path / "posts.csv"
    demo_data.demo_posts(n=400, seed=3).to_csv(path, index=False)

    version = model_train(recipe_name="engagement-likes", user=data_scientist, data_path=path,
                          seed=0)

    version.refresh_from_db()
    assert set(version.global_importance["features"]) == set(
        recipe_get("engagement-likes").input_features())
    assert version.global_importance["rows"] == 80


def test_register_external_stores_importance_on_a_sample_of_the_data(data_scientist, tmp_path):
    rng = numpy.random.default_rng(0)
    frame = pandas.DataFrame({"visits": rng.poisson(5, 300).astype(float),
                              "spend": rng.normal(50, 10, 300)})
    frame["converted"] = (frame["visits"] + rng.normal(0, 1, 300) > 5).astype(int)
    data, artifact = tmp_path / "leads.csv", tmp_path / "model.skops"
    frame.to_csv(data, index=False)
    skops.io.dump(LogisticRegression().fit(frame[["visits", "spend"]], frame["converted"]),
                  artifact)

    version = registration.model_version_register_external(
        name="lead-score", task="binary_classification", user=data_scientist,
        artifact_path=str(artifact), data_path=str(data), target="converted")

    version.refresh_from_db()
    result = version.global_importance
    assert (result["method"], result["output_space"], result["rows"]) == (
        "model_agnostic", "log_odds", importance.MAX_ROWS)
    assert set(result["features"]) == {"visits", "spend"}
    assert result["features"]["visits"] > result["features"]["spend"] >= 0
