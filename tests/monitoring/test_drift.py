"""Drift checks over the prediction log (monitoring.drift), on the database.

Logged rows are inserted directly, drawn from the version's own training distribution
(tests.factories.drift_frame); expected figures are computed here with numpy/scipy from
the reference profile and the logged values.
"""

from datetime import timedelta
from itertools import pairwise

import numpy
import pandas
import pytest
from django.utils import timezone
from scipy import stats as scipy_stats
from scipy.spatial.distance import jensenshannon

from core.ml.schema import feature_spec
from monitoring.drift import drift_check, drift_check_all
from monitoring.models import Alert, DriftReport
from predictions.models import PredictionLog
from tests.factories import (
    drift_frame,
    drift_outputs,
    prediction_logs_create,
    register_profiled_version,
    register_version,
)

TOLERANCE = 1e-9


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def version(people):
    return register_profiled_version(**people)


def _log(version, frame, *, at, values=None, **kwargs) -> int:
    values = drift_outputs(frame) if values is None else values
    return prediction_logs_create(version=version, frame=frame, values=values, created_at=at,
                                  **kwargs)


def _drifted(report) -> set[str]:
    return {name for name, figures in report.features.items() if figures["drifted"]}


def _expected_numeric(entry: dict, values: numpy.ndarray) -> dict:
    bounds = [-numpy.inf, *entry["edges"], numpy.inf]
    c = numpy.array([numpy.sum((values > low) & (values <= high))
                     for low, high in pairwise(bounds)])
    r = numpy.array(entry["counts"])
    rf, cf = numpy.maximum(r / r.sum(), 1e-4), numpy.maximum(c / c.sum(), 1e-4)
    ks = scipy_stats.ks_2samp(numpy.array(entry["sample"]), values)
    return {"psi": numpy.sum((cf - rf) * numpy.log(cf / rf)), "ks_statistic": ks.statistic,
            "ks_pvalue": ks.pvalue,
            "js_distance": jensenshannon(r / r.sum(), c / c.sum(), base=2)}


def _expected_categorical(entry: dict, values: list[str]) -> dict:
    categories = sorted(set(entry["counts"]) | set(values))
    r = numpy.array([entry["counts"].get(category, 0) for category in categories])
    c = numpy.array([values.count(category) for category in categories])
    rf, cf = numpy.maximum(r / r.sum(), 1e-4), numpy.maximum(c / c.sum(), 1e-4)
    chi2 = scipy_stats.chi2_contingency(numpy.array([r, c]), correction=False)
    return {"psi": numpy.sum((cf - rf) * numpy.log(cf / rf)),
            "chi2_statistic": chi2.statistic, "chi2_pvalue": chi2.pvalue,
            "js_distance": jensenshannon(r / r.sum(), c / c.sum(), base=2)}


def _assert_figures(actual: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert actual[key] == pytest.approx(float(value), abs=TOLERANCE), key


def test_figures_match_an_independent_computation_on_the_logged_values(version, now):
    frame = drift_frame(n=400, seed=1, shift={"followers": 60.0})
    _log(version, frame, at=now - timedelta(hours=1))
    profile = version.reference_profile

    report = drift_check(version_id=version.pk, now=now)

    features = profile["features"]
    _assert_figures(report.features["followers"], _expected_numeric(
        features["followers"], frame["followers"].to_numpy()))
    _assert_figures(report.features["hashtags"], _expected_numeric(
        features["hashtags"], frame["hashtags"].to_numpy(dtype=float)))
    _assert_figures(report.features["platform"], _expected_categorical(
        features["platform"], frame["platform"].tolist()))
    _assert_figures(report.features["has_link"], _expected_categorical(
        features["has_link"], [str(value) for value in frame["has_link"]]))
    _assert_figures(report.prediction, _expected_numeric(profile["output"], drift_outputs(frame)))
    assert report.n_reference == 1000
    assert report.n_current == 400


def test_a_window_from_the_training_distribution_shows_no_drift(version, now):
    _log(version, drift_frame(n=300, seed=1), at=now - timedelta(hours=2))

    report = drift_check(version_id=version.pk, now=now)

    assert report.status == "ok"
    assert set(report.features) == {"followers", "hashtags", "platform", "has_link"}
    assert _drifted(report) == set()
    assert report.dataset_drift is False
    assert report.prediction["drifted"] is False
    assert list(DriftReport.objects.values_list("pk", flat=True)) == [report.pk]
    assert not Alert.objects.exists()


def test_a_mean_shift_of_one_standard_deviation_flags_that_feature_and_no_other(version, now):
    _log(version, drift_frame(n=300, seed=1, shift={"followers": 200.0}),
         at=now - timedelta(hours=2))

    report = drift_check(version_id=version.pk, now=now)

    assert _drifted(report) == {"followers"}
    assert report.features["followers"]["severity"] == "critical"
    assert report.dataset_drift is False  # 1 of 4 features


def test_a_critical_feature_raises_a_critical_drift_alert(version, now):
    _log(version, drift_frame(n=300, seed=1, shift={"followers": 200.0}),
         at=now - timedelta(hours=2))

    report = drift_check(version_id=version.pk, now=now)

    alert = Alert.objects.get()
    assert (alert.kind, alert.severity) == ("drift", "critical")
    assert (alert.model_name, alert.version) == ("drift-likes", version.version)
    assert alert.payload["report_id"] == report.pk
    assert set(alert.payload["drifted"]) == {"followers"}


def test_dataset_drift_when_half_the_features_drift_raises_an_alert(version, now):
    _log(version, drift_frame(n=300, seed=1, shift={"followers": 200.0, "hashtags": 2}),
         at=now - timedelta(hours=2))

    report = drift_check(version_id=version.pk, now=now)

    assert _drifted(report) == {"followers", "hashtags"}
    assert report.dataset_drift is True
    alert = Alert.objects.get()
    assert alert.kind == "drift"
    assert set(alert.payload["drifted"]) == {"followers", "hashtags"}
    assert alert.payload["dataset_drift"] is True


def test_a_new_category_is_reported_and_drives_chi_square(version, now):
    frame = drift_frame(n=300, seed=1)
    frame.loc[::5, "platform"] = "threads"
    _log(version, frame, at=now - timedelta(hours=2))

    report = drift_check(version_id=version.pk, now=now)

    platform = report.features["platform"]
    assert platform["new_categories"] == ["threads"]
    assert platform["current_counts"]["threads"] == 60
    assert platform["psi"] > 0.25
    assert platform["chi2_pvalue"] < 0.01
    assert _drifted(report) == {"platform"}


def test_missing_and_non_numeric_values_do_not_crash_the_check(version, now):
    frame = drift_frame(n=200, seed=1).astype({"followers": object})
    frame.loc[:9, "followers"] = None
    frame.loc[10:14, "followers"] = "NaN"
    _log(version, frame, at=now - timedelta(hours=2),
         values=drift_outputs(drift_frame(n=200, seed=1)))
    PredictionLog.objects.filter(pk__in=PredictionLog.objects.values("pk")[:3]).update(
        features={"hashtags": 3, "platform": "x", "has_link": True})  # followers absent

    report = drift_check(version_id=version.pk, now=now)

    followers = report.features["followers"]
    assert report.status == "ok"
    assert followers["missing"] in (15, 16, 17, 18)  # 15, and up to 3 rows without the key
    assert followers["n_current"] == 200 - followers["missing"]
    assert followers["psi"] is not None and followers["ks_pvalue"] is not None


def test_a_window_below_the_minimum_count_is_insufficient_data(version, now, settings):
    settings.DRIFT_MIN_SAMPLES = 100
    _log(version, drift_frame(n=99, seed=1, shift={"followers": 500.0}),
         at=now - timedelta(hours=1))

    report = drift_check(version_id=version.pk, now=now)

    assert (report.status, report.n_current, report.dataset_drift) == (
        "insufficient_data", 99, False)
    assert (report.features, report.prediction) == ({}, None)
    assert DriftReport.objects.get().status == "insufficient_data"
    assert not Alert.objects.exists()


def test_only_rows_inside_the_window_are_counted(version, now, settings):
    settings.DRIFT_WINDOW_HOURS = 24
    _log(version, drift_frame(n=150, seed=1), at=now - timedelta(hours=23))
    _log(version, drift_frame(n=70, seed=2), at=now - timedelta(hours=25))
    _log(version, drift_frame(n=30, seed=3), at=now + timedelta(minutes=1))

    report = drift_check(version_id=version.pk, now=now)

    assert report.n_current == 150
    assert (report.window_start, report.window_end) == (now - timedelta(hours=24), now)


def test_every_arm_of_the_version_is_in_the_window(version, now):
    _log(version, drift_frame(n=80, seed=1), at=now - timedelta(hours=1))
    _log(version, drift_frame(n=40, seed=2), at=now - timedelta(hours=1), arm="shadow")

    report = drift_check(version_id=version.pk, now=now)

    assert (report.status, report.n_current) == ("ok", 120)


def test_a_small_chunk_size_gives_the_same_figures_as_a_large_one(version, now, settings):
    _log(version, drift_frame(n=250, seed=1, shift={"followers": 30.0}),
         at=now - timedelta(hours=1))
    settings.MONITORING_CHUNK_SIZE = 7
    small = drift_check(version_id=version.pk, now=now)
    settings.MONITORING_CHUNK_SIZE = 5000
    large = drift_check(version_id=version.pk, now=now)

    assert small.features == large.features
    assert small.prediction == large.prediction
    assert small.n_current == large.n_current == 250


def test_check_all_writes_one_report_per_live_version(people, now):
    champion = register_profiled_version(**people)
    challenger = register_profiled_version(**people, seed=1, traffic=20)
    register_profiled_version(**people, name="drift-other", seed=2)
    register_profiled_version(**people, name="drift-other", seed=3, shadow=True)
    register_version(user=people["user"], name="drift-idle")  # in testing: not live
    _log(champion, drift_frame(n=120, seed=4), at=now - timedelta(hours=1))

    reports = drift_check_all(now=now)

    checked = {(r.model_name, r.version): r.status for r in reports}
    assert checked == {
        ("drift-likes", champion.version): "ok",
        ("drift-likes", challenger.version): "insufficient_data",
        ("drift-other", "1.0.0"): "insufficient_data",
        ("drift-other", "1.1.0"): "insufficient_data",
    }
    assert DriftReport.objects.count() == 4


CLASSIFIER_SCHEMA = {"target": "converted", "features": [feature_spec(name="pages", dtype="float")]}


def test_a_binary_classifier_is_checked_on_its_positive_class_probability(people, now):
    rng = numpy.random.default_rng(0)
    frame = pandas.DataFrame({"pages": rng.normal(10, 3, 500)})
    reference = rng.beta(2, 5, 500)
    version = register_profiled_version(
        **people, name="drift-leads", task="binary_classification", schema=CLASSIFIER_SCHEMA,
        frame=frame, outputs=reference)
    current = rng.beta(2.5, 5, 200)
    # Labels 2 and 10: the positive class is 10 (labels compare as numbers, not as text).
    _log(version, frame.iloc[:200], at=now - timedelta(hours=1),
         values=[10 if p >= 0.5 else 2 for p in current],
         probabilities=[{"2": 1 - p, "10": p} for p in current])

    report = drift_check(version_id=version.pk, now=now)

    _assert_figures(report.prediction, _expected_numeric(version.reference_profile["output"],
                                                         current))


def test_a_multiclass_classifier_is_checked_on_its_predicted_class(people, now):
    rng = numpy.random.default_rng(0)
    frame = pandas.DataFrame({"pages": rng.normal(10, 3, 300)})
    version = register_profiled_version(
        **people, name="drift-tiers", task="multiclass_classification", schema=CLASSIFIER_SCHEMA,
        frame=frame, outputs=rng.choice(["bronze", "gold", "silver"], 300),
        output_kind="categorical")
    current = rng.choice(["bronze", "gold", "silver", "platinum"], 150).tolist()
    _log(version, frame.iloc[:150], at=now - timedelta(hours=1), values=current,
         probabilities=[dict.fromkeys(("bronze", "gold", "silver", "platinum"), 0.25)] * 150)

    report = drift_check(version_id=version.pk, now=now)

    assert report.prediction["kind"] == "categorical"
    assert report.prediction["new_categories"] == ["platinum"]
    _assert_figures(report.prediction, _expected_categorical(
        version.reference_profile["output"], current))


def test_an_anomaly_model_is_checked_on_its_anomaly_score(people, now):
    rng = numpy.random.default_rng(0)
    frame = pandas.DataFrame({"pages": rng.normal(10, 3, 300)})
    version = register_profiled_version(
        **people, name="drift-anomaly", task="anomaly_detection", schema=CLASSIFIER_SCHEMA,
        frame=frame, outputs=rng.normal(0.1, 0.05, 300))
    scores = rng.normal(0.0, 0.05, 150)
    _log(version, frame.iloc[:150], at=now - timedelta(hours=1), values=[False] * 150,
         anomaly_scores=scores)

    report = drift_check(version_id=version.pk, now=now)

    _assert_figures(report.prediction, _expected_numeric(version.reference_profile["output"],
                                                         scores))
    assert report.prediction["drifted"] is True
