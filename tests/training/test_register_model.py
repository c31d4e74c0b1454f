"""`register_model`: an externally trained estimator becomes a version in testing."""

import zipfile
from io import StringIO

import numpy
import pandas
import pytest
import skops.io
from django.core.management import CommandError, call_command
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from core.ml.profile import DECILES
from core.ml.schema import input_feature_names
from mlregistry import artifacts, selectors, services
from mlregistry.models import MLModel, MLModelVersion, ModelTransition, Status


@pytest.fixture(scope="module")
def breast_cancer(tmp_path_factory):
    """Breast-cancer data as a CSV and a GradientBoostingClassifier fitted on it (a skops file)."""
    folder = tmp_path_factory.mktemp("breast-cancer")
    frame = load_breast_cancer(as_frame=True).frame
    features = frame.drop(columns="target")
    estimator = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(
        features, frame["target"])
    data, artifact = folder / "cancer.csv", folder / "gbc.skops"
    frame.to_csv(data, index=False)
    skops.io.dump(estimator, artifact)
    return {"folder": folder, "frame": frame, "features": features, "estimator": estimator,
            "data": data, "artifact": artifact}


def register(cancer, *, name="cancer-risk", user="dana", artifact=None, data=None,
             target="target", extra=()) -> list[str]:
    out = StringIO()
    call_command(
        "register_model", name, "--artifact", str(artifact or cancer["artifact"]),
        "--data", str(data or cancer["data"]), "--target", target,
        "--task", "binary_classification", "--user", user, *extra, stdout=out,
    )
    return out.getvalue().splitlines()


def registry_is_empty(artifact_dir) -> bool:
    return (
        not MLModel.objects.exists() and not MLModelVersion.objects.exists()
        and not ModelTransition.objects.exists()
        and not (artifact_dir.exists() and any(p.is_file() for p in artifact_dir.rglob("*")))
    )


def test_register_model_registers_a_testing_version_and_prints_it_last(
    breast_cancer, data_scientist,
):
    lines = register(breast_cancer)

    version = MLModelVersion.objects.get(model__name="cancer-risk")
    assert (version.version, version.status, version.created_by) == (
        "1.0.0", Status.TESTING, data_scientist)
    assert lines[-1] == "1.0.0"


def test_registered_bundle_predicts_exactly_like_the_original(breast_cancer, data_scientist):
    register(breast_cancer)
    version = MLModelVersion.objects.get(model__name="cancer-risk")

    bundle = artifacts.bundle_load(manifest=version.artifact_manifest,
                                   model_sha256=version.model_sha256)

    features = breast_cancer["features"]
    assert numpy.array_equal(bundle.estimator.predict_proba(features),
                             breast_cancer["estimator"].predict_proba(features))


def test_register_model_derives_schema_metrics_and_profile_from_the_data(
    breast_cancer, data_scientist,
):
    register(breast_cancer, extra=["--protected", "mean radius"])
    version = MLModelVersion.objects.get(model__name="cancer-risk")

    frame, estimator = breast_cancer["frame"], breast_cancer["estimator"]
    assert input_feature_names(version.feature_schema) == list(estimator.feature_names_in_)
    assert [f["name"] for f in version.feature_schema["features"] if f["protected"]] == [
        "mean radius"]
    probability = estimator.predict_proba(breast_cancer["features"])[:, 1]
    assert version.metrics["roc_auc"] == roc_auc_score(frame["target"], probability)
    assert version.training_samples == len(frame)
    assert version.training_dataset_sha256 == artifacts.sha256_file(breast_cancer["data"])
    radius = version.reference_profile["features"]["mean radius"]
    assert radius["edges"] == numpy.unique(numpy.quantile(frame["mean radius"], DECILES)).tolist()
    assert sum(version.reference_profile["output"]["counts"]) == len(frame)
    assert version.gate_results["validation"]["passed"] is True
    assert version.hyperparameters["params"]["n_estimators"] == 20


def test_second_registration_with_same_schema_is_a_minor_bump(breast_cancer, data_scientist):
    register(breast_cancer)

    lines = register(breast_cancer)

    assert lines[-1] == "1.1.0"


def test_registration_with_changed_schema_is_a_major_bump(breast_cancer, data_scientist, tmp_path):
    register(breast_cancer)
    frame = breast_cancer["frame"].drop(columns="worst symmetry")
    smaller = GradientBoostingClassifier(n_estimators=5, random_state=0).fit(
        frame.drop(columns="target"), frame["target"])
    artifact, data = tmp_path / "smaller.skops", tmp_path / "smaller.csv"
    skops.io.dump(smaller, artifact)
    frame.to_csv(data, index=False)

    lines = register(breast_cancer, artifact=artifact, data=data)

    assert lines[-1] == "2.0.0"


def test_register_model_records_a_failed_gate_against_a_better_production_version(
    breast_cancer, data_scientist, reviewer, deployer, tmp_path,
):
    register(breast_cancer)
    champion = MLModelVersion.objects.get(model__name="cancer-risk")
    services.model_version_approve(version=champion, user=reviewer, notes="strong")
    services.model_version_deploy(version=champion, user=deployer)
    frame = breast_cancer["frame"][["mean fractal dimension", "target"]]
    weak = GradientBoostingClassifier(n_estimators=1, max_depth=1, random_state=0).fit(
        frame[["mean fractal dimension"]], frame["target"])
    artifact, data = tmp_path / "weak.skops", tmp_path / "weak.csv"
    skops.io.dump(weak, artifact)
    frame.to_csv(data, index=False)

    lines = register(breast_cancer, artifact=artifact, data=data)

    candidate = MLModelVersion.objects.get(model__name="cancer-risk", version=lines[-1])
    gate = candidate.gate_results["validation"]
    assert gate["passed"] is False
    assert gate["production"] == champion.metrics["roc_auc"]
    assert candidate.status == Status.TESTING
    assert "validation gate: FAILED" in lines[-2]


def garbage_artifact(cancer, tmp_path):
    path = tmp_path / "garbage.skops"
    with zipfile.ZipFile(path, "w") as archive:  # a skops file in form only
        archive.writestr("schema.json", "{not json")
    return {"artifact": path}


def nan_data(cancer, tmp_path):
    frame = cancer["frame"].copy()
    frame.loc[3, "mean texture"] = numpy.nan
    path = tmp_path / "with-nan.csv"
    frame.to_csv(path, index=False)
    return {"data": path}


def text_data(cancer, tmp_path):
    frame = cancer["frame"].copy()
    frame["mean area"] = "large"
    path = tmp_path / "with-text.csv"
    frame.to_csv(path, index=False)
    return {"data": path}


def missing_feature_data(cancer, tmp_path):
    path = tmp_path / "missing-feature.csv"
    cancer["frame"].drop(columns="mean area").to_csv(path, index=False)
    return {"data": path}


@pytest.mark.parametrize(("failure", "arguments", "reason"), [
    ("unknown user", lambda cancer, tmp_path: {"user": "nobody"}, "no user named 'nobody'"),
    ("missing target column", lambda cancer, tmp_path: {"target": "diagnosis"},
     "column(s) not in the data: diagnosis"),
    ("unreadable artifact", garbage_artifact, "cannot load"),
    ("missing data file", lambda cancer, tmp_path: {"data": tmp_path / "absent.csv"},
     "no such file"),
    ("NaN the model cannot take", nan_data, "the model cannot take this data"),
    ("text the model cannot take", text_data, "the model cannot take this data"),
    ("feature column missing", missing_feature_data, "the data lacks: mean area"),
])
def test_register_model_failure_is_one_line_and_changes_nothing(
    breast_cancer, data_scientist, artifact_dir, tmp_path, failure, arguments, reason,
):
    with pytest.raises(CommandError) as raised:
        register(breast_cancer, **arguments(breast_cancer, tmp_path))

    message = str(raised.value)
    assert reason in message
    assert "\n" not in message
    assert registry_is_empty(artifact_dir)


def test_register_model_refuses_a_user_without_register_permission(
    breast_cancer, outsider, artifact_dir,
):
    with pytest.raises(CommandError, match=r"^permission_denied: olly may not register"):
        register(breast_cancer, user="olly")

    assert registry_is_empty(artifact_dir)


# --- fairness -----------------------------------------------------------------------------


def test_register_model_with_protected_column_stores_fairness_report_and_gate(
    breast_cancer, data_scientist, tmp_path,
):
    frame = breast_cancer["frame"].copy()
    frame["site"] = numpy.where(numpy.arange(len(frame)) % 2 == 0, "north", "south")  # not an input
    data = tmp_path / "with-site.csv"
    frame.to_csv(data, index=False)

    register(breast_cancer, data=data, extra=["--protected", "site"])

    version = MLModelVersion.objects.get(model__name="cancer-risk")
    predicted = breast_cancer["estimator"].predict(breast_cancer["features"])
    north = frame["site"] == "north"
    groups = version.fairness_report["attributes"]["site"]["groups"]
    assert groups["north"]["n"] == int(north.sum())
    assert groups["north"]["selection_rate"] == pytest.approx(predicted[north].mean())
    assert groups["south"]["selection_rate"] == pytest.approx(predicted[~north].mean())
    assert version.fairness_report["positive_label"] == 1
    gate = version.gate_results["fairness"]
    assert gate["passed"] is True
    assert gate["attributes"]["site"]["value"] == pytest.approx(
        version.fairness_report["attributes"]["site"]["demographic_parity_ratio"])


def test_register_model_without_protected_columns_records_a_passing_fairness_gate(
    breast_cancer, data_scientist,
):
    register(breast_cancer)

    version = MLModelVersion.objects.get(model__name="cancer-risk")
    assert version.fairness_report["attributes"] == {}
    assert version.gate_results["fairness"]["passed"] is True
    assert version.gate_results["fairness"]["reason"] == "no protected attributes"


@pytest.fixture
def biased_model(tmp_path):
    """A lead scorer whose positive predictions follow the protected `group` almost entirely."""
    rng = numpy.random.default_rng(0)
    group = numpy.repeat([0, 1], 200)
    activity = rng.normal(size=400)
    converted = ((group == 1) & (activity > -1.0)).astype(int)
    frame = pandas.DataFrame({"group": group, "activity": activity, "converted": converted})
    estimator = LogisticRegression().fit(frame[["group", "activity"]], frame["converted"])
    data, artifact = tmp_path / "leads.csv", tmp_path / "biased.skops"
    frame.to_csv(data, index=False)
    skops.io.dump(estimator, artifact)
    return {"data": data, "artifact": artifact}


def register_biased(biased_model) -> str:
    lines = register({}, name="lead-score", artifact=biased_model["artifact"],
                     data=biased_model["data"], target="converted",
                     extra=["--protected", "group"])
    return lines[-1]


def test_register_model_records_a_failed_fairness_gate_for_a_biased_model(
    biased_model, data_scientist,
):
    version_string = register_biased(biased_model)

    version = MLModelVersion.objects.get(model__name="lead-score", version=version_string)
    attribute = version.fairness_report["attributes"]["group"]
    assert attribute["groups"]["0"]["selection_rate"] < 0.1
    assert attribute["demographic_parity_ratio"] < 0.8
    assert version.gate_results["validation"]["passed"] is True
    assert version.gate_results["fairness"]["passed"] is False
    assert selectors.failed_gates(version) == ["fairness"]


def test_approve_of_a_version_failing_the_fairness_gate_needs_a_justification(
    biased_model, data_scientist, reviewer,
):
    version_string = register_biased(biased_model)

    with pytest.raises(CommandError, match=r"^gate_failed: .*fairness"):
        call_command("approve", "lead-score", version_string, "--user", "rita",
                     "--notes", "looks fine", stdout=StringIO())

    version = MLModelVersion.objects.get(model__name="lead-score", version=version_string)
    assert version.status == Status.TESTING


def test_approve_with_a_justification_overrides_the_failed_fairness_gate(
    biased_model, data_scientist, reviewer,
):
    version_string = register_biased(biased_model)

    call_command("approve", "lead-score", version_string, "--user", "rita", "--notes",
                 "reviewed", "--override-justification", "group is a sales region, by design",
                 stdout=StringIO())

    version = MLModelVersion.objects.get(model__name="lead-score", version=version_string)
    assert version.status == Status.STAGING
    assert version.override_justification == "group is a sales region, by design"
