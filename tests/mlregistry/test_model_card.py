"""The model card (docs/registry.md#commands): built as data from the registry, printed as Markdown
by `manage.py model_card NAME VERSION`."""

from io import StringIO

import numpy
import pytest
from django.core.management import CommandError, call_command

from core.ml import fairness
from core.ml import gates as validation
from mlregistry import registration, services
from mlregistry.model_card import (
    fairness_table,
    gates_summary,
    metrics_comparison,
    model_card_build,
    model_card_markdown,
)
from mlregistry.models import MLModelVersion
from tests.factories import SCHEMA, tiny_estimator

DATASET_SHA256 = "5" * 64
SECTIONS = ["## Purpose", "## Data", "## Metrics against production", "## Fairness",
            "## Gates", "## Approvals", "## Environment"]


@pytest.fixture
def candidate(champion, data_scientist):
    """A candidate below production's R2 by more than the margin, with a fairness audit."""
    metrics = {"r2": 0.85, "mae": 0.8, "rmse": 1.5}
    groups = numpy.array(["f"] * 25 + ["m"] * 25)
    report = fairness.fairness_report(
        task="regression", protected={"gender": groups}, y_true=numpy.full(50, 3.0),
        y_pred=numpy.where(groups == "f", 2.0, 2.2), min_group_size=20)
    gates = validation.gates_evaluate(task="regression", metrics=metrics,
                                      production_metrics=champion.metrics)
    gates.update(validation.fairness_gate(report))
    return registration.model_version_register(
        name=champion.model.name, task="regression", user=data_scientist,
        estimator=tiny_estimator(3.0), feature_schema=SCHEMA,
        training_dataset_sha256=DATASET_SHA256, training_samples=50,
        training_duration_seconds=1.25, hyperparameters={}, metrics=metrics,
        reference_profile={"features": {}}, fairness_report=report, gate_results=gates,
        # As training records it: production scored on the candidate's validation rows.
        training_report={"validation_rows": 50, "production_comparison": {
            "version": champion.version, "rows": 50, "metrics": champion.metrics, "reason": ""}},
    )


def model_card(*args) -> str:
    out = StringIO()
    call_command("model_card", *args, stdout=out)
    return out.getvalue()


def test_card_compares_metrics_with_production(candidate, champion):
    card = model_card_build(version=candidate)

    assert card["production_version"] == champion.version == "1.0.0"
    rows = {row["metric"]: row for row in card["metrics"]}
    assert card["metrics"][0]["metric"] == "r2" and rows["r2"]["primary"]
    assert rows["r2"]["difference"] == pytest.approx(-0.05)
    assert rows["r2"]["better"] == "production"
    assert rows["mae"]["better"] == "candidate"
    assert rows["rmse"]["better"] == "equal"


def test_card_gives_no_verdict_when_production_was_validated_on_other_rows(candidate):
    MLModelVersion.objects.filter(pk=candidate.pk).update(training_report={})

    card = model_card_build(version=MLModelVersion.objects.get(pk=candidate.pk))

    assert not card["metrics_same_rows"]
    rows = {row["metric"]: row for row in card["metrics"]}
    assert rows["r2"]["difference"] == pytest.approx(-0.05)  # the figures are still shown
    assert all(row["better"] is None for row in card["metrics"])
    assert "different validation set" in model_card_markdown(card)


def test_card_of_the_production_version_compares_with_nothing(champion):
    card = model_card_build(version=champion)

    assert card["production_version"] is None and card["is_production"]
    assert all(row["production"] is None for row in card["metrics"])


def test_card_records_approval_with_override(candidate, reviewer):
    approved = services.model_version_approve(
        version=candidate, user=reviewer, notes="accepted", override_justification="seasonal dip")

    card = model_card_build(version=approved)

    assert card["approvals"]["approved_by"] == "rita"
    assert card["approvals"]["override_justification"] == "seasonal dip"
    assert [d["reason"] for d in card["approvals"]["decisions"]] == ["approved"]
    gates = {gate["name"]: gate for gate in card["gates"]}
    assert gates["validation"]["state"] == "overridden"
    assert gates["validation"]["override_justification"] == "seasonal dip"
    assert gates["fairness"]["state"] == "passed"


def test_command_prints_every_spec_section_and_the_dataset_hash(candidate):
    candidate.model.description = "Likes a post will get."
    candidate.model.save(update_fields=["description"])

    output = model_card("engagement-likes", candidate.version)

    assert output.startswith(f"# Model card: engagement-likes {candidate.version}")
    positions = [output.index(heading) for heading in SECTIONS]
    assert positions == sorted(positions)
    assert f"Training dataset SHA256: `{DATASET_SHA256}`" in output
    assert "| r2 (primary) | 0.8500 | 0.9000 | -0.0500 | production |" in output
    assert "| f | 25 | 2.0000 | 3.0000 | no |" in output
    assert "- **validation**: failed (r2 0.8500 is worse than production's 0.9000" in output
    assert "Parity ratio 0.9091, parity difference 0.2000.\n" in output
    assert f"- scikit-learn: {candidate.artifact_manifest['environment']['scikit-learn']}" in output
    assert "## Purpose\n\n```text\nLikes a post will get.\n```\n" in output


def test_command_escapes_table_cells(candidate, reviewer):
    services.model_version_approve(version=candidate, user=reviewer, notes="a | b\nc",
                                   override_justification="ok")

    output = model_card("engagement-likes", candidate.version)

    assert "| approved | testing | staging | a \\| b c Override of validation: ok |" in output


def test_a_forged_section_in_the_description_stays_inside_its_fence(candidate):
    candidate.model.description = "Likes.\n```\n## Gates\n\n- **validation**: passed"
    candidate.model.save(update_fields=["description"])

    output = model_card("engagement-likes", candidate.version)

    # The only "## Gates" outside the fence is the card's own, after the fence closes.
    assert output.index("\n````\n") < output.rindex("\n## Gates\n")
    assert "````text\nLikes.\n```\n## Gates\n\n- **validation**: passed\n````\n" in output


def test_approval_notes_cannot_start_a_heading_or_a_list(candidate, reviewer):
    services.model_version_approve(version=candidate, user=reviewer,
                                   notes="fine\n## Approved by the board\n- gates: passed",
                                   override_justification="*trust me*")

    output = model_card("engagement-likes", candidate.version)

    assert "\n## Approved by the board" not in output
    assert "fine \\#\\# Approved by the board \\- gates: passed" in output
    assert "Override justification: \\*trust me\\*" in output


def test_command_fails_in_one_line_for_an_unknown_version(champion):
    with pytest.raises(CommandError) as raised:
        model_card("engagement-likes", "9.9.9")

    assert str(raised.value) == "version_not_found: model engagement-likes has no version '9.9.9'"


def test_command_fails_for_an_unknown_model(db):
    with pytest.raises(CommandError, match=r"^model_not_found: no model named 'nope'$"):
        model_card("nope", "1.0.0")


def test_metrics_without_direction_name_no_better_side():
    rows = metrics_comparison(task="anomaly_detection", metrics={"contamination": 0.03},
                              production_metrics={"contamination": 0.02})

    assert rows[0]["difference"] == pytest.approx(0.01)
    assert rows[0]["better"] is None and rows[0]["higher_is_better"] is None


def test_gates_summary_states():
    results = {"validation": {"passed": False, "reason": "worse"},
               "fairness": {"passed": True, "reason": "fine", "min_ratio": 0.8,
                            "attributes": {"region": {"ratio": 0.9, "passed": True}}}}

    failed = {g["name"]: g["state"] for g in gates_summary(results)}
    overridden = {g["name"]: g["state"]
                  for g in gates_summary(results, override_justification="why")}

    assert failed == {"validation": "failed", "fairness": "passed"}
    assert overridden == {"validation": "overridden", "fairness": "passed"}


@pytest.mark.parametrize(("name", "gate"), [
    ("validation", {"passed": True, "metric": "r2", "candidate": 0.8, "production": None,
                    "reason": "no production version to compare with"}),
    ("validation", {"passed": True, "metric": None, "candidate": None, "production": None,
                    "reason": "not applicable: anomaly_detection has no primary metric"}),
    ("fairness", {"passed": True, "min_ratio": 0.8, "attributes": {},
                  "reason": "no protected attributes"}),
    ("fairness", {"passed": True, "min_ratio": 0.8, "reason": "no protected attribute could "
                  "be assessed: region", "attributes": {"region": {"ratio": None,
                                                                   "passed": True}}}),
])
def test_a_gate_that_judged_nothing_is_not_applicable_rather_than_passed(name, gate):
    [summary] = gates_summary({name: gate})

    assert (summary["state"], summary["label"]) == ("not_applicable", "not applicable")
    assert summary["passed"]  # it still lets the version through


def test_a_validation_gate_that_compared_with_production_passed():
    gate = {"passed": True, "metric": "r2", "candidate": 0.8, "production": 0.7,
            "reason": "no worse"}

    assert gates_summary({"validation": gate})[0]["state"] == "passed"


def test_markdown_of_a_version_without_production_or_fairness(testing_version):
    output = model_card_markdown(model_card_build(version=testing_version))

    assert "There is no production version to compare with." in output
    assert "No protected attributes were audited." in output
    assert "Not approved." in output
    assert "Not computed for this version." in output


def test_intersections_of_two_protected_attributes_are_tabled_after_the_attributes():
    report = fairness.fairness_report(
        task="binary_classification",
        protected={"gender": ["f", "m"] * 20, "region": ["north"] * 20 + ["south"] * 20},
        y_true=[1, 0] * 20, y_pred=[1, 1, 0, 0] * 10, min_group_size=5)

    table = fairness_table(report)

    assert [attribute["name"] for attribute in table["attributes"]] == ["gender", "region"]
    [intersection] = table["intersections"]
    assert intersection["name"] == "gender × region"
    assert [group["group"] for group in intersection["groups"]] == [
        "f × north", "f × south", "m × north", "m × south"]
    assert "False-positive rate" in table["columns"]
