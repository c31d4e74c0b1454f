"""The training pipeline on a small test recipe (no database)."""

import re

import numpy
import pytest

from core.errors import InsufficientDataError, ValidationError
from tests.recipes import RecordingHook
from tests.training.conftest import tiny_frame
from training import trainer


def test_rows_without_target_are_dropped_and_counted(tiny_recipe):
    frame = tiny_frame()
    frame.loc[:9, "likes"] = numpy.nan

    trained = trainer.train_recipe(recipe=tiny_recipe, frame=frame, seed=0)

    assert trained.training_report["rows_read"] == 200
    assert trained.training_report["rows_without_target"] == 10
    assert trained.samples == 190
    assert trained.training_report["train_rows"] + trained.training_report["validation_rows"] == 190


def test_nan_and_inf_features_are_imputed_and_counted(tiny_recipe):
    frame = tiny_frame()
    frame.loc[:4, "followers"] = numpy.inf
    frame.loc[5:7, "followers"] = numpy.nan

    trained = trainer.train_recipe(recipe=tiny_recipe, frame=frame, seed=0)

    assert trained.training_report["imputed"] == {"followers": 8}
    assert trained.training_report["infinite"] == {"followers": 5}
    assert trained.training_report["missing"] == {"followers": 3}
    assert numpy.isfinite(trained.estimator.predict(
        frame.loc[:9, ["followers", "has_link", "platform"]].replace(numpy.inf, numpy.nan)
    )).all()


def test_too_few_rows_fail_with_clear_error(tiny_recipe):
    with pytest.raises(InsufficientDataError, match="needs at least 20 rows; the dataset has 10"):
        trainer.train_recipe(recipe=tiny_recipe, frame=tiny_frame(n=10), seed=0)


def test_client_rows_only_and_too_few_for_a_client_fail(tiny_recipe):
    frame = tiny_frame(n=200)
    frame.loc[:4, "client_id"] = "tiny-client"

    trained = trainer.train_recipe(recipe=tiny_recipe, frame=frame, seed=0, client_id="acme")
    assert trained.training_report["rows_for_client"] == (frame.client_id == "acme").sum()

    with pytest.raises(InsufficientDataError, match="client tiny-client has 5"):
        trainer.train_recipe(recipe=tiny_recipe, frame=frame, seed=0, client_id="tiny-client")


def test_missing_declared_column_is_named(tiny_recipe):
    with pytest.raises(ValidationError, match=re.escape("lacks column(s) platform")):
        trainer.train_recipe(recipe=tiny_recipe, frame=tiny_frame().drop(columns="platform"),
                             seed=0)


def test_same_data_and_seed_give_identical_predictions(tiny_recipe):
    first = trainer.train_recipe(recipe=tiny_recipe, frame=tiny_frame(), seed=7)
    second = trainer.train_recipe(recipe=tiny_recipe, frame=tiny_frame(), seed=7)
    probe = tiny_frame(n=50, seed=99)[["followers", "has_link", "platform"]].astype(
        {"has_link": float})

    assert numpy.array_equal(first.estimator.predict(probe), second.estimator.predict(probe))
    assert first.metrics == second.metrics


def test_validation_metrics_reference_profile_and_fairness_are_computed(tiny_recipe):
    trained = trainer.train_recipe(recipe=tiny_recipe, frame=tiny_frame(), seed=0)

    assert trained.metrics["r2"] > 0.99
    assert set(trained.reference_profile["features"]) == {"followers", "has_link", "platform"}
    assert trained.reference_profile["rows"] == trained.training_report["train_rows"]
    assert "region" in trained.fairness_report["attributes"]


def test_lifecycle_hooks_from_settings_run_around_training(tiny_recipe, settings):
    settings.PULSELYTICS_LIFECYCLE_HOOKS = [*settings.PULSELYTICS_LIFECYCLE_HOOKS,
                                            "tests.recipes.RecordingHook"]
    RecordingHook.calls.clear()

    trained = trainer.train_recipe(recipe=tiny_recipe, frame=tiny_frame(), seed=0,
                                   model_name="tiny-likes")

    assert RecordingHook.calls == [("before_train", "tiny-likes"), ("after_train", "Pipeline")]
    assert trained.fit_seconds >= 0
