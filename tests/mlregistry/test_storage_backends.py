"""Artifacts go through Django's storage API only (docs/registry.md#artifacts, docs/deploy.md): with
another backend in STORAGES["artifacts"] (Django's InMemoryStorage standing in for S3), a bundle is
stored, verified, loaded and served from it, and nothing reaches the filesystem folder the default
backend would use."""

import json
from io import StringIO

import pandas
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import InMemoryStorage, storages
from django.core.management import call_command
from django.core.management.base import CommandError

from mlregistry import artifacts
from predictions import services as serving
from predictions.loader import model_cache
from tests.factories import register_deployed_version, register_version, tiny_estimator
from training import services as training

INSTANCES = [{"followers": 3.0, "hashtags": 2}, {"followers": 10.5, "hashtags": 0}]


@pytest.fixture(autouse=True)
def memory_storage(artifact_dir, settings) -> InMemoryStorage:
    """STORAGES["artifacts"] swapped for InMemoryStorage, after tests/conftest.py pointed it
    at this test's folder (`artifact_dir`), which must stay empty."""
    settings.STORAGES = {**settings.STORAGES,
                         "artifacts": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    storage = storages["artifacts"]
    assert isinstance(storage, InMemoryStorage)
    return storage


@pytest.fixture(autouse=True)
def _fresh_model_cache(settings):
    """The serving cache is process-global: start and end empty, and follow the registry."""
    settings.REGISTRY_POLL_SECONDS = 0
    model_cache.clear()
    yield
    model_cache.clear()


def files_under(folder) -> list:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def test_registered_bundle_is_stored_in_the_configured_backend(data_scientist, memory_storage):
    version = register_version(user=data_scientist)

    paths = artifacts.manifest_paths(version.artifact_manifest)
    assert paths and all(memory_storage.exists(path) for path in paths)
    manifest = artifacts.manifest_name(version.model_sha256)
    with memory_storage.open(manifest, "rb") as handle:
        assert artifacts.manifest_sha256(json.loads(handle.read())) == version.model_sha256


def test_bundle_loads_back_verified_with_the_same_predictions(data_scientist):
    version = register_version(user=data_scientist, slope=3.0)

    bundle = artifacts.bundle_load(manifest=version.artifact_manifest,
                                   model_sha256=version.model_sha256)

    frame = pandas.DataFrame(INSTANCES)[["followers", "hashtags"]].to_numpy()
    assert bundle.estimator.predict(frame).tolist() == tiny_estimator(3.0).predict(frame).tolist()


def test_version_is_served_from_the_configured_backend(people):
    register_deployed_version(**people, slope=3.0)

    result = serving.prediction_make(model_name="engagement-likes", instances=INSTANCES,
                                     request_id="storage-backend")

    frame = pandas.DataFrame(INSTANCES).to_numpy()
    assert [p["value"] for p in result.predictions] == pytest.approx(
        tiny_estimator(3.0).predict(frame).tolist())
    assert {p["version"] for p in result.predictions} == {"1.0.0"}


def test_nothing_reaches_the_filesystem_artifact_folder(people, artifact_dir, tmp_path,
                                                       memory_storage):
    data = tmp_path / "posts.csv"
    pandas.DataFrame({"followers": [1.0, 2.0, 3.0], "hashtags": [0, 1, 2],
                      "likes": [5.0, 6.0, 9.0]}).to_csv(data, index=False)

    register_deployed_version(**people)
    dataset = training.dataset_register(model_name="engagement-likes", path=data,
                                        user=people["user"])
    serving.prediction_make(model_name="engagement-likes", instances=INSTANCES,
                            request_id="storage-backend")

    assert memory_storage.exists(dataset.storage_path)
    assert files_under(artifact_dir) == []


def test_verify_artifacts_checks_the_configured_backend(data_scientist):
    version = register_version(user=data_scientist)
    out = StringIO()

    call_command("verify_artifacts", stdout=out)

    assert out.getvalue().splitlines() == [f"OK engagement-likes {version.version}"]


def test_verify_artifacts_names_a_file_altered_in_the_configured_backend(
        data_scientist, memory_storage):
    version = register_version(user=data_scientist)
    estimator = next(entry for entry in version.artifact_manifest["artifacts"]
                     if entry["name"] == "estimator")
    memory_storage.delete(estimator["path"])
    memory_storage.save(estimator["path"], ContentFile(b"not the estimator"))

    with pytest.raises(CommandError, match=r"1 version\(s\) failed verification; first: "
                                           r"engagement-likes 1\.0\.0: artifact estimator"):
        call_command("verify_artifacts")
