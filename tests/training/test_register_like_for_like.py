"""`register_model` scores the production version on the candidate's labelled rows, as
training does on its validation rows (docs/training.md#validation-gate), and records why
when it cannot."""

from io import StringIO

import numpy
import pandas
import pytest
import skops.io
from django.core.management import call_command
from django.utils import timezone
from sklearn.linear_model import LinearRegression

from core.ml.kinds import REGRESSION
from core.ml.metrics import metrics_evaluate
from core.ml.schema import feature_spec
from mlregistry import services
from mlregistry.model_card import model_card_build
from mlregistry.models import MLModelVersion, Status
from tests.factories import artifact_tamper
from training.registration import model_version_register_external
from training.trainer import ProductionModel, production_compare

NAME = "loan-loss"


def loss_frame(n: int = 120, seed: int = 0, unlabelled: int = 0) -> pandas.DataFrame:
    """y = 4a - 2b + 3c + noise; the last `unlabelled` rows have no y."""
    rng = numpy.random.default_rng(seed)
    frame = pandas.DataFrame({name: rng.uniform(0, 10, n) for name in ("a", "b", "c")})
    frame["y"] = 4 * frame.a - 2 * frame.b + 3 * frame.c + rng.normal(0, 1, n)
    frame.loc[frame.index[n - unlabelled:], "y"] = numpy.nan
    return frame


def register(tmp_path, user, frame: pandas.DataFrame, inputs: list[str], file: str
             ) -> tuple[MLModelVersion, LinearRegression]:
    """Fit a LinearRegression on `inputs` of the labelled rows and register it on all of
    `frame` (the file has every column of the frame)."""
    labelled = frame[frame.y.notna()]
    estimator = LinearRegression().fit(labelled[inputs], labelled.y)
    artifact, data = tmp_path / f"{file}.skops", tmp_path / f"{file}.csv"
    skops.io.dump(estimator, artifact)
    frame.to_csv(data, index=False)
    version = model_version_register_external(
        name=NAME, task=REGRESSION, user=user, artifact_path=str(artifact),
        data_path=str(data), target="y")
    return version, estimator


@pytest.fixture
def production(tmp_path, data_scientist, reviewer, deployer):
    """Version 1.0.0 of NAME in production: a LinearRegression on a, b and c, and its
    estimator."""
    version, estimator = register(tmp_path, data_scientist, loss_frame(), ["a", "b", "c"],
                                  "production")
    services.model_version_approve(version=version, user=reviewer, notes="ok")
    services.model_version_deploy(version=version, user=deployer)
    version.refresh_from_db()
    return version, estimator


@pytest.fixture
def candidate_data():
    """A different file: 100 rows, of which 90 have a target."""
    return loss_frame(n=100, seed=1, unlabelled=10)


def test_register_model_scores_production_on_the_candidates_labelled_rows(
        tmp_path, data_scientist, production, candidate_data):
    production_version, production_estimator = production

    candidate, _ = register(tmp_path, data_scientist, candidate_data, ["a", "b", "c"], "next")

    comparison = candidate.training_report["production_comparison"]
    labelled = candidate_data[candidate_data.y.notna()]
    assert (comparison["version"], comparison["rows"], comparison["reason"]) == (
        production_version.version, 90, "")
    assert candidate.training_samples == 90
    assert comparison["metrics"] == metrics_evaluate(
        task=REGRESSION, estimator=production_estimator, features=labelled[["a", "b", "c"]],
        target=labelled.y)


def test_the_gate_compares_the_candidate_with_production_on_the_same_rows(
        tmp_path, data_scientist, production, candidate_data):
    production_version, _ = production

    candidate, _ = register(tmp_path, data_scientist, candidate_data, ["a", "b"], "weaker")

    gate = candidate.gate_results["validation"]
    same_rows = candidate.training_report["production_comparison"]["metrics"]["r2"]
    assert gate["production"] == same_rows != production_version.metrics["r2"]
    assert gate["passed"] is False  # without c the candidate explains far less


def test_the_model_card_treats_register_models_comparison_as_same_rows(
        tmp_path, data_scientist, production, candidate_data):
    candidate, _ = register(tmp_path, data_scientist, candidate_data, ["a", "b", "c"], "next")

    card = model_card_build(version=candidate)

    assert card["metrics_same_rows"] is True
    assert card["data"]["validation_rows"] == 90


def test_a_production_version_reading_columns_the_file_lacks_is_compared_by_its_own_metrics(
        tmp_path, data_scientist, production, candidate_data):
    production_version, _ = production

    candidate, _ = register(tmp_path, data_scientist, candidate_data.drop(columns="c"),
                            ["a", "b"], "no-c")

    comparison = candidate.training_report["production_comparison"]
    assert comparison["metrics"] is None
    assert comparison["reason"].startswith(
        f"production {production_version.version} could not be scored on these rows")
    assert candidate.gate_results["validation"]["production"] == production_version.metrics["r2"]
    assert model_card_build(version=candidate)["metrics_same_rows"] is False


def test_a_production_version_whose_files_do_not_load_is_recorded_with_the_reason(
        tmp_path, data_scientist, production, candidate_data):
    production_version, _ = production
    artifact_tamper(production_version)

    candidate, _ = register(tmp_path, data_scientist, candidate_data, ["a", "b", "c"], "next")

    comparison = candidate.training_report["production_comparison"]
    assert comparison["metrics"] is None
    assert comparison["reason"].startswith(
        f"production {production_version.version} could not be loaded: ")
    assert candidate.gate_results["validation"]["production"] == production_version.metrics["r2"]


def test_a_production_version_whose_files_were_cleaned_up_is_recorded_with_the_reason(
        tmp_path, data_scientist, production, candidate_data):
    production_version, _ = production
    MLModelVersion.objects.filter(pk=production_version.pk).update(
        artifacts_deleted_at=timezone.now())

    candidate, _ = register(tmp_path, data_scientist, candidate_data, ["a", "b", "c"], "next")

    comparison = candidate.training_report["production_comparison"]
    assert comparison["metrics"] is None
    assert "files were removed by clean-up" in comparison["reason"]


def test_without_a_production_version_register_model_records_no_comparison(
        tmp_path, data_scientist, candidate_data):
    version, _ = register(tmp_path, data_scientist, candidate_data, ["a", "b", "c"], "first")

    assert "production_comparison" not in version.training_report
    assert version.gate_results["validation"]["reason"] == "no production version to compare with"


def test_a_trained_candidate_records_why_production_did_not_load(
        tiny_recipe, tiny_csv, data_scientist, reviewer, deployer):
    def train(*extra):
        call_command("train_model", "tiny-likes", "--data", str(tiny_csv), "--user", "dana",
                     *extra, stdout=StringIO(), stderr=StringIO())

    train()
    first = MLModelVersion.objects.get(model__name="tiny-likes")
    services.model_version_approve(version=first, user=reviewer, notes="ok")
    services.model_version_deploy(version=first, user=deployer)
    artifact_tamper(first)

    train("--seed", "7")

    candidate = MLModelVersion.objects.get(model__name="tiny-likes", status=Status.TESTING)
    comparison = candidate.training_report["production_comparison"]
    assert comparison["metrics"] is None
    assert comparison["reason"].startswith(f"production {first.version} could not be loaded: ")


class QuotingModel:
    """Fails as a library may: quoting the value it could not take."""

    def predict(self, features):
        raise ValueError(f"unknown category {features['email'].iloc[0]!r}")


def test_production_that_fails_on_personal_features_is_recorded_without_the_message():
    schema = {"target": "y", "features": [feature_spec(name="email", dtype="category",
                                                       pii=True)]}
    production = ProductionModel(version="1.0.0", estimator=QuotingModel(), schema=schema)
    rows = pandas.DataFrame({"email": ["ana@personal.test"]})

    comparison = production_compare(production=production, task=REGRESSION, rows=rows,
                                    target=numpy.array([1.0]))

    assert comparison["reason"] == ("production 1.0.0 could not be scored on these rows: "
                                    "ValueError: message withheld: production has personal "
                                    "features")
