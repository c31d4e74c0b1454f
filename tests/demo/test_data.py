"""The synthetic demo posts and leads (pure: no database)."""

import pandas
import pytest

from core.ml.recipes.engagement import EngagementComments, EngagementLikes
from core.ml.recipes.engagement_anomaly import EngagementAnomaly
from core.ml.recipes.lead_conversion import LeadConversion
from core.ml.schema import schema_from_frame
from demo import data as demo_data

POST_RECIPES = (EngagementLikes(), EngagementComments(), EngagementAnomaly())
ALL_RECIPES = ((*POST_RECIPES, LeadConversion()))


@pytest.fixture(scope="module")
def posts():
    return demo_data.demo_posts()


@pytest.fixture(scope="module")
def leads():
    return demo_data.demo_leads()


def _frame_for(recipe, posts, leads):
    return leads if recipe.name == "lead-conversion" else posts


@pytest.mark.parametrize("make", [demo_data.demo_posts, demo_data.demo_leads])
def test_same_seed_gives_the_same_frame(make):
    pandas.testing.assert_frame_equal(make(seed=7, n=600), make(seed=7, n=600))


@pytest.mark.parametrize("make", [demo_data.demo_posts, demo_data.demo_leads])
def test_another_seed_gives_another_frame(make):
    assert not make(seed=7, n=600).equals(make(seed=8, n=600))


def test_default_sizes_train_fast(posts, leads):
    assert (len(posts), len(leads)) == (4000, 5000)


@pytest.mark.parametrize("recipe", ALL_RECIPES, ids=lambda r: r.name)
def test_frame_has_the_columns_the_recipe_declares(recipe, posts, leads):
    frame = _frame_for(recipe, posts, leads)
    needed = [f.name for f in recipe.features] + [recipe.client_column]
    needed += [recipe.target] if recipe.target else []

    assert set(needed) <= set(frame.columns)
    assert not frame[needed].isna().any().any()


@pytest.mark.parametrize("recipe", ALL_RECIPES, ids=lambda r: r.name)
def test_column_dtypes_match_the_declared_dtypes(recipe, posts, leads):
    frame = _frame_for(recipe, posts, leads)
    names = [f.name for f in recipe.features]
    inferred = schema_from_frame(frame[[*names, "client_id"]], target="client_id",
                                 input_features=names)

    assert [f["dtype"] for f in inferred["features"]] == [f.dtype for f in recipe.features]


@pytest.mark.parametrize("recipe", ALL_RECIPES, ids=lambda r: r.name)
def test_values_lie_within_declared_categories_and_bounds(recipe, posts, leads):
    frame = _frame_for(recipe, posts, leads)
    for feature in recipe.features:
        values = frame[feature.name]
        if feature.categories:
            assert set(values) <= set(feature.categories), feature.name
        if feature.minimum is not None:
            assert values.min() >= feature.minimum, feature.name
        if feature.maximum is not None:
            assert values.max() <= feature.maximum, feature.name


def test_every_declared_category_occurs(posts, leads):
    for recipe in (EngagementLikes(), LeadConversion()):
        frame = _frame_for(recipe, posts, leads)
        for feature in recipe.features:
            if feature.categories:
                assert set(frame[feature.name]) == set(feature.categories), feature.name


def test_followers_are_heavy_tailed(posts):
    assert posts["followers"].max() / posts["followers"].median() > 50


def test_clients_include_a_big_one_and_one_below_the_minimum(posts):
    rows = posts["client_id"].value_counts()

    assert len(rows) >= 4
    assert rows[demo_data.BIG_CLIENT] >= 300
    assert rows[demo_data.SMALL_CLIENT] == demo_data.SMALL_CLIENT_POSTS < 50


def test_posts_cover_several_platforms_and_media_types(posts):
    assert posts["platform"].nunique() >= 4
    assert posts["media_type"].nunique() >= 3


def test_comments_are_fewer_and_noisier_than_likes(posts):
    ratio = (posts["comments"] + 1) / (posts["likes"] + 1)
    assert posts["comments"].sum() < posts["likes"].sum()
    # Relative to the account's usual engagement, comments scatter more than likes.
    usual = posts["avg_engagement_30d"] + 1
    assert (posts["comments"] / usual).pipe(lambda s: s.std() / s.mean()) > (
        posts["likes"] / usual).pipe(lambda s: s.std() / s.mean())
    assert ratio.median() < 0.2


def test_about_one_percent_of_posts_are_planted_anomalies(posts):
    assert 0.005 <= posts["planted_anomaly"].mean() <= 0.02


def test_leads_have_a_protected_region_and_both_outcomes(leads):
    assert set(leads["converted"]) == {0, 1}
    assert 0.3 <= leads["converted"].mean() <= 0.55
    assert leads["region"].nunique() == 3
    assert leads["client_id"].nunique() >= 1


def test_region_has_only_a_mild_effect_on_conversion(leads):
    rates = leads.groupby("region")["converted"].mean()
    assert rates.min() / rates.max() >= 0.85


def test_demo_requested_raises_conversion(leads):
    rates = leads.groupby("demo_requested")["converted"].mean()
    assert rates[True] > 1.5 * rates[False]


@pytest.mark.parametrize(("make", "n"), [(demo_data.demo_posts, 100), (demo_data.demo_leads, 50)])
def test_too_small_a_size_is_refused(make, n):
    with pytest.raises(ValueError, match="needs n >="):
        make(n=n)
