"""Artifacts are only unpickled after their hash matches (docs/registry.md#artifacts), on the
serving path.

mlregistry.artifacts.bundle_load is proven in tests/mlregistry/test_artifacts.py (a
flipped byte in the estimator, the reference profile or the manifest, a missing file,
another scikit-learn minor version: refused before anything is unpickled, with a
tripwire object that would leave a trace if it were). Here the same tripwire is deployed
and served: the serving cache (predictions.loader), reached through predict and
/api/v1/ready, refuses the tampered version with 503 and a critical alert, and never
unpickles it. Rollback to a tampered version is refused in tests/mlregistry/test_services.py
(test_rollback_refused_when_target_artifact_tampered).
"""

import json

import joblib
import pytest

from mlregistry import artifacts, registration
from mlregistry import services as registry
from mlregistry.models import MLModelVersion
from monitoring.models import Alert
from predictions.models import PredictionLog
from tests.factories import SCHEMA, Tripwire

MODEL = "tripwire-likes"


@pytest.fixture
def joblib_loads(monkeypatch) -> list:
    """Every joblib.load the artifact store makes."""
    calls = []
    real_load = joblib.load

    def spy(*args, **kwargs):
        calls.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(artifacts.joblib, "load", spy)
    return calls


@pytest.fixture
def deployed(people, tripwire) -> MLModelVersion:
    """A champion whose estimator artifact is the tripwire."""
    version = registration.model_version_register(
        name=MODEL, task="regression", user=people["user"], estimator=Tripwire(tripwire),
        feature_schema=SCHEMA, training_dataset_sha256="0" * 64, training_samples=10,
        training_duration_seconds=0.01, hyperparameters={}, metrics={"r2": 0.9},
        reference_profile={"features": {}})
    version = registry.model_version_approve(version=version, user=people["reviewer"],
                                             notes="tripwire")
    return registry.model_version_deploy(version=version, user=people["deployer"],
                                         notes="tripwire")


def tamper(version: MLModelVersion, target: str, artifact_dir) -> None:
    """Flip one byte of an artifact file, or of a digest in the version's stored manifest."""
    entry = next(e for e in version.artifact_manifest["artifacts"]
                 if e["name"] == ("estimator" if target == "manifest" else target))
    if target == "manifest":
        text = json.dumps(version.artifact_manifest)
        digest = entry["sha256"]
        flipped = digest[:10] + ("0" if digest[10] != "0" else "1") + digest[11:]
        MLModelVersion.objects.filter(pk=version.pk).update(
            artifact_manifest=json.loads(text.replace(digest, flipped)))
        return
    file = artifact_dir / entry["path"]
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))


def test_intact_tripwire_is_unpickled_when_served(deployed, tripwire, joblib_loads,
                                                  anonymous_client):
    # The control: the serving path does unpickle an intact bundle, and the tripwire shows it.
    anonymous_client.get("/api/v1/ready")

    assert tripwire.is_dir()
    assert joblib_loads


@pytest.mark.parametrize("target", ["estimator", "reference_profile", "manifest"])
def test_predict_refuses_a_tampered_version_without_unpickling(
        deployed, tripwire, joblib_loads, api_client, artifact_dir, target):
    tamper(deployed, target, artifact_dir)

    response = api_client.post_json(f"/api/v1/models/{MODEL}/predict",
                                    [{"followers": 1.0, "hashtags": 2}])

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_integrity_error"
    assert not tripwire.exists()
    assert joblib_loads == []
    assert PredictionLog.objects.count() == 0
    alert = Alert.objects.get(kind="integrity", model_name=MODEL)
    assert (alert.severity, alert.version) == ("critical", deployed.version)


def test_ready_refuses_a_tampered_version_without_unpickling(deployed, tripwire, joblib_loads,
                                                             anonymous_client, artifact_dir):
    tamper(deployed, "estimator", artifact_dir)

    response = anonymous_client.get("/api/v1/ready")

    assert response.status_code == 503
    assert MODEL in response.json()["error"]["details"]
    assert not tripwire.exists()
    assert joblib_loads == []
