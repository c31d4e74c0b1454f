"""The audit trail's hash chain (pure: no database access)."""

import hashlib
import json
from datetime import UTC, datetime


def transition_content(
    *, model_id: int, version_id: int, version: str, sequence: int, actor_id: int,
    created_at: datetime, from_status: str, to_status: str, notes: str, reason: str,
    traffic_before: int, traffic_after: int, previous_sha256: str,
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
    }


def content_sha256(content: dict) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
