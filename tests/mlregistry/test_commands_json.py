"""`--json` on the registry's read commands: the same facts as the text, for scripts."""

import json
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from mlregistry.model_card import model_card_build
from tests.factories import register_version


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_list_versions_json_has_one_object_per_version_newest_first(champion, data_scientist):
    candidate = register_version(user=data_scientist, slope=3.0,
                                 gate_results={"validation": {"passed": False}})

    listed = json.loads(run("list_versions", "engagement-likes", "--json"))

    assert [(v["version"], v["status"], v["traffic_percentage"]) for v in listed] == [
        (candidate.version, "testing", 0), ("1.0.0", "production", 100)]
    newest, deployed = listed
    assert newest["failed_gates"] == ["validation"]
    assert (deployed["created_by"], deployed["approved_by"], deployed["model_sha256"],
            deployed["is_shadow"]) == ("dana", "rita", champion.model_sha256, False)
    assert deployed["created_at"].startswith(f"{champion.created_at:%Y-%m-%d}")


def test_production_at_json_names_the_version_and_its_hash(champion):
    at = timezone.now()

    answer = json.loads(run("production_at", "engagement-likes", at.isoformat(), "--json"))

    assert answer == {"model": "engagement-likes", "at": at.isoformat(), "version": "1.0.0",
                      "model_sha256": champion.model_sha256}


def test_model_card_json_is_the_card_as_data(champion):
    card = json.loads(run("model_card", "engagement-likes", "1.0.0", "--json"))

    assert card == json.loads(json.dumps(model_card_build(version=champion), default=str))
    assert (card["model"], card["version"], card["status"]) == (
        "engagement-likes", "1.0.0", "production")
