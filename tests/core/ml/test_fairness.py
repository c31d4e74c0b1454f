"""The fairness audit and the fairness gate (docs/monitoring.md#fairness). Pure: no database.

Every expected figure is computed by hand from the rows written out in the test.
"""

import json

import numpy
import pytest

from core.ml.fairness import MISSING, fairness_report
from core.ml.gates import fairness_gate
from core.ml.kinds import BINARY


def binary_report(**overrides) -> dict:
    """Group a: truth 1 1 0 0, predicted 1 1 1 0; group b: truth 1 1 0 0, predicted 1 0 0 0."""
    arguments = {
        "task": BINARY,
        "protected": {"region": ["a"] * 4 + ["b"] * 4},
        "y_true": [1, 1, 0, 0, 1, 1, 0, 0],
        "y_pred": [1, 1, 1, 0, 1, 0, 0, 0],
        "min_group_size": 2,
    }
    return fairness_report(**{**arguments, **overrides})


# --- binary classification ----------------------------------------------------------------


def test_binary_selection_rate_and_true_positive_rate_per_group():
    groups = binary_report()["attributes"]["region"]["groups"]

    assert groups == {
        "a": {"n": 4, "small": False, "selection_rate": 0.75, "positives": 2,
              "true_positive_rate": 1.0},
        "b": {"n": 4, "small": False, "selection_rate": 0.25, "positives": 2,
              "true_positive_rate": 0.5},
    }


def test_binary_parity_and_equal_opportunity_per_attribute():
    attribute = binary_report()["attributes"]["region"]

    assert attribute["groups_compared"] == 2
    assert attribute["demographic_parity_difference"] == pytest.approx(0.5)
    assert attribute["demographic_parity_ratio"] == pytest.approx(1 / 3)
    assert attribute["equal_opportunity_difference"] == pytest.approx(0.5)
    assert attribute["note"] is None


def test_binary_positive_label_defaults_to_the_greater_label():
    report = binary_report(y_true=["no", "no", "yes", "yes"] * 2,
                           y_pred=["yes", "yes", "yes", "no", "yes", "no", "no", "no"])

    assert report["positive_label"] == "yes"
    assert report["attributes"]["region"]["groups"]["a"]["selection_rate"] == 0.75
    assert report["attributes"]["region"]["groups"]["a"]["true_positive_rate"] == 0.5


def test_binary_positive_label_can_be_given():
    report = binary_report(positive_label=0)

    groups = report["attributes"]["region"]["groups"]
    assert report["positive_label"] == 0
    assert (groups["a"]["selection_rate"], groups["b"]["selection_rate"]) == (0.25, 0.75)
    assert (groups["a"]["true_positive_rate"], groups["b"]["true_positive_rate"]) == (0.5, 1.0)


def test_true_positive_rate_is_none_for_a_group_without_positives():
    report = binary_report(y_true=[1, 1, 0, 0, 0, 0, 0, 0])

    attribute = report["attributes"]["region"]
    assert attribute["groups"]["b"]["positives"] == 0
    assert attribute["groups"]["b"]["true_positive_rate"] is None
    assert attribute["equal_opportunity_difference"] is None  # one group with a TPR


def test_without_labels_there_are_no_true_positive_rates():
    attribute = binary_report(y_true=None)["attributes"]["region"]

    assert attribute["groups"]["a"]["true_positive_rate"] is None
    assert attribute["equal_opportunity_difference"] is None
    assert attribute["demographic_parity_ratio"] == pytest.approx(1 / 3)


def test_ratio_is_one_when_no_group_is_selected():
    attribute = binary_report(y_pred=[0] * 8)["attributes"]["region"]

    assert attribute["demographic_parity_difference"] == 0.0
    assert attribute["demographic_parity_ratio"] == 1.0


# --- anomaly detection, regression, multiclass --------------------------------------------


def test_anomaly_selection_rate_is_the_share_flagged():
    report = fairness_report(task="anomaly_detection",
                             protected={"plan": ["free"] * 4 + ["pro"] * 4}, y_true=None,
                             y_pred=numpy.array([-1, 1, 1, 1, -1, -1, 1, 1]), min_group_size=2)

    attribute = report["attributes"]["plan"]
    assert attribute["groups"]["free"] == {"n": 4, "small": False, "selection_rate": 0.25}
    assert attribute["groups"]["pro"] == {"n": 4, "small": False, "selection_rate": 0.5}
    assert attribute["demographic_parity_difference"] == 0.25
    assert attribute["demographic_parity_ratio"] == 0.5
    assert attribute["equal_opportunity_difference"] is None
    assert report["parity_basis"] == "selection_rate"


def test_regression_mean_prediction_and_actual_per_group():
    report = fairness_report(task="regression", protected={"plan": ["free", "free", "pro", "pro"]},
                             y_true=[2.0, 4.0, 5.0, numpy.nan], y_pred=[1.0, 3.0, 4.0, 4.0],
                             min_group_size=2)

    attribute = report["attributes"]["plan"]
    assert attribute["groups"]["free"] == {"n": 2, "small": False, "mean_prediction": 2.0,
                                           "mean_actual": 3.0}
    assert attribute["groups"]["pro"] == {"n": 2, "small": False, "mean_prediction": 4.0,
                                          "mean_actual": 5.0}  # the unlabelled row left out
    assert attribute["demographic_parity_difference"] == 2.0
    assert attribute["demographic_parity_ratio"] == 0.5
    assert report["parity_basis"] == "mean_prediction"


def test_regression_ratio_is_undefined_when_a_mean_prediction_is_negative():
    report = fairness_report(task="regression", protected={"plan": ["free", "free", "pro", "pro"]},
                             y_true=None, y_pred=[-1.0, -3.0, 1.0, 1.0], min_group_size=2)

    attribute = report["attributes"]["plan"]
    assert attribute["demographic_parity_difference"] == 3.0
    assert attribute["demographic_parity_ratio"] is None
    assert "below zero" in attribute["note"]


def test_multiclass_reports_accuracy_per_group_and_no_parity():
    report = fairness_report(task="multiclass_classification",
                             protected={"plan": ["free", "free", "pro", "pro"]},
                             y_true=["x", "y", "z", "x"], y_pred=["x", "y", "y", "x"],
                             min_group_size=2)

    attribute = report["attributes"]["plan"]
    assert attribute["groups"]["free"]["accuracy"] == 1.0
    assert attribute["groups"]["pro"]["accuracy"] == 0.5
    assert attribute["accuracy_difference"] == 0.5
    assert attribute["demographic_parity_ratio"] is None
    assert report["parity_basis"] is None


# --- groups -------------------------------------------------------------------------------


def test_small_groups_are_reported_but_left_out_of_the_comparison():
    report = fairness_report(
        task=BINARY, protected={"region": ["a", "a", "a", "b", "b", "b", "c"]},
        y_true=[1, 0, 0, 1, 0, 0, 1], y_pred=[1, 1, 0, 1, 0, 0, 0], min_group_size=3)

    attribute = report["attributes"]["region"]
    assert attribute["groups"]["c"] == {"n": 1, "small": True, "selection_rate": 0.0,
                                        "positives": 1, "true_positive_rate": 0.0}
    assert attribute["groups_compared"] == 2
    # a: 2/3 selected, b: 1/3; c (0 selected, TPR 0) would make the ratio 0.
    assert attribute["demographic_parity_ratio"] == pytest.approx(0.5)
    assert attribute["equal_opportunity_difference"] == 0.0


def test_min_group_size_defaults_to_the_setting(settings):
    settings.FAIRNESS_MIN_GROUP_SIZE = 5

    report = binary_report(min_group_size=None)

    assert report["min_group_size"] == 5
    attribute = report["attributes"]["region"]
    assert [group["small"] for group in attribute["groups"].values()] == [True, True]
    assert attribute["demographic_parity_ratio"] is None
    assert "fewer than two groups of at least 5 rows" in attribute["note"]


def test_missing_group_values_form_their_own_group():
    report = fairness_report(task=BINARY,
                             protected={"region": ["a", None, "a", numpy.nan, "a", None]},
                             y_true=[1, 1, 0, 0, 1, 0], y_pred=[1, 1, 0, 0, 1, 1],
                             min_group_size=1)

    groups = report["attributes"]["region"]["groups"]
    assert list(groups) == [MISSING, "a"]
    assert groups[MISSING]["n"] == 3
    assert groups[MISSING]["selection_rate"] == pytest.approx(2 / 3)


def test_integral_float_group_values_are_named_as_integers():
    report = fairness_report(task=BINARY, protected={"senior": numpy.array([0.0, 1.0, numpy.nan])},
                             y_true=[1, 0, 1], y_pred=[1, 0, 1], min_group_size=1)

    assert list(report["attributes"]["senior"]["groups"]) == [MISSING, "0", "1"]


def test_report_is_strict_json_from_numpy_inputs():
    report = fairness_report(task=BINARY,
                             protected={"age_band": numpy.array([1, 1, 2, 2], dtype=numpy.int64)},
                             y_true=numpy.array([True, False, True, False]),
                             y_pred=numpy.array([True, True, False, False]), min_group_size=1)

    assert json.loads(json.dumps(report, allow_nan=False)) == report
    assert report["positive_label"] is True
    assert list(report["attributes"]["age_band"]["groups"]) == ["1", "2"]


def test_no_protected_attributes_gives_an_empty_audit():
    report = binary_report(protected={})

    assert report["attributes"] == {}


# --- the gate -----------------------------------------------------------------------------


def selection_report(selected_a: int, selected_b: int, n: int = 100) -> dict:
    """Group a has `selected_a` of n predicted positive, group b `selected_b` of n."""
    predictions = ([1] * selected_a + [0] * (n - selected_a)
                   + [1] * selected_b + [0] * (n - selected_b))
    return fairness_report(task=BINARY, protected={"region": ["a"] * n + ["b"] * n},
                           y_true=None, y_pred=predictions, min_group_size=20)


def test_gate_passes_at_ratio_exactly_the_minimum(settings):
    settings.FAIRNESS_GATE_MIN_RATIO = 0.8
    report = selection_report(40, 50)  # 0.4 / 0.5

    gate = fairness_gate(report)["fairness"]

    assert gate["passed"] is True
    assert gate["min_ratio"] == 0.8
    assert gate["attributes"]["region"]["passed"] is True
    assert gate["attributes"]["region"]["ratio"] == pytest.approx(0.8)


def test_gate_fails_below_the_minimum(settings):
    settings.FAIRNESS_GATE_MIN_RATIO = 0.8
    report = selection_report(79, 100)  # 0.79 / 1.0

    gate = fairness_gate(report)["fairness"]

    assert gate["passed"] is False
    assert gate["attributes"]["region"] == {
        "ratio": pytest.approx(0.79), "passed": False,
        "reason": "parity ratio 0.7900 is below 0.8"}
    assert gate["reason"] == "parity ratio below 0.8 for region (0.7900)"


def test_gate_fails_when_any_attribute_fails():
    fair, unfair = selection_report(50, 50), selection_report(10, 50)
    report = {"attributes": {"region": fair["attributes"]["region"],
                             "plan": unfair["attributes"]["region"]}}

    gate = fairness_gate(report, min_ratio=0.8)["fairness"]

    assert gate["passed"] is False
    assert (gate["attributes"]["region"]["passed"], gate["attributes"]["plan"]["passed"]) == (
        True, False)


@pytest.mark.parametrize("report", [{}, None, {"attributes": {}}])
def test_gate_passes_without_protected_attributes(report):
    gate = fairness_gate(report, min_ratio=0.8)["fairness"]

    assert gate == {"passed": True, "min_ratio": 0.8, "attributes": {},
                    "reason": "no protected attributes"}


def test_gate_passes_an_attribute_it_cannot_assess_and_says_why():
    report = selection_report(0, 10, n=10)  # both groups below 20 rows

    gate = fairness_gate(report, min_ratio=0.8)["fairness"]

    assert gate["passed"] is True
    assert gate["attributes"]["region"]["ratio"] is None
    assert "fewer than two groups of at least 20 rows" in gate["attributes"]["region"]["reason"]
    assert gate["reason"].startswith("no protected attribute could be assessed")
