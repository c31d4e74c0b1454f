"""Artifact integrity: tampering, missing files, environment checks, round trips."""

import copy
import json
import os
import subprocess
import sys

import numpy
import pytest
import sklearn
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from sklearn.ensemble import GradientBoostingRegressor

from mlregistry import artifacts, registration
from mlregistry.artifacts import ArtifactIntegrityError, IncompatibleEnvironmentError
from mlregistry.models import MLModelVersion
from tests.factories import SCHEMA, register_tripwire_version


def register(*, user, estimator, name="engagement-likes") -> MLModelVersion:
    return registration.model_version_register(
        name=name, task="regression", user=user, estimator=estimator, feature_schema=SCHEMA,
        training_dataset_sha256="0" * 64, training_samples=10, training_duration_seconds=0.01,
        hyperparameters={}, metrics={"r2": 0.9}, reference_profile={"features": {"x": [1, 2]}},
    )


@pytest.fixture(params=["skops", "pickle"])
def tripwire_version(request, data_scientist, reviewer, tripwire):
    """A Tripwire estimator as a skops file (its type trusted by a reviewer) and as a pickle
    of a version registered before skops: both are verified before anything is loaded."""
    return register_tripwire_version(user=data_scientist, reviewer=reviewer, path=tripwire,
                                     pickled=request.param == "pickle")


def entry(version: MLModelVersion, name: str) -> dict:
    return next(e for e in version.artifact_manifest["artifacts"] if e["name"] == name)


def flip_byte(version: MLModelVersion, target: str, artifact_dir) -> str:
    """Flip one byte of an artifact file, or of the manifest JSON in the version's row.

    Returns what a report must name: the file's storage path, or "manifest".
    """
    if target == "manifest":
        text = artifacts.canonical_json(version.artifact_manifest).decode()
        # A byte inside a hex digest: the JSON stays valid, one byte differs.
        index = text.index(entry(version, "estimator")["sha256"])
        flipped = "0" if text[index] != "0" else "1"
        text = text[:index] + flipped + text[index + 1:]
        MLModelVersion.objects.filter(pk=version.pk).update(artifact_manifest=json.loads(text))
        return "manifest"
    path = entry(version, target)["path"]
    file = artifact_dir / path
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))
    return path


def load(version: MLModelVersion) -> artifacts.LoadedBundle:
    version.refresh_from_db()
    return artifacts.bundle_load(manifest=version.artifact_manifest,
                                 model_sha256=version.model_sha256)


def test_verify_artifacts_reports_intact_versions(testing_version, capsys):
    call_command("verify_artifacts")

    assert capsys.readouterr().out.strip() == "OK engagement-likes 1.0.0"


@pytest.mark.parametrize("target", ["estimator", "reference_profile", "manifest"])
def test_verify_artifacts_fails_naming_version_and_file_after_one_byte_flip(
    testing_version, artifact_dir, target, capsys,
):
    named = flip_byte(testing_version, target, artifact_dir)

    with pytest.raises(CommandError) as raised:
        call_command("verify_artifacts", "engagement-likes")

    message = str(raised.value)
    assert "engagement-likes 1.0.0" in message
    assert named in message
    assert "\n" not in message
    assert capsys.readouterr().out.startswith("FAILED engagement-likes 1.0.0")


def test_verify_artifacts_names_the_first_failing_version(data_scientist, artifact_dir):
    register(user=data_scientist, estimator=GradientBoostingRegressor(n_estimators=2).fit(
        [[0.0], [1.0]], [0.0, 1.0]))
    second = register(user=data_scientist, estimator=GradientBoostingRegressor(
        n_estimators=3).fit([[0.0], [1.0]], [0.0, 1.0]))
    flip_byte(second, "estimator", artifact_dir)

    with pytest.raises(CommandError, match=r"first: engagement-likes 1\.1\.0"):
        call_command("verify_artifacts")


def test_bundle_load_loads_an_intact_bundle(tripwire_version, tripwire, deserializations):
    # The control for the tests below: the tripwire and the spy do notice loading.
    bundle = load(tripwire_version)

    assert tripwire.is_dir()
    assert len(deserializations) == 1
    assert bundle.objects["reference_profile"] == {"features": {}}


@pytest.mark.parametrize("target", ["estimator", "reference_profile", "manifest"])
def test_bundle_load_refuses_a_flipped_byte_without_loading(
    tripwire_version, tripwire, deserializations, artifact_dir, target,
):
    flip_byte(tripwire_version, target, artifact_dir)

    with pytest.raises(ArtifactIntegrityError) as raised:
        load(tripwire_version)

    assert raised.value.code == "model_integrity_error"
    assert not tripwire.exists()
    assert deserializations == []


def test_bundle_load_refuses_a_missing_file(tripwire_version, tripwire, deserializations,
                                             artifact_dir):
    path = entry(tripwire_version, "reference_profile")["path"]
    (artifact_dir / path).unlink()

    with pytest.raises(ArtifactIntegrityError, match="missing") as raised:
        load(tripwire_version)

    assert raised.value.details["path"] == path
    assert not tripwire.exists()
    assert deserializations == []


def with_sklearn_version(version: MLModelVersion, recorded: str) -> None:
    """Record another scikit-learn version and re-hash the manifest consistently."""
    manifest = copy.deepcopy(version.artifact_manifest)
    manifest["environment"]["scikit-learn"] = recorded
    MLModelVersion.objects.filter(pk=version.pk).update(
        artifact_manifest=manifest, model_sha256=artifacts.manifest_sha256(manifest))
    version.refresh_from_db()


def test_bundle_load_refuses_another_sklearn_minor_version_without_loading(
    tripwire_version, tripwire, deserializations,
):
    major, minor = sklearn.__version__.split(".")[:2]
    with_sklearn_version(tripwire_version, f"{major}.{int(minor) + 1}.0")
    # The bundle itself is intact: only the environment differs.
    artifacts.bundle_verify(manifest=tripwire_version.artifact_manifest,
                            model_sha256=tripwire_version.model_sha256)

    with pytest.raises(IncompatibleEnvironmentError) as raised:
        load(tripwire_version)

    assert raised.value.code == "incompatible_environment"
    assert not tripwire.exists()
    assert deserializations == []


def test_bundle_load_accepts_another_sklearn_patch_release(tripwire_version, tripwire):
    major, minor = sklearn.__version__.split(".")[:2]
    with_sklearn_version(tripwire_version, f"{major}.{minor}.999")

    load(tripwire_version)

    assert tripwire.is_dir()


CHILD = """
import json, sys
import django
django.setup()
import numpy
from mlregistry import artifacts
request = json.load(sys.stdin)
bundle = artifacts.bundle_load(manifest=request["manifest"], model_sha256=request["model_sha256"])
print(json.dumps(bundle.estimator.predict(numpy.array(request["features"])).tolist()))
"""


def test_bundle_round_trips_into_a_new_process(data_scientist, artifact_dir, tmp_path):
    rng = numpy.random.default_rng(0)
    train = rng.normal(size=(200, 3))
    estimator = GradientBoostingRegressor(n_estimators=30, random_state=0).fit(
        train, train @ [1.0, -2.0, 0.5] + rng.normal(size=200))
    version = register(user=data_scientist, estimator=estimator)
    features = rng.normal(size=(50, 3))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pulselytics.settings.base",
        "PULSELYTICS_ENV": "development",
        "PULSELYTICS_VAR_DIR": str(tmp_path / "child-var"),
        "ARTIFACT_STORAGE_BACKEND": "django.core.files.storage.FileSystemStorage",
        "ARTIFACT_STORAGE_OPTIONS": json.dumps({"location": str(artifact_dir)}),
    }
    request = {"manifest": version.artifact_manifest, "model_sha256": version.model_sha256,
               "features": features.tolist()}

    child = subprocess.run(
        [sys.executable, "-c", CHILD], input=json.dumps(request), env=env,
        cwd=django_settings.BASE_DIR, capture_output=True, text=True, check=False,
    )

    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout) == estimator.predict(features).tolist()
