"""The fairness audit and the fairness gate (docs/monitoring.md#fairness). Pure: no database.

Every expected figure is computed by hand from the rows written out in the test.
"""

import json

import numpy
import pandas
import pytest
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

from core.errors import ValidationError
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
              "true_positive_rate": 1.0, "negatives": 2, "false_positive_rate": 0.5,
              "labelled": 4, "accuracy": 0.75},
        "b": {"n": 4, "small": False, "selection_rate": 0.25, "positives": 2,
              "true_positive_rate": 0.5, "negatives": 2, "false_positive_rate": 0.0,
              "labelled": 4, "accuracy": 0.75},
    }


def test_binary_parity_and_equal_opportunity_per_attribute():
    attribute = binary_report()["attributes"]["region"]

    assert attribute["groups_compared"] == 2
    assert attribute["demographic_parity_difference"] == pytest.approx(0.5)
    assert attribute["demographic_parity_ratio"] == pytest.approx(1 / 3)
    assert attribute["equal_opportunity_difference"] == pytest.approx(0.5)
    assert attribute["note"] is None


def test_binary_equalized_odds_and_error_rate_parity_per_attribute():
    attribute = binary_report()["attributes"]["region"]

    # TPR 1.0 against 0.5, FPR 0.5 against 0.0: the worse of the two differences.
    assert attribute["equalized_odds_difference"] == pytest.approx(0.5)
    assert attribute["error_rate_difference"] == pytest.approx(0.0)  # 0.25 error in both


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
                                        "positives": 1, "true_positive_rate": 0.0,
                                        "negatives": 0, "false_positive_rate": None,
                                        "labelled": 1, "accuracy": 0.0}
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
    assert gate["attributes"]["region"]["value"] == pytest.approx(0.8)


def test_gate_fails_below_the_minimum(settings):
    settings.FAIRNESS_GATE_MIN_RATIO = 0.8
    report = selection_report(79, 100)  # 0.79 / 1.0

    gate = fairness_gate(report)["fairness"]

    assert gate["passed"] is False
    assert gate["attributes"]["region"] == {
        "value": pytest.approx(0.79), "passed": False,
        "reason": "parity ratio 0.7900 is below 0.8"}
    assert gate["reason"] == "parity ratio below 0.8 for region (0.7900)"


def test_gate_fails_when_any_attribute_fails():
    fair, unfair = selection_report(50, 50), selection_report(10, 50)
    report = {"attributes": {"region": fair["attributes"]["region"],
                             "plan": unfair["attributes"]["region"]}}

    gate = fairness_gate(report, threshold=0.8)["fairness"]

    assert gate["passed"] is False
    assert (gate["attributes"]["region"]["passed"], gate["attributes"]["plan"]["passed"]) == (
        True, False)


@pytest.mark.parametrize("report", [{}, None, {"attributes": {}}])
def test_gate_passes_without_protected_attributes(report):
    gate = fairness_gate(report, threshold=0.8)["fairness"]

    assert gate == {"passed": True, "metric": "demographic_parity_ratio", "threshold": 0.8,
                    "min_ratio": 0.8, "attributes": {}, "reason": "no protected attributes"}


def test_gate_passes_an_attribute_it_cannot_assess_and_says_why():
    report = selection_report(0, 10, n=10)  # both groups below 20 rows

    gate = fairness_gate(report, threshold=0.8)["fairness"]

    assert gate["passed"] is True
    assert gate["attributes"]["region"]["value"] is None
    assert "fewer than two groups of at least 20 rows" in gate["attributes"]["region"]["reason"]
    assert gate["reason"].startswith("no protected attribute could be assessed")


# --- the same figures as Fairlearn's MetricFrame -----------------------------------------


def _scenario(n: int = 600, seed: int = 3) -> dict:
    rng = numpy.random.default_rng(seed)
    gender = rng.choice(["f", "m"], n)
    region = rng.choice(["north", "south", "east"], n, p=[0.5, 0.4, 0.1])
    truth = (rng.random(n) < numpy.where(gender == "f", 0.4, 0.6)).astype(int)
    predicted = numpy.where(rng.random(n) < 0.8, truth, 1 - truth)
    predicted[(region == "east") & (rng.random(n) < 0.5)] = 1
    return {"gender": gender, "region": region, "truth": truth, "predicted": predicted}


def _metric_frame(data: dict, sensitive) -> MetricFrame:
    return MetricFrame(
        metrics={"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
                 "false_positive_rate": false_positive_rate, "accuracy": accuracy_score,
                 "count": count},
        y_true=data["truth"], y_pred=data["predicted"], sensitive_features=sensitive)


def test_binary_figures_equal_fairlearns_metric_frame_on_the_same_rows():
    data = _scenario()
    report = fairness_report(task=BINARY, protected={"gender": data["gender"]},
                             y_true=data["truth"], y_pred=data["predicted"], min_group_size=20)

    frame = _metric_frame(data, data["gender"])
    attribute = report["attributes"]["gender"]
    for group, figures in frame.by_group.iterrows():
        reported = attribute["groups"][group]
        assert reported["n"] == figures["count"]
        for metric in ("selection_rate", "true_positive_rate", "false_positive_rate",
                       "accuracy"):
            assert reported[metric] == pytest.approx(figures[metric], abs=1e-12)
    differences = frame.difference()
    assert attribute["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(data["truth"], data["predicted"],
                                      sensitive_features=data["gender"]))
    assert attribute["demographic_parity_ratio"] == pytest.approx(
        demographic_parity_ratio(data["truth"], data["predicted"],
                                 sensitive_features=data["gender"]))
    assert attribute["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(data["truth"], data["predicted"],
                                  sensitive_features=data["gender"]))
    assert attribute["equal_opportunity_difference"] == pytest.approx(
        differences["true_positive_rate"])
    assert attribute["error_rate_difference"] == pytest.approx(differences["accuracy"])


def test_intersectional_groups_equal_fairlearns_metric_frame_with_both_attributes():
    data = _scenario()
    report = fairness_report(task=BINARY,
                             protected={"gender": data["gender"], "region": data["region"]},
                             y_true=data["truth"], y_pred=data["predicted"], min_group_size=20)

    frame = _metric_frame(data, pandas.DataFrame({"gender": data["gender"],
                                                  "region": data["region"]}))
    intersection = report["intersections"]["gender × region"]
    assert len(intersection["groups"]) == 6
    for (gender, region), figures in frame.by_group.iterrows():
        reported = intersection["groups"][f"{gender} × {region}"]
        assert reported["n"] == figures["count"]
        assert reported["selection_rate"] == pytest.approx(figures["selection_rate"])
        assert reported["false_positive_rate"] == pytest.approx(figures["false_positive_rate"])
    # Every group has at least 20 rows here, so all are compared, as MetricFrame compares.
    assert intersection["groups_compared"] == 6
    assert intersection["demographic_parity_difference"] == pytest.approx(
        frame.difference()["selection_rate"])
    assert intersection["demographic_parity_ratio"] == pytest.approx(
        frame.ratio()["selection_rate"])


def test_one_protected_attribute_has_no_intersections():
    assert "intersections" not in binary_report()


def test_gate_judges_the_metric_the_settings_name_against_its_maximum(settings):
    settings.FAIRNESS_GATE_METRIC = "equalized_odds_difference"
    settings.FAIRNESS_GATE_MAX_DIFFERENCE = 0.3
    report = binary_report(min_group_size=2)  # equalized odds difference 0.5

    gate = fairness_gate(report)["fairness"]

    assert (gate["metric"], gate["threshold"], gate["passed"]) == (
        "equalized_odds_difference", 0.3, False)
    assert "min_ratio" not in gate
    assert gate["attributes"]["region"]["reason"] == (
        "equalized odds difference 0.5000 is above 0.3")


def test_gate_refuses_an_unknown_metric(settings):
    settings.FAIRNESS_GATE_METRIC = "vibes"

    with pytest.raises(ValidationError, match="unknown fairness gate metric"):
        fairness_gate(binary_report())


@pytest.mark.parametrize("task", ["binary_classification", "regression",
                                  "multiclass_classification", "anomaly_detection"])
def test_no_rows_give_no_groups_and_nothing_to_compare(task):
    report = fairness_report(task=task, protected={"region": [], "plan": []}, y_true=[],
                             y_pred=[], min_group_size=2)

    attribute = report["attributes"]["region"]
    assert (report["rows"], attribute["groups"], attribute["groups_compared"]) == (0, {}, 0)
    assert attribute["demographic_parity_ratio"] is None
    assert report["intersections"]["plan × region"]["groups"] == {}
