"""The drift check's PostgreSQL path (COPY parsed by pandas, monitoring.pg_copy) against
the streamed path every other database takes: the same rows must give the same report,
whatever the logged values (docs/monitoring.md#drift)."""

from datetime import timedelta

import numpy
import pandas
import pytest
from django.db import DataError, transaction
from django.db.models import IntegerField, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Repeat
from django.utils import timezone

from core.ml.schema import feature_spec
from monitoring import drift, pg_copy
from monitoring.drift import drift_check
from tests.factories import (
    drift_frame,
    drift_outputs,
    prediction_logs_create,
    register_profiled_version,
)

# Categories that COPY's text format escapes or that look like its NULL, a number or a bool.
AWKWARD_CATEGORIES = ["tab\there", "line\nbreak", "back\\slash", "\\N", "", "quote\"d", "ünï",
                      "12", "true", "NULL", "#hash", "  padded "]
# Values of a numeric feature that are not plain numbers.
AWKWARD_NUMBERS = [None, "NaN", "12", " 7", "abc", "", True, False, "1e3", "inf", "-0",
                   "7\t", 1e308, -0.0, 1e-320]


def _awkward_frame(n: int, seed: int) -> pandas.DataFrame:
    """drift_frame rows whose every column also holds missing and awkward values."""
    rng = numpy.random.default_rng(seed)
    frame = drift_frame(n=n, seed=seed, shift={"followers": 40.0}).astype(
        {"followers": object, "platform": object, "has_link": object})
    frame.loc[rng.choice(n, 30, replace=False), "followers"] = numpy.resize(AWKWARD_NUMBERS, 30)
    frame.loc[rng.choice(n, 30, replace=False), "platform"] = numpy.resize(
        numpy.array([*AWKWARD_CATEGORIES, None], dtype=object), 30)
    frame.loc[rng.choice(n, 10, replace=False), "has_link"] = None
    # A run of a few rows where followers holds only strings: a COPY chunk of text.
    frame.loc[100:104, "followers"] = ["abc", "12", "NaN", "x", "5"]
    return frame


def _both_paths(version, now, monkeypatch) -> tuple:
    copied = drift_check(version_id=version.pk, now=now)
    with monkeypatch.context() as patch:
        patch.setattr(drift, "_copy", drift._stream)
        streamed = drift_check(version_id=version.pk, now=now)
    return copied, streamed


def _assert_identical(copied, streamed) -> None:
    assert copied.n_current == streamed.n_current
    assert copied.status == streamed.status == "ok"
    assert copied.features == streamed.features
    assert copied.prediction == streamed.prediction
    assert copied.dataset_drift == streamed.dataset_drift


@pytest.fixture
def now():
    return timezone.now()


@pytest.mark.postgres
@pytest.mark.parametrize("chunk_rows", [7, 50_000])
def test_copy_and_stream_give_identical_reports_on_awkward_features(
        people, now, monkeypatch, chunk_rows):
    monkeypatch.setattr(drift, "COPY_CHUNK_ROWS", chunk_rows)
    version = register_profiled_version(**people)
    frame = _awkward_frame(400, seed=1)
    prediction_logs_create(version=version, frame=frame, created_at=now - timedelta(hours=1),
                           values=drift_outputs(drift_frame(n=400, seed=1)))
    rows = drift.PredictionLog.objects.filter(model_version=version).values_list("pk", flat=True)
    drift.PredictionLog.objects.filter(pk__in=list(rows[:3])).update(
        features={"hashtags": 3})  # every other key absent

    copied, streamed = _both_paths(version, now, monkeypatch)

    _assert_identical(copied, streamed)
    platform = copied.features["platform"]
    assert set(AWKWARD_CATEGORIES) <= set(platform["current_counts"])
    assert set(platform["new_categories"]) == set(AWKWARD_CATEGORIES)
    assert copied.features["followers"]["missing"] > 10
    assert copied.features["has_link"]["missing"] >= 10


CLASSIFIER_SCHEMA = {"target": "converted", "features": [feature_spec(name="pages", dtype="float")]}


def pages_version(people, rng, *, outputs, **kwargs):
    """(training frame, version) of a one-feature model profiled on 300 rows; `outputs`
    draws the profiled outputs from `rng` after the frame's rows."""
    frame = pandas.DataFrame({"pages": rng.normal(10, 3, 300)})
    version = register_profiled_version(**people, schema=CLASSIFIER_SCHEMA, frame=frame,
                                        outputs=outputs(rng), **kwargs)
    return frame, version


@pytest.mark.postgres
def test_copy_and_stream_give_identical_reports_on_a_binary_classifier(people, now, monkeypatch):
    rng = numpy.random.default_rng(0)
    frame, version = pages_version(people, rng, name="copy-leads",
                                   task="binary_classification",
                                   outputs=lambda rng: rng.beta(2, 5, 300))
    current = rng.beta(2.5, 5, 200)
    prediction_logs_create(
        version=version, frame=frame.iloc[:200], created_at=now - timedelta(hours=1),
        values=[10 if p >= 0.5 else 2 for p in current],
        probabilities=[{"2": 1 - p, "10": p} for p in current])

    _assert_identical(*_both_paths(version, now, monkeypatch))


@pytest.mark.postgres
def test_copy_and_stream_give_identical_reports_on_a_multiclass_classifier(
        people, now, monkeypatch):
    rng = numpy.random.default_rng(0)
    frame, version = pages_version(
        people, rng, name="copy-tiers", task="multiclass_classification",
        outputs=lambda rng: rng.choice(["bronze", "gold", "silver"], 300),
        output_kind="categorical")
    # Unseen labels, labels that JSON keeps as numbers or bools, an escaped one.
    labels = ["bronze", "gold", "silver", "platinum", 3, 3.0, True, "tab\tlabel"]
    current = [labels[i] for i in rng.integers(0, len(labels), 150)]
    prediction_logs_create(version=version, frame=frame.iloc[:150],
                           created_at=now - timedelta(hours=1), values=current)

    copied, streamed = _both_paths(version, now, monkeypatch)

    _assert_identical(copied, streamed)
    new = set(copied.prediction["new_categories"])
    assert {"platinum", "3", "3.0", "True", "tab\tlabel"} <= new


@pytest.mark.postgres
def test_copy_and_stream_give_identical_reports_on_an_anomaly_model(people, now, monkeypatch):
    rng = numpy.random.default_rng(0)
    frame, version = pages_version(people, rng, name="copy-anomaly", task="anomaly_detection",
                                   outputs=lambda rng: rng.normal(0.1, 0.05, 300))
    scores = rng.normal(0.0, 0.05, 150).tolist()
    scores[:5] = [None] * 5  # not scored
    prediction_logs_create(version=version, frame=frame.iloc[:150],
                           created_at=now - timedelta(hours=1), values=[False] * 150,
                           anomaly_scores=scores)

    copied, streamed = _both_paths(version, now, monkeypatch)

    _assert_identical(copied, streamed)
    assert copied.prediction["missing"] == 5


@pytest.mark.postgres
def test_the_check_on_postgresql_reads_the_window_through_copy(people, now, monkeypatch):
    version = register_profiled_version(**people)
    prediction_logs_create(version=version, frame=drift_frame(n=150, seed=1),
                           values=drift_outputs(drift_frame(n=150, seed=1)),
                           created_at=now - timedelta(hours=1))

    def no_stream(logs, columns):
        raise AssertionError("PostgreSQL windows are read through COPY, not streamed")

    monkeypatch.setattr(drift, "_stream", no_stream)
    report = drift_check(version_id=version.pk, now=now)

    assert (report.status, report.n_current) == ("ok", 150)
    assert set(report.features) == {"followers", "hashtags", "platform", "has_link"}


@pytest.mark.parametrize(("field", "printed"), [
    ("plain", "plain"), ("tab\\there", "tab\there"), ("line\\nbreak", "line\nbreak"),
    ("back\\\\slash", "back\\slash"), ("\\\\N", "\\N"), ("cr\\r\\v\\f\\b", "cr\r\v\f\b"),
])
def test_copy_text_fields_are_unescaped_to_the_printed_value(field, printed):
    assert pg_copy.copy_text_unescape(field) == printed


def test_copy_numbers_are_what_to_numeric_makes_of_the_text():
    texts = pandas.Series(["12", "abc", numpy.nan, "7\\t", "1e3", True, "inf"], dtype=object)
    bools = pandas.Series([True, False])
    floats = pandas.Series([1.5, numpy.nan])

    numbers = pg_copy.numbers(texts)

    expected = pandas.to_numeric(pandas.Series(["12", "abc", None, "7\t", "1e3", "true", "inf"],
                                               dtype=object), errors="coerce").to_numpy(float)
    numpy.testing.assert_array_equal(numbers, expected)
    assert numpy.isnan(pg_copy.numbers(bools)).all()
    numpy.testing.assert_array_equal(pg_copy.numbers(floats), [1.5, numpy.nan])


def _followers_as_integers(*columns):
    """A values_list (followers, *columns) whose COPY fails on the first row where followers
    is not an integer's text (PostgreSQL stops with invalid_text_representation part way
    through)."""
    return drift.PredictionLog.objects.order_by("created_at").values_list(
        Cast(KeyTextTransform("followers", "features"), IntegerField()), *columns)


@pytest.mark.postgres
def test_a_failure_part_way_through_the_copy_is_raised_and_the_connection_stays_usable(
        people, now):
    version = register_profiled_version(**people)
    frame = pandas.DataFrame({"followers": [*range(3000), "many"]})
    prediction_logs_create(version=version, frame=frame, created_at=now,
                           values=[1.0] * len(frame))

    with pytest.raises(DataError, match="invalid input syntax"), transaction.atomic():
        list(pg_copy.queryset_frames(queryset=_followers_as_integers(), names=["followers"],
                                     text_names=[], chunk_rows=500))

    assert drift.PredictionLog.objects.filter(model_version=version).count() == 3001


@pytest.mark.postgres
def test_a_copy_left_before_its_end_is_read_out_and_the_connection_stays_usable(people, now):
    version = register_profiled_version(**people)
    frame = pandas.DataFrame({"followers": range(3000)})
    prediction_logs_create(version=version, frame=frame, created_at=now,
                           values=[1.0] * len(frame))
    # 6 MB: more than the reading buffers take in before the first frame.
    padded = _followers_as_integers(Repeat(Value("x"), 2000))
    frames = pg_copy.queryset_frames(queryset=padded, names=["followers", "padding"],
                                     text_names=["padding"], chunk_rows=10)

    first = next(frames)
    frames.close()

    assert first["followers"].tolist() == list(range(10))
    assert drift.PredictionLog.objects.filter(model_version=version).count() == 3000
