"""The version page's chart geometry (mlregistry/evidence_charts.py): pure, no database."""

import math
from itertools import pairwise

import numpy
import pandas
import pytest

from core.ml.profile import reference_profile_build
from core.ml.schema import feature_spec
from mlregistry.evidence_charts import (
    CHART_LABEL_WIDTH,
    CHART_VALUE_WIDTH,
    CHART_WIDTH,
    DIST_MAX_CATEGORIES,
    distribution_charts,
    importance_chart,
    nice_ticks,
    significant,
)

AREA = CHART_WIDTH - CHART_LABEL_WIDTH - CHART_VALUE_WIDTH
SCHEMA = {"target": "likes", "features": [
    feature_spec(name="followers", dtype="float"),
    feature_spec(name="platform", dtype="category", categories=["instagram", "tiktok", "x"]),
]}


def profile_of(frame: pandas.DataFrame, schema: dict = SCHEMA) -> dict:
    return reference_profile_build(frame=frame, schema=schema, outputs=numpy.zeros(len(frame)),
                                   seed=0)


def posts(n: int = 1000, *, followers_shift: float = 0.0, seed: int = 0) -> pandas.DataFrame:
    rng = numpy.random.default_rng(seed)
    return pandas.DataFrame({
        "followers": rng.normal(1000.0, 200.0, n) + followers_shift,
        "platform": rng.choice(["instagram", "tiktok", "x"], n, p=[0.5, 0.3, 0.2]),
    })


def importance(values: dict, production: dict | None = None) -> dict:
    production = production or {}
    return {"features": [{"feature": name, "candidate": value, "production": production.get(name)}
                         for name, value in values.items()]}


def feature(charts: dict, name: str) -> dict:
    return next(f for f in charts["features"] if f["name"] == name)


# --- ticks and rounding -------------------------------------------------------------------


@pytest.mark.parametrize("largest", [0.0007, 0.0123, 0.3, 0.6038, 1.0, 4.0, 6.1, 9.99, 17.0,
                                     288.77, 5062.85, 99_999.0, 1.3e7])
def test_ticks_are_nice_numbers_from_zero_covering_the_largest(largest):
    ticks, _ = nice_ticks(largest)

    step = ticks[1]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 9) in (1, 2, 5)
    assert 4 <= len(ticks) <= 6
    assert ticks[0] == 0 and ticks[-2] < largest <= ticks[-1]
    assert all(math.isclose(b - a, step) for a, b in pairwise(ticks))


@pytest.mark.parametrize(("value", "text"), [
    (5062.851640409319, "5,060"), (288.7757861980, "289"), (0.6038349428545473, "0.604"),
    (9.996, "10.0"), (0.0, "0"), (0.000123456, "1.23e-04"), (None, "–")])
def test_values_are_rounded_to_three_significant_digits(value, text):
    assert significant(value) == text


# --- importance -----------------------------------------------------------------------------


def test_importance_chart_has_an_axis_whose_last_tick_bounds_the_bars():
    chart = importance_chart(importance({"a": 3.0, "b": 1.5}, {"a": 4.2}))

    ticks = [tick["label"] for tick in chart["axis"]["ticks"]]
    assert ticks == ["0", "1", "2", "3", "4", "5"]
    # 4.2 of 5 on a 380 px axis.
    assert chart["rows"][0]["production"]["width"] == f"{AREA * 4.2 / 5:.1f}"
    assert chart["axis"]["ticks"][-1]["x"] == f"{CHART_LABEL_WIDTH + AREA:.1f}"


def test_dominated_importance_chart_prints_every_feature_rounded_value():
    values = {"avg_engagement_30d": 5062.85, "sentiment": 288.776, "hour": 163.754,
              "platform": 19.3337}

    chart = importance_chart(importance(values))

    assert chart["dominant"] == {"feature": "avg_engagement_30d", "ratio": "17.5"}
    assert [row["candidate"]["label"] for row in chart["rows"]] == ["5,060", "289", "164",
                                                                    "19.3"]


def test_balanced_importance_chart_names_no_dominant_feature():
    assert importance_chart(importance({"a": 3.0, "b": 1.0}))["dominant"] is None


def test_tiny_importance_is_drawn_as_a_visible_bar():
    chart = importance_chart(importance({"large": 1000.0, "tiny": 0.01, "none": 0.0}))

    widths = {row["feature"]: float(row["candidate"]["width"]) for row in chart["rows"]}
    assert widths["tiny"] >= 1.0 and widths["none"] == 0.0


# --- distributions --------------------------------------------------------------------------


def test_production_distribution_is_counted_on_this_versions_bins():
    candidate = profile_of(posts())
    production = profile_of(posts(followers_shift=10_000.0, seed=1))  # above every bin edge

    charts = distribution_charts(schema=SCHEMA, profile=candidate, production_schema=SCHEMA,
                                 production_profile=production, production_version="1.0.0")

    rows = feature(charts, "followers")["chart"]["rows"]
    assert len(rows) == len(candidate["features"]["followers"]["edges"]) + 1
    assert [row["candidate"]["label"] for row in rows] == ["10.0 %"] * 10
    assert [row["production"]["label"] for row in rows] == ["0.0 %"] * 9 + ["100.0 %"]
    assert rows[-1]["label"].startswith("> ")


def test_categorical_distribution_shows_both_versions_per_category():
    candidate = posts().assign(platform=["instagram"] * 500 + ["tiktok"] * 300 + ["x"] * 200)
    production = posts(seed=1).assign(platform="x")

    charts = distribution_charts(
        schema=SCHEMA, profile=profile_of(candidate), production_schema=SCHEMA,
        production_profile=profile_of(production), production_version="1.0.0")

    shares = {row["label"]: (row["candidate"]["label"], row["production"]["label"])
              for row in feature(charts, "platform")["chart"]["rows"]}
    assert shares == {"instagram": ("50.0 %", "0.0 %"), "tiktok": ("30.0 %", "0.0 %"),
                      "x": ("20.0 %", "100.0 %")}


def test_feature_absent_from_production_is_marked_and_drawn_alone():
    schema = {"target": "likes", "features": [*SCHEMA["features"],
                                              feature_spec(name="hashtags", dtype="int")]}
    frame = posts().assign(hashtags=numpy.arange(1000) % 7)

    charts = distribution_charts(schema=schema, profile=profile_of(frame, schema),
                                 production_schema=SCHEMA, production_profile=profile_of(posts()),
                                 production_version="1.0.0")

    hashtags = feature(charts, "hashtags")
    assert hashtags["mark"] == "not in production"
    assert all(row["production"] is None for row in hashtags["chart"]["rows"])
    assert feature(charts, "followers")["mark"] == ""


def test_feature_only_production_takes_is_marked_and_drawn_from_production():
    only_followers = {"target": "likes", "features": SCHEMA["features"][:1]}

    charts = distribution_charts(
        schema=only_followers, profile=profile_of(posts(), only_followers),
        production_schema=SCHEMA, production_profile=profile_of(posts()),
        production_version="1.0.0")

    platform = feature(charts, "platform")
    assert platform["mark"] == "not in this version"
    assert all(row["candidate"] is None and row["production"] for row in
               platform["chart"]["rows"])


def test_without_production_each_feature_shows_this_version_alone():
    charts = distribution_charts(schema=SCHEMA, profile=profile_of(posts()))

    assert charts["production_version"] is None
    for name in ("followers", "platform"):
        assert feature(charts, name)["mark"] == ""
        assert all(row["production"] is None for row in feature(charts, name)["chart"]["rows"])


def test_feature_profiled_as_another_kind_in_production_is_marked():
    as_category = {"target": "likes", "features": [
        feature_spec(name="followers", dtype="category"), SCHEMA["features"][1]]}
    production = profile_of(posts().assign(followers="many"), as_category)

    charts = distribution_charts(schema=SCHEMA, profile=profile_of(posts()),
                                 production_schema=as_category, production_profile=production,
                                 production_version="1.0.0")

    assert feature(charts, "followers")["mark"] == "production profiled it as categorical"


def test_many_categories_keep_the_largest_and_sum_the_rest():
    schema = {"target": "likes", "features": [feature_spec(name="city", dtype="category")]}
    cities = [f"city-{i:02d}" for i in range(30)]
    frame = pandas.DataFrame({"city": ["city-00"] * 500 + cities * 10})

    charts = distribution_charts(schema=schema, profile=profile_of(frame, schema))

    rows = feature(charts, "city")["chart"]["rows"]
    assert len(rows) == DIST_MAX_CATEGORIES
    assert rows[0]["label"] == "city-00"
    assert rows[-1]["label"] == f"{30 - DIST_MAX_CATEGORIES + 1} other values"


def test_personal_feature_is_listed_but_not_drawn():
    schema = {"target": "likes", "features": [
        *SCHEMA["features"], feature_spec(name="email", dtype="category", pii=True)]}

    charts = distribution_charts(schema=schema, profile=profile_of(posts().assign(email="a@b"),
                                                                    schema))

    email = feature(charts, "email")
    assert email["personal"] and email["chart"] is None


def test_integer_feature_bins_name_the_integers_they_hold():
    schema = {"target": "likes", "features": [feature_spec(name="mentions", dtype="int")]}
    frame = pandas.DataFrame({"mentions": numpy.arange(1000) % 5})  # deciles 0, 0.8, 1, ...

    charts = distribution_charts(schema=schema, profile=profile_of(frame, schema))

    rows = feature(charts, "mentions")["chart"]["rows"]
    assert [row["label"] for row in rows] == ["≤ 0", "1", "2", "3", "4", "≥ 5"]
    assert [row["candidate"]["label"] for row in rows] == ["20.0 %"] * 5 + ["0.0 %"]
