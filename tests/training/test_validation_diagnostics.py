"""Validation diagnostics stored on the version, by training and by `register_model`, on the
rows the validation metrics were computed on."""

from io import StringIO

import numpy
import pandas
import pytest
import skops.io
from django.core.management import call_command
from django.template.loader import render_to_string
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix

from core.ml.kinds import BINARY
from mlregistry.models import MLModelVersion
from mlregistry.validation_charts import validation_diagnostics_chart
from training.registration import model_version_register_external


@pytest.fixture
def trained(tiny_recipe, tiny_csv, data_scientist) -> MLModelVersion:
    call_command("train_model", "tiny-likes", "--data", str(tiny_csv), "--user", "dana",
                 stdout=StringIO(), stderr=StringIO())
    return MLModelVersion.objects.get(model__name="tiny-likes")


@pytest.fixture
def registered(tmp_path, data_scientist):
    """A binary LogisticRegression registered on a file of 150 rows, 20 without a target;
    the version, the labelled rows and the estimator."""
    features, target = make_classification(n_samples=150, n_features=4, random_state=0)
    frame = pandas.DataFrame(features, columns=["f0", "f1", "f2", "f3"])
    frame["default"] = target.astype(float)
    frame.loc[frame.index[-20:], "default"] = numpy.nan
    labelled = frame[frame["default"].notna()]
    estimator = LogisticRegression().fit(labelled[["f0", "f1", "f2", "f3"]], labelled["default"])
    artifact, data = tmp_path / "scorecard.skops", tmp_path / "scorecard.csv"
    skops.io.dump(estimator, artifact)
    frame.to_csv(data, index=False)
    version = model_version_register_external(
        name="scorecard", task=BINARY, user=data_scientist, artifact_path=str(artifact),
        data_path=str(data), target="default")
    return version, labelled, estimator


def test_a_trained_recipe_stores_residuals_of_its_validation_rows(trained):
    report = trained.training_report

    diagnostics = report["validation_diagnostics"]
    assert diagnostics["kind"] == "residuals"
    assert diagnostics["rows"] == report["validation_rows"] == 40
    assert sum(b["count"] for b in diagnostics["residuals"]["bins"]) == 40


def test_a_trained_recipes_residuals_are_those_its_metrics_were_computed_from(trained):
    sample = trained.training_report["validation_diagnostics"]["residuals"]["sample"]

    # Every validation row is in the sample (40 <= 300): their mean |residual| is the MAE.
    assert numpy.mean([abs(residual) for _, residual in sample]) == pytest.approx(
        trained.metrics["mae"])


def test_register_model_stores_diagnostics_of_the_files_labelled_rows(registered):
    version, labelled, estimator = registered

    diagnostics = version.training_report["validation_diagnostics"]
    assert diagnostics["rows"] == version.training_samples == 130
    assert sum(b["count"] for b in diagnostics["calibration"]["bins"]) == 130
    assert diagnostics["confusion"]["counts"] == confusion_matrix(
        labelled["default"], estimator.predict(labelled[["f0", "f1", "f2", "f3"]])).tolist()


def test_register_model_records_the_labelled_rows_as_the_validation_rows(registered):
    version, _, _ = registered

    assert version.training_report["validation_rows"] == 130
    assert version.training_report["dataset"] == "scorecard.csv"


def test_stored_diagnostics_draw_on_the_version_page(registered):
    version, _, _ = registered
    chart = validation_diagnostics_chart(version.training_report.get("validation_diagnostics"))

    html = render_to_string("admin/mlregistry/mlmodelversion/evidence/validation.html",
                            {"validation_chart": chart})

    assert "Computed on the 130 validation rows" in html
    assert 'class="validation-chart reliability-chart"' in html
    assert 'class="confusion-matrix"' in html
