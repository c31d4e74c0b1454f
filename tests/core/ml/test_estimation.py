"""Estimated performance without labels (core.ml.estimation): CBPE and DLE against direct
computations. Pure: no database."""

import math

import numpy
import pandas
import pytest
from sklearn import metrics as skm

from core.ml import estimation


def _sigmoid(x):
    return 1.0 / (1.0 + numpy.exp(-x))


def test_cbpe_equals_sklearn_when_probabilities_are_the_outcomes():
    rng = numpy.random.default_rng(0)
    scores = numpy.round(rng.random(300), 1)  # ties, grouped as roc_curve groups them
    actual = rng.random(300) < scores
    predicted = scores > 0.5

    expected = estimation.cbpe_expected(scores=scores, probability=actual.astype(float),
                                        predicted_positive=predicted)

    assert expected["accuracy"] == pytest.approx(skm.accuracy_score(actual, predicted))
    assert expected["precision"] == pytest.approx(skm.precision_score(actual, predicted))
    assert expected["recall"] == pytest.approx(skm.recall_score(actual, predicted))
    assert expected["f1"] == pytest.approx(skm.f1_score(actual, predicted))
    assert expected["roc_auc"] == pytest.approx(skm.roc_auc_score(actual, scores))


def test_numpy_realized_figures_equal_sklearn():
    rng = numpy.random.default_rng(7)
    scores = numpy.round(rng.random(200), 2)
    actual = rng.random(200) < scores
    predicted = scores > 0.3

    fast = estimation.binary_realized(scores=scores, is_positive=actual,
                                      predicted_positive=predicted)
    reference = estimation.cbpe_realized(scores=scores, is_positive=actual,
                                         predicted_positive=predicted)

    assert fast == pytest.approx(reference, abs=1e-12)


def test_cbpe_expected_counts_are_the_mean_over_label_draws():
    rng = numpy.random.default_rng(1)
    probability = rng.random(200)
    predicted = probability > 0.4
    draws = rng.random((4000, 200)) < probability

    expected = estimation.cbpe_expected(scores=probability, probability=probability,
                                        predicted_positive=predicted)

    assert expected["accuracy"] == pytest.approx((draws == predicted).mean(), abs=0.003)
    recall = (draws & predicted).sum() / draws.sum()
    assert expected["recall"] == pytest.approx(recall, abs=0.005)


def test_expected_roc_auc_is_close_to_the_realized_one_on_calibrated_scores():
    rng = numpy.random.default_rng(2)
    scores = _sigmoid(rng.normal(0.0, 2.0, 20000))
    actual = rng.random(20000) < scores

    expected = estimation.expected_roc_auc(scores, scores)

    assert expected == pytest.approx(skm.roc_auc_score(actual, scores), abs=0.01)


def test_expected_roc_auc_is_none_without_either_class():
    assert estimation.expected_roc_auc(numpy.array([0.2, 0.4]), numpy.zeros(2)) is None


def test_reference_fits_a_calibrator_only_for_miscalibrated_probabilities():
    rng = numpy.random.default_rng(3)
    scores = rng.random(2000)
    calibrated_outcomes = rng.random(2000) < scores
    miscalibrated_outcomes = rng.random(2000) < scores ** 3

    good = estimation.cbpe_reference_build(scores=scores, is_positive=calibrated_outcomes,
                                           predicted_positive=scores > 0.5, seed=0)
    bad = estimation.cbpe_reference_build(scores=scores, is_positive=miscalibrated_outcomes,
                                          predicted_positive=scores > 0.5, seed=0)

    limit = estimation.calibration_limit(2000)
    assert good.document["calibration"] == {"ece": pytest.approx(good.document["calibration"][
        "ece"]), "max_ece": limit, "calibrator": None}
    assert good.document["calibration"]["ece"] <= limit and good.objects == {}
    assert bad.document["calibration"]["ece"] > limit
    assert set(bad.objects) == {estimation.CALIBRATOR}
    # Calibrated, the estimate on the reference rows is the realized figure (isotonic
    # regression fitted on them reproduces their positive rate per block).
    assert bad.document["estimated"]["accuracy"] == pytest.approx(
        bad.document["realized"]["accuracy"], abs=0.01)
    raw = estimation.cbpe_expected(scores=scores, probability=scores,
                                   predicted_positive=scores > 0.5)
    assert abs(raw["accuracy"] - bad.document["realized"]["accuracy"]) > 0.03


def test_sampling_error_matches_the_binomial_standard_error_of_accuracy():
    rng = numpy.random.default_rng(4)
    scores = rng.random(1000)
    actual = rng.random(1000) < scores

    reference = estimation.cbpe_reference_build(scores=scores, is_positive=actual,
                                                predicted_positive=scores > 0.5, seed=0)

    accuracy = reference.document["realized"]["accuracy"]
    binomial = math.sqrt(accuracy * (1 - accuracy) / 1000)
    assert reference.document["sampling_error"]["accuracy"] == pytest.approx(binomial, rel=0.3)


def test_band_scales_with_the_window_and_stays_in_range():
    reference = {"method": "cbpe", "rows": 100, "sampling_error": {"accuracy": 0.04,
                                                                   "roc_auc": None}}

    small = estimation.with_bands(figures={"accuracy": 0.8, "roc_auc": 0.9}, reference=reference,
                                  n=25)
    large = estimation.with_bands(figures={"accuracy": 0.8}, reference=reference, n=400)

    # sigma = 0.04 * sqrt(100 / n + 1): the window's sampling error and the reference's.
    assert small["accuracy"] == {"value": 0.8, "lower": pytest.approx(0.8 - 3 * 0.04 * 5 ** 0.5),
                                 "upper": 1.0, "method": "cbpe"}
    assert large["accuracy"]["lower"] == pytest.approx(0.8 - 3 * 0.04 * 1.25 ** 0.5)
    assert large["accuracy"]["upper"] == pytest.approx(0.8 + 3 * 0.04 * 1.25 ** 0.5)
    assert small["roc_auc"] == {"value": 0.9, "lower": None, "upper": None, "method": "cbpe"}


def test_no_reference_below_the_minimum_rows_or_with_one_class():
    scores = numpy.linspace(0, 1, 50)
    assert estimation.cbpe_reference_build(scores=scores[:10], is_positive=scores[:10] > 0.5,
                                           predicted_positive=scores[:10] > 0.5, seed=0) is None
    assert estimation.cbpe_reference_build(scores=scores, is_positive=scores > 2,
                                           predicted_positive=scores > 0.5, seed=0) is None


def _heteroscedastic(rng, n, x2_mean):
    frame = pandas.DataFrame({"x1": rng.normal(0, 1, n), "x2": rng.normal(x2_mean, 1, n),
                              "colour": rng.choice(["red", "blue", None], n)})
    noise_sd = 0.5 + numpy.abs(frame["x2"].to_numpy())
    predicted = 3 * frame["x1"].to_numpy()
    actual = predicted + rng.normal(0, 1, n) * noise_sd
    return frame, predicted, actual


COLUMNS = [{"name": "x1", "kind": "numeric"}, {"name": "x2", "kind": "numeric"},
           {"name": "colour", "kind": "categorical"}]


def test_dle_estimates_the_error_of_a_shifted_window():
    rng = numpy.random.default_rng(5)
    frame, predicted, actual = _heteroscedastic(rng, 1500, 0.0)
    reference = estimation.dle_reference_build(features=frame, columns=COLUMNS,
                                               predicted=predicted, actual=actual, seed=0)
    shifted, shifted_predicted, shifted_actual = _heteroscedastic(rng, 1000, 1.0)
    shifted.loc[:5, "colour"] = "green"  # unseen categories are taken, not refused

    expected = estimation.dle_expected(
        frame=estimation.dle_frame(shifted, shifted_predicted, COLUMNS),
        absolute_model=reference.objects[estimation.ABSOLUTE_ERROR_MODEL],
        squared_model=reference.objects[estimation.SQUARED_ERROR_MODEL])

    errors = shifted_actual - shifted_predicted
    assert expected["mae"] == pytest.approx(numpy.abs(errors).mean(), rel=0.1)
    assert expected["rmse"] == pytest.approx(math.sqrt(numpy.mean(errors ** 2)), rel=0.15)
    assert expected["mae"] > reference.document["realized"]["mae"] * 1.2
    assert reference.document["sampling_error"]["mae"] > 0
