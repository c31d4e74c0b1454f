"""Validation diagnostics (pure: no database): residuals, calibration, confusion matrices."""

import json

import numpy
import pytest
from sklearn.calibration import calibration_curve
from sklearn.datasets import load_iris, make_classification
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import confusion_matrix

from core.ml.diagnostics import SAMPLE_SIZE, validation_diagnostics
from core.ml.kinds import ANOMALY, BINARY, MULTICLASS, REGRESSION


class ConstantProbabilityClassifier:
    """A binary classifier that says 0.9 for every row: badly calibrated wherever fewer
    than 90 % of rows are positive."""

    classes_ = numpy.array(["no", "yes"])

    def predict_proba(self, features):
        return numpy.tile([0.1, 0.9], (len(features), 1))

    def predict(self, features):
        return numpy.full(len(features), "yes")


def linear_rows(n: int, seed: int = 0) -> tuple[numpy.ndarray, numpy.ndarray]:
    rng = numpy.random.default_rng(seed)
    features = rng.uniform(0, 100, (n, 1))
    return features, 3 * features[:, 0] + 5


@pytest.fixture(scope="module")
def binary_model():
    features, target = make_classification(n_samples=300, random_state=0)
    return LogisticRegression().fit(features, target), features, target


def test_residual_bins_of_a_known_linear_model_hold_its_offset():
    features, target = linear_rows(200)
    model = LinearRegression().fit(features, target)

    result = validation_diagnostics(task=REGRESSION, estimator=model, features=features,
                                    target=target + 4.0, sample_seed=0)

    bins = result["residuals"]["bins"]
    assert len(bins) == 10
    assert sum(b["count"] for b in bins) == 200
    predicted = model.predict(features)
    edges = numpy.quantile(predicted, numpy.linspace(0, 1, 11))
    assert [b["lower"] for b in bins] == pytest.approx(edges[:-1].tolist())
    for b in bins:
        assert (b["residual_mean"], b["residual_p10"], b["residual_p90"]) == pytest.approx(
            (4.0, 4.0, 4.0))


def test_residual_percentiles_follow_where_the_model_errs():
    features, target = linear_rows(200)
    model = LinearRegression().fit(features, target)
    errors = numpy.where(features[:, 0] > 50, 10.0, 0.0)  # wrong only above the middle

    bins = validation_diagnostics(task=REGRESSION, estimator=model, features=features,
                                  target=target + errors, sample_seed=0)["residuals"]["bins"]

    assert [b["residual_mean"] for b in bins[:4]] == pytest.approx([0.0] * 4)
    assert [b["residual_mean"] for b in bins[-4:]] == pytest.approx([10.0] * 4)


def test_residual_sample_is_bounded_and_drawn_with_the_seed():
    features, target = linear_rows(1000)
    model = LinearRegression().fit(features, target)

    def sample(seed):
        return validation_diagnostics(task=REGRESSION, estimator=model, features=features,
                                      target=target, sample_seed=seed)["residuals"]["sample"]

    assert len(sample(1)) == SAMPLE_SIZE
    assert sample(1) == sample(1)
    assert sample(1) != sample(2)


def test_residual_sample_keeps_every_row_of_a_small_set_in_order():
    features, target = linear_rows(40)
    model = LinearRegression().fit(features, target)

    result = validation_diagnostics(task=REGRESSION, estimator=model, features=features,
                                    target=target + 1.0, sample_seed=0)

    expected = numpy.column_stack([model.predict(features), numpy.ones(40)])
    numpy.testing.assert_allclose(result["residuals"]["sample"], expected)


def test_a_miscalibrated_classifier_shows_observed_rates_away_from_the_diagonal():
    target = numpy.array(["yes"] * 30 + ["no"] * 70)

    result = validation_diagnostics(task=BINARY, estimator=ConstantProbabilityClassifier(),
                                    features=numpy.zeros((100, 1)), target=target, sample_seed=0)

    assert result["calibration"] == {"positive_label": "yes", "bins": [
        {"lower": 0.8, "upper": 0.9, "count": 100, "mean_predicted": pytest.approx(0.9),
         "observed_rate": pytest.approx(0.3)}]}


def test_calibration_bins_are_sklearns_calibration_curve_with_counts(binary_model):
    model, features, target = binary_model

    bins = validation_diagnostics(task=BINARY, estimator=model, features=features,
                                  target=target, sample_seed=0)["calibration"]["bins"]

    observed, predicted = calibration_curve(target, model.predict_proba(features)[:, 1],
                                            n_bins=10)
    assert [b["observed_rate"] for b in bins] == observed.tolist()
    assert [b["mean_predicted"] for b in bins] == predicted.tolist()
    assert sum(b["count"] for b in bins) == len(target)


def test_binary_confusion_counts_equal_sklearns_at_the_models_predict(binary_model):
    model, features, target = binary_model

    confusion = validation_diagnostics(task=BINARY, estimator=model, features=features,
                                       target=target, sample_seed=0)["confusion"]

    assert confusion == {"labels": [0, 1],
                         "counts": confusion_matrix(target, model.predict(features)).tolist()}


def test_multiclass_confusion_counts_every_class_of_the_model_even_when_absent():
    features, target = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(features, target)
    setosa_free = target != 0

    result = validation_diagnostics(task=MULTICLASS, estimator=model,
                                    features=features[setosa_free], target=target[setosa_free],
                                    sample_seed=0)

    assert result["kind"] == "classification"
    assert "calibration" not in result
    assert result["confusion"]["labels"] == [0, 1, 2]
    assert result["confusion"]["counts"] == confusion_matrix(
        target[setosa_free], model.predict(features[setosa_free]), labels=[0, 1, 2]).tolist()


def test_anomaly_detection_has_no_diagnostics_and_says_why():
    result = validation_diagnostics(task=ANOMALY, estimator=None, features=numpy.zeros((7, 2)),
                                    target=None, sample_seed=0)

    assert result["kind"] == "not_applicable"
    assert result["rows"] == 7
    assert "no target" in result["reason"]


def test_diagnostics_are_strict_json_with_string_labels():
    target = numpy.array(["yes", "no"] * 10)

    result = validation_diagnostics(task=BINARY, estimator=ConstantProbabilityClassifier(),
                                    features=numpy.zeros((20, 1)), target=target, sample_seed=0)

    assert json.loads(json.dumps(result, allow_nan=False)) == result
    assert result["confusion"] == {"labels": ["no", "yes"], "counts": [[0, 10], [0, 10]]}
