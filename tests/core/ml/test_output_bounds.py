"""Count targets' lower bound (docs/training.md#count-targets), pure: the recipes declare
it, the schema records it, serving's values and explanations apply it (no database)."""

from typing import ClassVar

import numpy
import pytest

from core.ml.explain import explanation_bounded, explanation_row
from core.ml.kinds import BINARY
from core.ml.metrics import metrics_evaluate
from core.ml.outputs import outputs_bounded
from core.ml.recipes.engagement import EngagementComments, EngagementLikes
from core.ml.recipes.engagement_anomaly import EngagementAnomaly
from core.ml.recipes.lead_conversion import LeadConversion
from core.ml.schema import next_version, output_lower_bound
from tests.recipes import TinyLikes


@pytest.mark.parametrize("recipe", [EngagementLikes, EngagementComments])
def test_count_recipe_schema_declares_a_lower_bound_of_zero(recipe):
    schema = recipe().feature_schema()

    assert schema["output_bounds"] == {"lower": 0}
    assert output_lower_bound(schema) == 0.0


@pytest.mark.parametrize("recipe", [TinyLikes, LeadConversion, EngagementAnomaly])
def test_other_recipe_schemas_declare_no_bound(recipe):
    schema = recipe().feature_schema()

    assert "output_bounds" not in schema
    assert output_lower_bound(schema) is None


def test_count_target_is_refused_for_a_classifier():
    class CountedLeads(LeadConversion):
        name = "counted-leads"
        target_is_count: ClassVar[bool] = True

    assert CountedLeads.task == BINARY
    with pytest.raises(ValueError, match="only a regression target is a count"):
        CountedLeads().feature_schema()


@pytest.mark.parametrize("schema", [
    pytest.param({"target": "likes", "features": []}, id="stored-before-bounds"),
    pytest.param({"target": "likes", "features": [], "output_bounds": None}, id="null"),
    pytest.param({"target": "likes", "features": [], "output_bounds": {}}, id="no-lower"),
    pytest.param({}, id="empty"),
    pytest.param(None, id="none"),
])
def test_schema_without_a_declared_bound_has_none(schema):
    assert output_lower_bound(schema) is None


def test_adding_the_bound_keeps_the_inputs_so_the_next_version_is_minor():
    before = TinyLikes().feature_schema()
    after = {**before, "output_bounds": {"lower": 0}}

    assert next_version([{"version": "1.3.0", "feature_schema": before}], after) == "1.4.0"


def test_outputs_bounded_raises_values_below_the_bound_only():
    values = numpy.array([-12.5, -0.0, 0.0, 3.25, 1e9])

    assert outputs_bounded(values, lower=0.0).tolist() == [0.0, 0.0, 0.0, 3.25, 1e9]


def test_outputs_without_a_bound_are_unchanged_negative_ones_included():
    values = numpy.array([-12.5, 3.25])

    assert outputs_bounded(values, lower=None) is values


def explained(value: float, base: float = 10.0) -> dict:
    return explanation_row(output_space="raw", base_value=base, value=value,
                           contributions=[value - base - 1.0, 1.0], features=["a", "b"])


def test_bounded_explanation_adds_up_to_the_answer_and_reports_the_bound():
    row = explanation_bounded(explained(-12.5), lower=0.0)

    assert row["value"] == 0.0
    assert row["bound"] == {"lower": 0.0, "raw_value": -12.5, "adjustment": 12.5}
    raw = row["base_value"] + sum(row["contributions"].values())
    assert raw == pytest.approx(row["bound"]["raw_value"])
    assert raw + row["bound"]["adjustment"] == pytest.approx(row["value"])
    assert row["top_negative"] == explained(-12.5)["top_negative"]


@pytest.mark.parametrize("value", [41.0, 0.0])
def test_explanation_the_bound_did_not_change_is_unchanged(value):
    row = explained(value)

    assert explanation_bounded(row, lower=0.0) is row
    assert "bound" not in row


def test_explanation_without_a_bound_is_unchanged():
    row = explained(-12.5)

    assert explanation_bounded(row, lower=None) is row
    assert "bound" not in row


class BelowZero:
    """A regressor whose answers for two of three rows are negative."""

    def predict(self, features):
        return numpy.array([-4.0, -1.0, 3.0])


def test_validation_metrics_are_those_of_the_bounded_answers():
    target = numpy.array([0.0, 0.0, 3.0])

    bounded = metrics_evaluate(task="regression", estimator=BelowZero(), features=None,
                               target=target, lower_bound=0.0)
    raw = metrics_evaluate(task="regression", estimator=BelowZero(), features=None,
                           target=target)

    assert bounded["mae"] == 0.0  # as served: 0, 0, 3
    assert raw["mae"] == pytest.approx(5 / 3)
