"""Anchors of the audit chain outside the database (docs/registry.md#audit-trail).

An anchor records the head of every model's chain (rows, last seal, its time), signed with
the audit key, written through the artifact storage once a day under a name that is never
overwritten (`anchors/audit-YYYY-MM-DD.json`). Each seal covers the previous one, so a
head commits to every row before it: even someone holding the key, who rewrites a row and
re-seals the rest of the chain, changes the head an earlier anchor recorded.
"""

import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.files.base import ContentFile
from django.utils import timezone

from core.errors import ValidationError
from mlregistry import artifacts, audit
from mlregistry.models import MLModel, ModelTransition

ANCHOR_FORMAT = 1


class AnchorInvalidError(ValidationError):
    code = "anchor_invalid"


@dataclass(frozen=True)
class AnchorWrite:
    name: str  # the storage name
    written: bool  # False: today's anchor already existed and was left as it was
    models: int


@dataclass(frozen=True)
class AnchorMismatch:
    model: str
    problem: str


def chain_heads() -> dict[str, dict]:
    """Per model name: rows in its chain and the last row's seal and time."""
    heads = {}
    for model in MLModel.objects.order_by("name"):
        last = (ModelTransition.objects.filter(model=model).order_by("-sequence")
                .values("sequence", "row_sha256", "created_at").first())
        if last is not None:
            heads[model.name] = {"rows": last["sequence"], "head": last["row_sha256"],
                                 "head_at": last["created_at"].astimezone(UTC).isoformat()}
    return heads


def audit_anchor_write(*, now: datetime | None = None) -> AnchorWrite:
    """Write today's anchor unless it exists: an anchor, once written, is never replaced."""
    now = now or timezone.now()
    name = f"anchors/audit-{now.astimezone(UTC):%Y-%m-%d}.json"
    storage = artifacts.artifact_storage()
    if storage.exists(name):
        return AnchorWrite(name=name, written=False, models=0)
    key_id, key = audit.current_key()
    document = {"format": ANCHOR_FORMAT, "written_at": now.astimezone(UTC).isoformat(),
                "key_id": key_id, "models": chain_heads()}
    signed = {"anchor": document, "signature": audit.content_seal(document, key)}
    storage.save(name, ContentFile(json.dumps(signed, indent=1, sort_keys=True).encode()))
    return AnchorWrite(name=name, written=True, models=len(document["models"]))


def anchor_read(data: bytes) -> dict:
    """The anchor's document, once its signature holds; AnchorInvalidError otherwise."""
    try:
        signed = json.loads(data)
        document, signature = signed["anchor"], signed["signature"]
        key = audit.key_for(document["key_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AnchorInvalidError(f"not a readable anchor: {exc}") from None
    except audit.UnknownAuditKeyError:
        raise AnchorInvalidError(
            f"the anchor is signed with unknown audit key {document['key_id']}") from None
    if not hmac.compare_digest(audit.content_seal(document, key), str(signature)):
        raise AnchorInvalidError("the anchor's signature does not match its content")
    return document


def anchor_check(document: dict) -> list[AnchorMismatch]:
    """Every model the anchor recorded must still have the row it named as its head, with
    the same seal: otherwise rows up to that head were rewritten or removed."""
    mismatches = []
    for name, head in sorted(document["models"].items()):
        row = (ModelTransition.objects.filter(model__name=name, sequence=head["rows"])
               .values("row_sha256").first())
        if row is None:
            mismatches.append(AnchorMismatch(name, f"row {head['rows']} that the anchor "
                                                   "recorded is gone (rows were removed)"))
        elif row["row_sha256"] != head["head"]:
            mismatches.append(AnchorMismatch(
                name, f"row {head['rows']} is not the one the anchor recorded: rows up to it "
                      "were rewritten and sealed again"))
    return mismatches
