"""Anchors of the audit chain outside the database (docs/registry.md#audit-trail).

An anchor records the head of every model's chain (rows, last seal, its time), and of every
other sealed chain an app above the registry registers with `audit_chain_register`
(monitoring: the schedule changes), signed with the audit key, written through the artifact
storage once a day under a name that is never overwritten (`anchors/audit-YYYY-MM-DD.json`).
Each seal covers the previous one, so a head commits to every row before it: even someone
holding the key, who rewrites a row and re-seals the rest of the chain, changes the head an
earlier anchor recorded.
"""

import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.files.base import ContentFile
from django.utils import timezone

from core.errors import ValidationError
from mlregistry import artifacts, audit
from mlregistry.models import MLModel, ModelTransition
from mlregistry.selectors import AuditResult

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


@dataclass(frozen=True)
class AuditChain:
    """A sealed chain kept by an app above the registry, which cannot import it."""

    name: str  # as verify_audit prints it and the anchor records it, e.g. "schedule changes"
    verify: Callable[[], AuditResult]  # walks the chain, naming the first broken row
    # {"rows", "head", "head_at"} of the last row, as chain_heads() records a model's; None
    # while the chain is empty.
    head: Callable[[], dict | None]
    # The seal of the row with this sequence number, None when there is no such row.
    row_seal: Callable[[int], str | None]


CHAINS: list[AuditChain] = []


def audit_chain_register(chain: AuditChain) -> None:
    """Add a chain to verify_audit and the daily anchor (from the app's ready())."""
    if all(known.name != chain.name for known in CHAINS):
        CHAINS.append(chain)


def other_chain_heads() -> dict[str, dict]:
    return {chain.name: head for chain in CHAINS if (head := chain.head()) is not None}


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
                "key_id": key_id, "models": chain_heads(), "chains": other_chain_heads()}
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
    """Every chain the anchor recorded must still have the row it named as its head, with
    the same seal: otherwise rows up to that head were rewritten or removed. (Anchors
    written before other chains were recorded have no "chains".)"""
    mismatches = []
    for name, head in sorted(document["models"].items()):
        row = (ModelTransition.objects.filter(model__name=name, sequence=head["rows"])
               .values("row_sha256").first())
        problem = _head_problem(head, row["row_sha256"] if row else None)
        if problem:
            mismatches.append(AnchorMismatch(name, problem))
    chains = {chain.name: chain for chain in CHAINS}
    for name, head in sorted(document.get("chains", {}).items()):
        chain = chains.get(name)
        problem = (_head_problem(head, chain.row_seal(head["rows"])) if chain
                   else "this installation keeps no such chain")
        if problem:
            mismatches.append(AnchorMismatch(name, problem))
    return mismatches


def _head_problem(head: dict, seal: str | None) -> str:
    if seal is None:
        return f"row {head['rows']} that the anchor recorded is gone (rows were removed)"
    if seal != head["head"]:
        return (f"row {head['rows']} is not the one the anchor recorded: rows up to it were "
                "rewritten and sealed again")
    return ""
