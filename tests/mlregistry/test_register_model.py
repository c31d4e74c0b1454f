"""`register_model`: an externally trained estimator becomes a version in testing."""

from io import StringIO

import joblib
import numpy
import pytest
from django.core.management import CommandError, call_command
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from mlregistry import artifacts, services
from mlregistry.models import MLModel, MLModelVersion, ModelTransition, Status
from mlregistry.schema import input_feature_names
from mlregistry.training.profile import DECILES


@pytest.fixture(scope="module")
def breast_cancer(tmp_path_factory):
    """Breast-cancer data as a CSV and a GradientBoostingClassifier fitted on it (joblib)."""
    folder = tmp_path_factory.mktemp("breast-cancer")
    frame = load_breast_cancer(as_frame=True).frame
    features = frame.drop(columns="target")
    estimator = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(
        features, frame["target"])
    data, artifact = folder / "cancer.csv", folder / "gbc.joblib"
    frame.to_csv(data, index=False)
    joblib.dump(estimator, artifact)
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
    artifact, data = tmp_path / "smaller.joblib", tmp_path / "smaller.csv"
    joblib.dump(smaller, artifact)
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
    artifact, data = tmp_path / "weak.joblib", tmp_path / "weak.csv"
    joblib.dump(weak, artifact)
    frame.to_csv(data, index=False)

    lines = register(breast_cancer, artifact=artifact, data=data)

    candidate = MLModelVersion.objects.get(model__name="cancer-risk", version=lines[-1])
    gate = candidate.gate_results["validation"]
    assert gate["passed"] is False
    assert gate["production"] == champion.metrics["roc_auc"]
    assert candidate.status == Status.TESTING
    assert "validation gate: FAILED" in lines[-2]


def garbage_artifact(cancer, tmp_path):
    path = tmp_path / "garbage.joblib"
    path.write_bytes(b"this is not a pickle")
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


@pytest.mark.parametrize("failure, arguments, reason", [
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
    with pytest.raises(CommandError, match="^permission_denied: olly may not register"):
        register(breast_cancer, user="olly")

    assert registry_is_empty(artifact_dir)
