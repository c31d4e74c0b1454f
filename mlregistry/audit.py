"""The audit trail's keyed hash chain (no database access; keys come from settings).

Each transition row's content (docs/registry.md#audit-trail) names who did what to which
version (or to the model itself: its description), and binds what that version is: its
`model_sha256` (the manifest's hash, so every artifact file), its dataset hash, the hashes
of its feature schema and gate results, its traffic and shadow flag; what the model is
(the hash of its name, task, client, global model and description); and for a command the
OS user and host that ran it. The content
includes the previous row's seal, and each row is sealed with HMAC-SHA256 under the audit
key: rewriting a row and recomputing the chain needs the key, not just database access.

Keys: AUDIT_HMAC_KEY seals new rows, named by AUDIT_HMAC_KEY_ID (stored in each row);
AUDIT_HMAC_RETIRED_KEYS ({"id": "key"}) still verifies rows sealed before a rotation.
Without AUDIT_HMAC_KEY (development only; production refuses to start) the key is derived
from SECRET_KEY.
"""

import hashlib
import hmac
import json
from datetime import UTC, datetime

from django.conf import settings

DERIVED_KEY_ID = "derived-from-secret-key"


class UnknownAuditKeyError(LookupError):
    """A row names a key id that is neither the current key nor a retired one."""


def json_sha256(document) -> str:
    """SHA256 of a JSON document in canonical form (sorted keys, no spaces)."""
    return hashlib.sha256(_canonical(document)).hexdigest()


def _canonical(document) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def transition_content(
    *, model_id: int, version_id: int | None, version: str, sequence: int, actor_id: int,
    created_at: datetime, from_status: str, to_status: str, notes: str, reason: str,
    traffic_before: int, traffic_after: int, previous_sha256: str, model_sha256: str,
    dataset_sha256: str, schema_sha256: str, gates_sha256: str, is_shadow: bool,
    identity_sha256: str, os_user: str, host: str, key_id: str,
) -> dict:
    return {
        "model_id": model_id,
        "version_id": version_id,
        "version": version,
        "sequence": sequence,
        "actor_id": actor_id,
        "created_at": created_at.astimezone(UTC).isoformat(),
        "from_status": from_status,
        "to_status": to_status,
        "notes": notes,
        "reason": reason,
        "traffic_before": traffic_before,
        "traffic_after": traffic_after,
        "previous_sha256": previous_sha256,
        "model_sha256": model_sha256,
        "dataset_sha256": dataset_sha256,
        "schema_sha256": schema_sha256,
        "gates_sha256": gates_sha256,
        "is_shadow": is_shadow,
        "identity_sha256": identity_sha256,
        "os_user": os_user,
        "host": host,
        "key_id": key_id,
    }


def current_key() -> tuple[str, bytes]:
    """(key id, key) that seals new rows."""
    if settings.AUDIT_HMAC_KEY:
        return settings.AUDIT_HMAC_KEY_ID, settings.AUDIT_HMAC_KEY.encode("utf-8")
    derived = hmac.new(settings.SECRET_KEY.encode("utf-8"), b"pulselytics audit chain",
                       hashlib.sha256).digest()
    return DERIVED_KEY_ID, derived


def key_for(key_id: str) -> bytes:
    current_id, current = current_key()
    if key_id == current_id:
        return current
    retired = settings.AUDIT_HMAC_RETIRED_KEYS.get(key_id)
    if retired is None:
        raise UnknownAuditKeyError(key_id)
    return retired.encode("utf-8")


def content_seal(content: dict, key: bytes) -> str:
    """HMAC-SHA256 of the canonical content under `key`, hex."""
    return hmac.new(key, _canonical(content), hashlib.sha256).hexdigest()


def seal_valid(content: dict, seal: str) -> bool:
    """Whether `seal` is the content's HMAC under the key its `key_id` names."""
    try:
        key = key_for(content["key_id"])
    except UnknownAuditKeyError:
        return False
    return hmac.compare_digest(content_seal(content, key), seal)
