"""The keyed audit chain, attacked by an insider with database access
(docs/registry.md#audit-trail).

- The approved champion's artifact is swapped for a bundle whose estimator runs code when
  unpickled, by updating only `artifact_manifest` and `model_sha256` on its row: the
  chain sealed the approved artifact, so verify_audit and verify_artifacts fail, and
  nothing serves or unpickles the swapped bytes.
- An approval's notes are rewritten and the chain recomputed with plain SHA-256 (no key):
  verify_audit names the row.
"""

import hashlib
import json
import socket
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from mlregistry import artifacts, audit
from mlregistry.models import MLModelVersion, ModelTransition
from monitoring.models import Alert
from predictions.models import PredictionLog
from tests.factories import (
    Tripwire,
    pickled_bundle,
    register_approved_version,
    register_deployed_version,
)

pytestmark = pytest.mark.django_db

NAME = "engagement-likes"


@pytest.fixture
def swapped(people, tripwire) -> MLModelVersion:
    """The approved champion, whose row now points at a bundle nobody approved."""
    champion = register_deployed_version(**people)
    # The swapped-in bundle even trusts its own Tripwire type: only the chain stands between
    # it and serving.
    bundle = pickled_bundle(estimator=Tripwire(tripwire),
                            reference_profile=champion.reference_profile)
    artifacts.bundle_save(bundle)
    MLModelVersion.objects.filter(pk=champion.pk).update(artifact_manifest=bundle.manifest,
                                                         model_sha256=bundle.model_sha256)
    return MLModelVersion.objects.get(pk=champion.pk)


def verify_audit(*args) -> str:
    out = StringIO()
    call_command("verify_audit", *args, stdout=out)
    return out.getvalue()


def test_the_swapped_artifact_itself_is_consistent(swapped):
    # The swap is careful: the manifest and every file match the row's new model_sha256.
    assert artifacts.bundle_verify(manifest=swapped.artifact_manifest,
                                   model_sha256=swapped.model_sha256)


def test_verify_audit_names_the_version_whose_artifact_was_swapped(swapped):
    with pytest.raises(CommandError) as failed:
        verify_audit(NAME)

    assert NAME in str(failed.value)
    assert f"version {swapped.version}'s model_sha256 differs" in str(failed.value)


def test_verify_artifacts_refuses_an_artifact_the_chain_did_not_seal(swapped):
    with pytest.raises(CommandError) as failed:
        call_command("verify_artifacts", NAME, stdout=StringIO())

    assert f"{swapped.version}" in str(failed.value)


def test_the_swapped_artifact_is_never_served_nor_unpickled(swapped, tripwire, api_client,
                                                            anonymous_client):
    instance = {"followers": 1.0, "hashtags": 2}

    ready = anonymous_client.get("/api/v1/ready")
    predicted = api_client.post_json(f"/api/v1/models/{NAME}/predict", [instance])
    explained = api_client.post_json(f"/api/v1/models/{NAME}/explain", [instance])

    assert ready.status_code == 503
    assert [predicted.status_code, explained.status_code] == [503, 503]
    assert predicted.json()["error"]["code"] == "model_integrity_error"
    assert not tripwire.exists()
    assert PredictionLog.objects.count() == 0
    alert = Alert.objects.get(kind="integrity", model_name=NAME)
    assert (alert.severity, alert.version) == ("critical", swapped.version)


def _plain_sha256(content: dict) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_notes_rewritten_and_the_chain_recomputed_without_the_key_are_detected(people):
    version = register_approved_version(**people)
    approval = ModelTransition.objects.get(version=version, reason="approved")
    ModelTransition.objects.filter(pk=approval.pk).update(notes="approved after full review")
    previous = ""
    for row in ModelTransition.objects.filter(model=version.model).order_by("sequence"):
        row.previous_sha256 = previous
        row.row_sha256 = _plain_sha256(row.sealed_content())
        ModelTransition.objects.filter(pk=row.pk).update(previous_sha256=previous,
                                                         row_sha256=row.row_sha256)
        previous = row.row_sha256

    with pytest.raises(CommandError) as failed:
        verify_audit(NAME)

    assert NAME in str(failed.value) and "(sequence 1)" in str(failed.value)
    assert "was not sealed with audit key" in str(failed.value)


def test_rows_sealed_before_a_key_rotation_verify_with_the_retired_key(people, settings):
    settings.AUDIT_HMAC_KEY, settings.AUDIT_HMAC_KEY_ID = "old-key-" + "x" * 24, "2025"
    version = register_approved_version(**people)
    settings.AUDIT_HMAC_KEY, settings.AUDIT_HMAC_KEY_ID = "new-key-" + "y" * 24, "2026"
    register_deployed_version(**people, slope=3.0)

    settings.AUDIT_HMAC_RETIRED_KEYS = {"2025": "old-key-" + "x" * 24}
    kept = verify_audit(NAME)
    settings.AUDIT_HMAC_RETIRED_KEYS = {}

    assert f"{NAME}: OK" in kept
    assert {row.key_id for row in ModelTransition.objects.filter(version=version)} == {"2025"}
    with pytest.raises(CommandError, match="not sealed with audit key 2025"):
        verify_audit(NAME)


def test_a_commands_row_records_the_os_user_and_host(testing_version, reviewer):
    call_command("approve", NAME, testing_version.version, "--user", "rita", "--notes", "ok",
                 stdout=StringIO())

    row = ModelTransition.objects.get(version=testing_version, reason="approved")
    assert row.host == socket.gethostname() and row.os_user
    assert row.seal_valid
    registered = ModelTransition.objects.get(version=testing_version, reason="registered")
    assert (registered.os_user, registered.host) == ("", "")


def test_every_row_binds_the_artifact_and_is_sealed_with_the_current_key(people, settings):
    settings.AUDIT_HMAC_KEY, settings.AUDIT_HMAC_KEY_ID = "k" * 32, "current"
    version = register_deployed_version(**people)

    rows = list(ModelTransition.objects.filter(version=version))

    assert {row.model_sha256 for row in rows} == {version.model_sha256}
    assert {row.key_id for row in rows} == {"current"}
    key = audit.key_for("current")
    assert all(audit.content_seal(row.sealed_content(), key) == row.row_sha256 for row in rows)
