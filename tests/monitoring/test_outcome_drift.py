"""Outcome drift (monitoring.performance.outcome_drift): the outcomes received in the
performance window against the training target's profile, with the statistics of feature
drift, in each PerformanceReport."""

import numpy
import pandas
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.ml.profile import reference_profile_build
from core.ml.recipes import recipe_get
from demo import data as demo_data
from monitoring.performance import performance_evaluate
from monitoring.stats import psi
from predictions import services as serving
from tests.factories import labelled_logs_create, register_profiled_version
from training import trainer

pytestmark = pytest.mark.django_db
TRAINING_TARGET = numpy.random.default_rng(7).normal(100.0, 20.0, 1000)


def outcomes_received(version, actual) -> None:
    labelled_logs_create(version=version, values=list(actual), actuals=list(actual),
                         created_at=timezone.now())


@pytest.mark.parametrize(("mean", "drifted"), [(100.0, False), (160.0, True)])
def test_outcomes_are_compared_with_the_training_target(people, settings, mean, drifted):
    settings.DRIFT_MIN_SAMPLES = 100
    version = register_profiled_version(**people, target=TRAINING_TARGET)
    actual = numpy.random.default_rng(8).normal(mean, 20.0, 300)
    outcomes_received(version, actual)

    [report] = performance_evaluate(version_id=version.pk)

    figures = report.outcome_drift
    entry = version.reference_profile["target"]
    current = numpy.bincount(numpy.searchsorted(entry["edges"], actual, side="left"),
                             minlength=len(entry["counts"]))
    assert figures["psi"] == pytest.approx(psi(entry["counts"], current))
    assert (figures["kind"], figures["n_current"], figures["drifted"]) == (
        "numeric", 300, drifted)
    assert (figures["severity"] == "critical") is drifted


def test_too_few_outcomes_are_counted_but_not_judged(people, settings):
    settings.DRIFT_MIN_SAMPLES = 100
    version = register_profiled_version(**people, target=TRAINING_TARGET)
    outcomes_received(version, numpy.full(40, 500.0))

    [report] = performance_evaluate(version_id=version.pk)

    assert (report.outcome_drift["n_current"], report.outcome_drift["drifted"]) == (40, False)


def test_a_version_without_a_target_profile_has_no_outcome_drift(people):
    version = register_profiled_version(**people)
    outcomes_received(version, [1.0, 2.0])

    [report] = performance_evaluate(version_id=version.pk)

    assert report.outcome_drift is None


def test_training_profiles_the_target_of_the_training_rows():
    frame = demo_data.demo_posts(n=400, seed=1)
    trained = trainer.train_recipe(recipe=recipe_get("engagement-likes"), frame=frame, seed=0)

    target = trained.reference_profile["target"]
    assert target["kind"] == "numeric"
    assert target["n"] == trained.training_report["train_rows"]


def test_class_labels_are_profiled_as_categories():
    profile = reference_profile_build(
        frame=pandas.DataFrame({"followers": [1.0, 2.0, 3.0, 4.0]}),
        schema={"features": [{"name": "followers", "dtype": "float"}]},
        outputs=[0.1, 0.2, 0.3, 0.4], seed=0, target=[1, 0, 1, 1], target_kind="categorical")

    assert profile["target"]["counts"] == {"0": 1, "1": 3}


def test_the_performance_endpoint_reports_outcome_drift(people, settings):
    settings.DRIFT_MIN_SAMPLES = 100
    version = register_profiled_version(**people, target=TRAINING_TARGET)
    outcomes_received(version, numpy.random.default_rng(9).normal(160.0, 20.0, 200))
    performance_evaluate(version_id=version.pk)
    _, key = serving.api_key_create(name="outcome drift")

    body = APIClient(HTTP_AUTHORIZATION=f"Api-Key {key}").get(
        f"/api/v1/models/{version.model.name}/performance").json()

    [arm] = body["versions"][0]["arms"]
    drift = arm["realized"]["outcome_drift"]
    assert (drift["kind"], drift["n_current"], drift["drifted"]) == ("numeric", 200, True)
