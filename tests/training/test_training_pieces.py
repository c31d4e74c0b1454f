"""Units of the training package: datasets, metrics, reference profile, validation gate.

All pure: no database.
"""

import hashlib
import json
from itertools import pairwise

import numpy
import pandas
import pytest
from sklearn import metrics as skm
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import LinearRegression, LogisticRegression

from core.errors import ValidationError
from core.ml.gates import gates_evaluate
from core.ml.kinds import PRIMARY_METRIC
from core.ml.metrics import metrics_evaluate
from core.ml.profile import reference_profile_build
from core.ml.schema import feature_spec
from training import external
from training.datasets import dataset_load

DECILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def small_frame() -> pandas.DataFrame:
    return pandas.DataFrame({"followers": [1.5, 2.0, 3.25], "hashtags": [1, 2, 3],
                             "topic": ["a", "b", "a"]})


# --- datasets -----------------------------------------------------------------------------


def test_dataset_load_reads_csv_and_hashes_its_bytes(tmp_path):
    path = tmp_path / "posts.csv"
    small_frame().to_csv(path, index=False)

    dataset = dataset_load(path)

    assert dataset.format == "csv"
    assert dataset.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    pandas.testing.assert_frame_equal(dataset.frame, pandas.read_csv(path))


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_dataset_load_reads_parquet(tmp_path, suffix):
    path = tmp_path / f"posts{suffix}"
    small_frame().to_parquet(path, index=False)

    dataset = dataset_load(path)

    assert dataset.format == "parquet"
    assert dataset.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    pandas.testing.assert_frame_equal(dataset.frame, pandas.read_parquet(path))


def test_dataset_hash_changes_with_content(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    small_frame().to_csv(first, index=False)
    small_frame().assign(hashtags=[1, 2, 4]).to_csv(second, index=False)

    assert dataset_load(first).sha256 != dataset_load(second).sha256


@pytest.mark.parametrize(("name", "content"), [
    ("posts.xlsx", b"a,b\n1,2\n"),          # unknown extension
    ("posts.parquet", b"not a parquet file"),  # unreadable
    ("posts.csv", b"\xff\xfe\x00bad\x00\n\xff"),  # undecodable bytes
])
def test_dataset_load_refuses_unreadable_files(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(ValidationError) as raised:
        dataset_load(path)

    assert "\n" not in raised.value.message
    assert name in raised.value.message


def test_dataset_load_refuses_missing_file(tmp_path):
    with pytest.raises(ValidationError, match="no such file"):
        dataset_load(tmp_path / "absent.csv")


# --- metrics ------------------------------------------------------------------------------


def test_regression_metrics_match_sklearn():
    rng = numpy.random.default_rng(1)
    features = rng.normal(size=(60, 2))
    target = features @ [3.0, -1.0] + rng.normal(scale=0.5, size=60)
    estimator = LinearRegression().fit(features[:40], target[:40])
    predicted = estimator.predict(features[40:])

    result = metrics_evaluate(task="regression", estimator=estimator,
                              features=features[40:], target=target[40:])

    assert result == {
        "r2": skm.r2_score(target[40:], predicted),
        "mae": skm.mean_absolute_error(target[40:], predicted),
        "rmse": skm.root_mean_squared_error(target[40:], predicted),
    }


def binary_problem():
    rng = numpy.random.default_rng(2)
    features = rng.normal(size=(200, 2))
    target = numpy.where(features[:, 0] + rng.normal(scale=1.0, size=200) > 0.8, "yes", "no")
    return LogisticRegression().fit(features, target), features, target


def test_binary_metrics_take_classes_1_as_positive_class():
    estimator, features, target = binary_problem()
    assert list(estimator.classes_) == ["no", "yes"]
    predicted = estimator.predict(features)
    probability = estimator.predict_proba(features)[:, 1]

    result = metrics_evaluate(task="binary_classification", estimator=estimator,
                              features=features, target=target)

    # "yes" and "no" give different precision and recall on this data: the test would
    # notice the wrong positive class.
    assert skm.precision_score(target, predicted, pos_label="yes") != skm.precision_score(
        target, predicted, pos_label="no")
    assert result["precision"] == skm.precision_score(target, predicted, pos_label="yes")
    assert result["recall"] == skm.recall_score(target, predicted, pos_label="yes")
    assert result["f1"] == skm.f1_score(target, predicted, pos_label="yes")
    assert result["accuracy"] == skm.accuracy_score(target, predicted)
    assert result["roc_auc"] == skm.roc_auc_score(target == "yes", probability)
    assert result["brier"] == skm.brier_score_loss(target == "yes", probability)


def test_binary_metrics_are_strict_json_when_roc_auc_is_undefined():
    estimator, features, _ = binary_problem()
    one_class = numpy.array(["yes"] * len(features))

    result = metrics_evaluate(task="binary_classification", estimator=estimator,
                              features=features, target=one_class)

    assert result["roc_auc"] is None
    json.dumps(result, allow_nan=False)
    assert all(value is None or type(value) is float for value in result.values())


def test_multiclass_metrics_are_macro_averaged_with_ovr_roc_auc():
    rng = numpy.random.default_rng(3)
    features = rng.normal(size=(150, 2))
    target = numpy.digitize(features[:, 0] + rng.normal(scale=0.7, size=150), [-0.5, 0.5])
    estimator = LogisticRegression().fit(features, target)
    predicted = estimator.predict(features)

    result = metrics_evaluate(task="multiclass_classification", estimator=estimator,
                              features=features, target=target)

    assert result["f1"] == skm.f1_score(target, predicted, average="macro")
    assert result["precision"] == skm.precision_score(target, predicted, average="macro")
    assert result["recall"] == skm.recall_score(target, predicted, average="macro")
    assert result["roc_auc"] == skm.roc_auc_score(
        target, estimator.predict_proba(features), multi_class="ovr")


def test_anomaly_metrics_are_contamination_and_score_quantiles():
    rng = numpy.random.default_rng(4)
    features = numpy.vstack([rng.normal(size=(95, 2)), rng.normal(8, 1, size=(5, 2))])
    estimator = IsolationForest(random_state=0, contamination=0.05).fit(features)
    scores = estimator.decision_function(features)

    result = metrics_evaluate(task="anomaly_detection", estimator=estimator,
                              features=features, target=None)

    assert result["contamination"] == numpy.mean(estimator.predict(features) == -1)
    assert [result[q] for q in ("q01", "q05", "q50", "q95", "q99")] == list(
        numpy.quantile(scores, [0.01, 0.05, 0.5, 0.95, 0.99]))


def test_primary_metrics_per_task():
    assert PRIMARY_METRIC == {
        "regression": ("r2", True),
        "binary_classification": ("roc_auc", True),
        "multiclass_classification": ("f1", True),
        "anomaly_detection": None,
    }


# --- reference profile --------------------------------------------------------------------

NUMERIC_SCHEMA = {"target": "y", "features": [feature_spec(name="x", dtype="float")]}


def test_profile_edges_are_deciles_without_duplicates():
    values = numpy.array([0.0] * 50 + list(range(1, 51)), dtype=float)
    frame = pandas.DataFrame({"x": values})

    profile = reference_profile_build(frame=frame, schema=NUMERIC_SCHEMA,
                                      outputs=values, seed=0)

    expected = numpy.unique(numpy.quantile(values, DECILES))
    assert len(expected) < 9  # the duplicated zero deciles were removed
    assert profile["features"]["x"]["edges"] == expected.tolist()


def test_profile_counts_follow_left_open_bins_and_sum_to_n():
    values = numpy.array([1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10],
                         dtype=float)
    frame = pandas.DataFrame({"x": values})

    entry = reference_profile_build(frame=frame, schema=NUMERIC_SCHEMA, outputs=values,
                                    seed=0)["features"]["x"]

    edges = entry["edges"]
    bounds = [-numpy.inf, *edges, numpy.inf]
    expected = [int(((values > low) & (values <= high)).sum())
                for low, high in pairwise(bounds)]
    assert entry["counts"] == expected
    assert len(entry["counts"]) == len(edges) + 1
    assert sum(entry["counts"]) == entry["n"] == len(values)
    assert entry["mean"] == numpy.mean(values)
    assert entry["std"] == numpy.std(values)


def test_profile_keeps_every_value_below_5000():
    values = numpy.random.default_rng(5).normal(size=1234)
    frame = pandas.DataFrame({"x": values})

    entry = reference_profile_build(frame=frame, schema=NUMERIC_SCHEMA, outputs=values,
                                    seed=0)["features"]["x"]

    assert entry["sample"] == values.tolist()


def test_profile_samples_5000_values_without_replacement_with_the_seed():
    values = numpy.arange(6000, dtype=float)
    frame = pandas.DataFrame({"x": values})

    entry = reference_profile_build(frame=frame, schema=NUMERIC_SCHEMA, outputs=values,
                                    seed=7)["features"]["x"]

    assert len(entry["sample"]) == 5000
    assert len(set(entry["sample"])) == 5000
    expected = numpy.random.default_rng(7).choice(values, size=5000, replace=False)
    assert entry["sample"] == expected.tolist()


def test_profile_is_deterministic_for_a_seed():
    values = numpy.random.default_rng(6).normal(size=7000)
    frame = pandas.DataFrame({"x": values})

    def build(seed):
        return reference_profile_build(frame=frame, schema=NUMERIC_SCHEMA, outputs=values,
                                       seed=seed)

    assert build(11) == build(11)
    assert build(11)["features"]["x"]["sample"] != build(12)["features"]["x"]["sample"]


def test_profile_counts_categories_and_treats_bools_as_categories():
    schema = {"target": "y", "features": [
        feature_spec(name="topic", dtype="category", categories=["a", "b"]),
        feature_spec(name="verified", dtype="bool"),
        feature_spec(name="region", dtype="category", categories=["eu"], protected=True,
                     input=False),
    ]}
    frame = pandas.DataFrame({"topic": ["a", "b", "a", None], "verified": [True, False, True, True],
                              "region": ["eu"] * 4})

    profile = reference_profile_build(frame=frame, schema=schema,
                                      outputs=numpy.array([0.1, 0.2, 0.3, 0.4]), seed=0)

    assert profile["features"]["topic"] == {"kind": "categorical", "n": 3, "missing": 1,
                                            "counts": {"a": 2, "b": 1}}
    assert profile["features"]["verified"] == {"kind": "categorical", "n": 4, "missing": 0,
                                               "counts": {"False": 1, "True": 3}}
    assert "region" not in profile["features"]  # not a model input


@pytest.mark.parametrize("flags", [
    [1.0, 0.0, 1.0, numpy.nan],          # the canonical training frame (model_frame)
    ["true", "false", "yes", None],       # a raw file
])
def test_profile_counts_bools_as_true_and_false_whatever_their_form(flags):
    schema = {"target": "y", "features": [feature_spec(name="verified", dtype="bool")]}
    frame = pandas.DataFrame({"verified": flags})

    profile = reference_profile_build(frame=frame, schema=schema,
                                      outputs=numpy.zeros(4), seed=0)

    # The drift check reads logged JSON booleans as "True"/"False": the keys must match.
    assert profile["features"]["verified"] == {"kind": "categorical", "n": 3, "missing": 1,
                                               "counts": {"False": 1, "True": 2}}


def test_profile_output_is_categorical_for_predicted_classes():
    frame = pandas.DataFrame({"x": [1.0, 2.0, 3.0]})

    profile = reference_profile_build(frame=frame, schema=NUMERIC_SCHEMA,
                                      outputs=numpy.array([0, 2, 2]), seed=0,
                                      output_kind="categorical")

    assert profile["output"]["counts"] == {"0": 1, "2": 2}


def test_profile_is_strict_json_and_leaves_out_non_finite_values():
    values = numpy.array([1.0, numpy.nan, 3.0, numpy.inf])
    frame = pandas.DataFrame({"x": values})

    profile = reference_profile_build(frame=frame, schema=NUMERIC_SCHEMA, outputs=values,
                                      seed=0)

    entry = profile["features"]["x"]
    assert (entry["n"], entry["missing"], entry["sample"]) == (2, 2, [1.0, 3.0])
    assert json.loads(json.dumps(profile, allow_nan=False)) == profile


# --- validation gate ----------------------------------------------------------------------


@pytest.fixture
def margin(settings):
    settings.VALIDATION_GATE_MARGIN = 0.02
    return 0.02


def test_gate_fails_when_worse_than_production_by_more_than_margin(margin):
    result = gates_evaluate(task="regression", metrics={"r2": 0.85},
                            production_metrics={"r2": 0.90})["validation"]

    assert result["passed"] is False
    assert (result["metric"], result["candidate"], result["production"], result["margin"]) == (
        "r2", 0.85, 0.90, margin)


@pytest.mark.parametrize("candidate", [0.89, 0.88, 0.95])
def test_gate_passes_within_margin_or_better(margin, candidate):
    result = gates_evaluate(task="binary_classification", metrics={"roc_auc": candidate},
                            production_metrics={"roc_auc": 0.90})["validation"]

    assert result["passed"] is True


def test_gate_margin_comes_from_settings(settings):
    settings.VALIDATION_GATE_MARGIN = 0.1

    result = gates_evaluate(task="regression", metrics={"r2": 0.85},
                            production_metrics={"r2": 0.90})["validation"]

    assert result["passed"] is True


def test_gate_passes_without_production_version(margin):
    result = gates_evaluate(task="multiclass_classification", metrics={"f1": 0.1},
                            production_metrics=None)["validation"]

    assert result["passed"] is True
    assert "no production version" in result["reason"]


def test_gate_fails_when_candidate_metric_is_undefined(margin):
    result = gates_evaluate(task="binary_classification", metrics={"roc_auc": None},
                            production_metrics={"roc_auc": 0.9})["validation"]

    assert result["passed"] is False


def test_gate_is_not_applicable_to_anomaly_detection(margin):
    result = gates_evaluate(task="anomaly_detection", metrics={"contamination": 0.5},
                            production_metrics={"contamination": 0.01})["validation"]

    assert (result["passed"], result["metric"]) == (True, None)
    assert "not applicable" in result["reason"]


# --- external model evaluation ------------------------------------------------------------


def labelled_frame() -> pandas.DataFrame:
    rng = numpy.random.default_rng(8)
    frame = pandas.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    frame["label"] = (frame["a"] > 0).astype(int)
    return frame


def test_external_evaluation_refuses_a_classifier_as_regressor():
    frame = labelled_frame()
    estimator = LogisticRegression().fit(frame[["a", "b"]], frame["label"])

    with pytest.raises(ValidationError, match="not a regressor"):
        external.external_model_evaluate(estimator=estimator, frame=frame, target="label",
                                         task="regression", protected=[])


def test_external_evaluation_needs_two_classes_for_binary():
    frame = labelled_frame()
    frame["label"] = numpy.arange(80) % 3
    estimator = LogisticRegression().fit(frame[["a", "b"]], frame["label"])

    with pytest.raises(ValidationError, match="exactly 2 classes"):
        external.external_model_evaluate(estimator=estimator, frame=frame, target="label",
                                         task="binary_classification", protected=[])


def test_external_evaluation_checks_feature_count_of_array_fitted_models():
    frame = labelled_frame()
    estimator = LogisticRegression().fit(frame[["a"]].to_numpy(), frame["label"])

    with pytest.raises(ValidationError, match="takes 1 features but the data has 2"):
        external.external_model_evaluate(estimator=estimator, frame=frame, target="label",
                                         task="binary_classification", protected=[])


def test_external_evaluation_drops_and_counts_rows_without_target():
    frame = labelled_frame()
    estimator = LogisticRegression().fit(frame[["a", "b"]], frame["label"])
    frame["label"] = frame["label"].astype(float)
    frame.loc[:9, "label"] = numpy.nan

    evaluated = external.external_model_evaluate(
        estimator=estimator, frame=frame, target="label", task="binary_classification",
        protected=[])

    assert evaluated.samples == 70
    assert evaluated.metrics["rows_without_target"] == 10
    labelled = frame.iloc[10:]
    assert evaluated.metrics["roc_auc"] == skm.roc_auc_score(
        labelled["label"], estimator.predict_proba(labelled[["a", "b"]])[:, 1])
    assert evaluated.reference_profile["rows"] == 80  # every row of the file


def test_estimator_params_are_strict_json():
    estimator = LogisticRegression(C=numpy.float64(0.5), class_weight={0: 1.0, 1: 2.0})
    estimator.set_params(tol=numpy.nan)

    params = external.estimator_params(estimator)

    assert params["C"] == 0.5
    assert params["tol"] == "nan"
    json.dumps(params, allow_nan=False)
