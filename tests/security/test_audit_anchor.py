"""An anchor outside the database proves a rewrite even by someone who holds the audit key
(docs/registry.md#audit-trail)."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from mlregistry import anchors, artifacts, audit
from mlregistry.models import ModelTransition
from tests.factories import register_approved_version, register_deployed_version

pytestmark = pytest.mark.django_db

NAME = "engagement-likes"


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def anchor_copy(tmp_path) -> Path:
    """Write today's anchor and keep a copy, as an operator would, outside the database."""
    written = anchors.audit_anchor_write()
    with artifacts.artifact_storage().open(written.name, "rb") as handle:
        copy = tmp_path / "anchor.json"
        copy.write_bytes(handle.read())
    return copy


def reseal_with_the_key(model_id: int) -> None:
    """What a key holder with database access can do: seal the whole chain again."""
    _, key = audit.current_key()
    previous = ""
    for row in ModelTransition.objects.filter(model_id=model_id).order_by("sequence"):
        row.previous_sha256 = previous
        row.row_sha256 = audit.content_seal(row.sealed_content(), key)
        ModelTransition.objects.filter(pk=row.pk).update(previous_sha256=previous,
                                                         row_sha256=row.row_sha256)
        previous = row.row_sha256


def test_an_anchor_is_signed_and_records_every_chain_head(people, tmp_path):
    version = register_deployed_version(**people)
    head = ModelTransition.objects.filter(model=version.model).order_by("-sequence").first()

    document = anchors.anchor_read(anchor_copy(tmp_path).read_bytes())

    assert document["models"][NAME]["rows"] == head.sequence
    assert document["models"][NAME]["head"] == head.row_sha256


def test_the_days_anchor_is_written_once_and_never_replaced(people, tmp_path):
    register_approved_version(**people)
    first = anchor_copy(tmp_path).read_bytes()
    register_deployed_version(**people, slope=3.0)

    output = run("audit_anchor")

    assert "already exists: left as it was" in output
    with artifacts.artifact_storage().open(anchors.audit_anchor_write().name, "rb") as handle:
        assert handle.read() == first


def test_verify_audit_against_an_anchor_accepts_rows_added_since(people, tmp_path):
    register_approved_version(**people)
    copy = anchor_copy(tmp_path)
    register_deployed_version(**people, slope=3.0)

    output = run("verify_audit", NAME, "--anchor", str(copy))

    assert "every recorded chain head holds" in output
    assert f"{NAME}: OK" in output


def test_a_rewrite_resealed_with_the_key_passes_alone_but_not_against_the_anchor(
        people, tmp_path):
    version = register_approved_version(**people)
    copy = anchor_copy(tmp_path)
    approval = ModelTransition.objects.get(version=version, reason="approved")
    ModelTransition.objects.filter(pk=approval.pk).update(notes="approved after full review")
    reseal_with_the_key(version.model_id)

    alone = run("verify_audit", NAME)
    with pytest.raises(CommandError) as against_anchor:
        run("verify_audit", NAME, "--anchor", str(copy))

    assert f"{NAME}: OK" in alone
    assert NAME in str(against_anchor.value)
    assert "rewritten and sealed again" in str(against_anchor.value)


def test_rows_removed_since_the_anchor_are_proven(people, tmp_path):
    version = register_deployed_version(**people)
    copy = anchor_copy(tmp_path)
    last = ModelTransition.objects.filter(model=version.model).order_by("-sequence").first()
    with connection.cursor() as cursor:  # rows are immutable through the ORM; SQL is not
        cursor.execute("DELETE FROM mlregistry_modeltransition WHERE id = %s", [last.pk])

    with pytest.raises(CommandError, match="rows were removed"):
        run("verify_audit", NAME, "--anchor", str(copy))


def test_a_forged_anchor_is_refused(people, tmp_path):
    register_approved_version(**people)
    copy = anchor_copy(tmp_path)
    signed = json.loads(copy.read_text())
    signed["anchor"]["models"][NAME]["rows"] = 1
    copy.write_text(json.dumps(signed))

    with pytest.raises(CommandError, match="anchor_invalid: the anchor's signature does not"):
        run("verify_audit", NAME, "--anchor", str(copy))
