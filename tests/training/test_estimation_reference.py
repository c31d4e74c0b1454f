"""What training and `register_model` store for estimated performance
(docs/training.md#estimation-reference): the reference in the training report and the
error models or calibrator in the bundle; versions stored without them keep loading."""

from io import StringIO

import numpy
import pandas
import pytest
import skops.io
from django.core.management import call_command
from sklearn.linear_model import LogisticRegression

from core.ml import estimation
from mlregistry import artifacts
from mlregistry.models import MLModelVersion
from training.registration import model_version_register_external

pytestmark = pytest.mark.django_db


def test_training_a_regression_recipe_stores_the_dle_reference_and_error_models(
        tiny_recipe, tiny_csv, data_scientist):
    call_command("train_model", "tiny-likes", "--data", str(tiny_csv), "--user", "dana",
                 stdout=StringIO(), stderr=StringIO())
    version = MLModelVersion.objects.get(model__name="tiny-likes")

    reference = version.training_report["estimation"]
    loaded = artifacts.bundle_load(manifest=version.artifact_manifest,
                                   model_sha256=version.model_sha256)

    assert (reference["method"], reference["rows"], reference["seed"]) == (
        "dle", version.training_report["validation_rows"], 42)
    # Inputs only (region is protected, not an input), then the model's prediction.
    assert reference["columns"] == [{"name": "followers", "kind": "numeric"},
                                    {"name": "has_link", "kind": "numeric"},
                                    {"name": "platform", "kind": "categorical"}]
    assert {e["name"] for e in version.artifact_manifest["artifacts"]} == {
        "estimator", "reference_profile", estimation.ABSOLUTE_ERROR_MODEL,
        estimation.SQUARED_ERROR_MODEL}
    assert reference["estimated"]["mae"] == pytest.approx(reference["realized"]["mae"],
                                                          rel=0.5)
    assert loaded.estimator.predict(pandas.DataFrame(
        {"followers": [500.0], "has_link": [1.0], "platform": ["tiktok"]}))[0] > 0


def test_register_model_fits_a_calibrator_for_miscalibrated_probabilities(tmp_path,
                                                                          data_scientist):
    rng = numpy.random.default_rng(0)
    frame = pandas.DataFrame({"visits": rng.normal(0, 1, 1500)})
    # Outcomes far rarer than the model's probabilities say.
    estimator = LogisticRegression().fit(frame[["visits"]][:500],
                                         (frame["visits"][:500] > 0).astype(int))
    probability = estimator.predict_proba(frame[["visits"]][500:])[:, 1]
    frame["converted"] = 0
    frame.loc[500:, "converted"] = (rng.random(1000) < probability ** 4).astype(int)
    artifact, data = tmp_path / "lead.skops", tmp_path / "lead.csv"
    skops.io.dump(estimator, artifact)
    frame[500:].to_csv(data, index=False)

    version = model_version_register_external(
        name="lead-score", task="binary_classification", user=data_scientist,
        artifact_path=str(artifact), data_path=str(data), target="converted")

    calibration = version.training_report["estimation"]["calibration"]
    assert calibration["ece"] > calibration["max_ece"]
    assert calibration["calibrator"] == estimation.CALIBRATOR
    assert estimation.CALIBRATOR in {e["name"] for e in version.artifact_manifest["artifacts"]}
    reference = version.training_report["estimation"]
    assert reference["estimated"]["accuracy"] == pytest.approx(
        reference["realized"]["accuracy"], abs=0.02)


def test_a_multiclass_model_stores_no_estimation_reference(tmp_path, data_scientist):
    rng = numpy.random.default_rng(1)
    frame = pandas.DataFrame({"a": rng.normal(0, 1, 90)})
    frame["kind"] = numpy.digitize(frame["a"], [-0.5, 0.5])
    artifact, data = tmp_path / "kind.skops", tmp_path / "kind.csv"
    skops.io.dump(LogisticRegression().fit(frame[["a"]], frame["kind"]), artifact)
    frame.to_csv(data, index=False)

    version = model_version_register_external(
        name="kinds", task="multiclass_classification", user=data_scientist,
        artifact_path=str(artifact), data_path=str(data), target="kind")

    assert "estimation" not in version.training_report
    assert {e["name"] for e in version.artifact_manifest["artifacts"]} == {
        "estimator", "reference_profile"}
