import math

import numpy
import pandas

from core.ml.features import model_frame
from core.ml.schema import feature_spec

SCHEMA = {"target": "y", "features": [
    feature_spec(name="x", dtype="float"),
    feature_spec(name="n", dtype="int"),
    feature_spec(name="flag", dtype="bool"),
    feature_spec(name="kind", dtype="category", categories=["a", "b"]),
    feature_spec(name="group", dtype="category", categories=["g"], protected=True, input=False),
]}


def test_model_frame_gives_canonical_dtypes():
    frame = pandas.DataFrame({"x": [1.5], "n": [2], "flag": [True], "kind": ["a"], "group": ["g"]})

    features, _ = model_frame(frame, SCHEMA)

    assert list(features.columns) == ["x", "n", "flag", "kind"]
    assert features.dtypes.to_dict() == {"x": float, "n": float, "flag": float, "kind": object}
    assert features.iloc[0].to_dict() == {"x": 1.5, "n": 2.0, "flag": 1.0, "kind": "a"}


def test_model_frame_turns_infinite_and_unparseable_values_into_counted_nan():
    frame = pandas.DataFrame({"x": [numpy.inf, -numpy.inf, numpy.nan, 1.0],
                              "n": ["3", "three", None, 4], "flag": ["yes", "no", "maybe", None],
                              "kind": ["a", "c", None, "b"], "group": ["g"] * 4})

    features, report = model_frame(frame, SCHEMA)

    assert features["x"].isna().tolist() == [True, True, True, False]
    assert report.infinite == {"x": 2}
    assert report.missing == {"x": 1, "n": 1, "flag": 1, "kind": 1}
    assert report.invalid == {"n": 1, "flag": 1}
    assert report.imputed() == {"flag": 2, "kind": 1, "n": 2, "x": 3}
    assert report.unknown_categories == {"kind": 1}
    assert features["kind"].tolist()[:2] == ["a", "c"] and features["kind"][2] is None


def test_model_frame_keeps_non_input_columns_when_asked():
    frame = pandas.DataFrame({"x": [1.0], "n": [1], "flag": [0], "kind": ["b"], "group": ["g"]})

    features, _ = model_frame(frame, SCHEMA, inputs_only=False)

    assert "group" in features.columns
    assert not math.isnan(features["flag"][0])
