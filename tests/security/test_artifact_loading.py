"""Artifacts are only loaded after their hash matches (docs/registry.md#artifacts), on the
serving path.

mlregistry.artifacts.bundle_load is proven in tests/mlregistry/test_artifacts.py (a flipped byte in
the estimator, the reference profile or the manifest, a missing file, another scikit-learn minor
version: refused before anything is loaded, with a tripwire object that would leave a trace if it
were). Here the same tripwire is deployed and served, as a skops file and as the pickle of a version
from before skops: the serving cache (predictions.loader), reached through predict and
/api/v1/ready, refuses the tampered version with 503 and a critical alert, and never loads it.
Rollback to a tampered version is refused in tests/mlregistry/test_services.py
(test_rollback_refused_when_target_artifact_tampered).
"""

import json

import pytest

from mlregistry import services as registry
from mlregistry.models import MLModelVersion
from monitoring.models import Alert
from predictions.models import PredictionLog
from tests.factories import TRIPWIRE_MODEL as MODEL
from tests.factories import approve_as_before_skops, register_tripwire_version


@pytest.fixture(params=["skops", "pickle"])
def deployed(request, people, tripwire) -> MLModelVersion:
    """A champion whose estimator artifact is the tripwire: a skops file whose type a
    reviewer trusted, or a pickle approved before safe model files (as an upgrade finds it:
    today's approval refuses pickles)."""
    pickled = request.param == "pickle"
    version = register_tripwire_version(user=people["user"], reviewer=people["reviewer"],
                                        path=tripwire, pickled=pickled)
    if pickled:
        approve_as_before_skops(version, people["reviewer"])
    else:
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


def test_intact_tripwire_is_loaded_when_served(deployed, tripwire, deserializations,
                                                  anonymous_client):
    # The control: the serving path does load an intact bundle, and the tripwire shows it.
    anonymous_client.get("/api/v1/ready")

    assert tripwire.is_dir()
    assert deserializations


@pytest.mark.parametrize("target", ["estimator", "reference_profile", "manifest"])
def test_predict_refuses_a_tampered_version_without_loading(
        deployed, tripwire, deserializations, api_client, artifact_dir, target):
    tamper(deployed, target, artifact_dir)

    response = api_client.post_json(f"/api/v1/models/{MODEL}/predict",
                                    [{"followers": 1.0, "hashtags": 2}])

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_integrity_error"
    assert not tripwire.exists()
    assert deserializations == []
    assert PredictionLog.objects.count() == 0
    alert = Alert.objects.get(kind="integrity", model_name=MODEL)
    assert (alert.severity, alert.version) == ("critical", deployed.version)


def test_ready_refuses_a_tampered_version_without_loading(deployed, tripwire, deserializations,
                                                          api_client, artifact_dir):
    tamper(deployed, "estimator", artifact_dir)

    response = api_client.get("/api/v1/ready")

    assert response.status_code == 503
    assert MODEL in response.json()["error"]["details"]
    assert not tripwire.exists()
    assert deserializations == []
