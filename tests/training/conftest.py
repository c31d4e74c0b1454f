import numpy
import pandas
import pytest

TINY = "tests.recipes.TinyLikes"


@pytest.fixture
def tiny_recipe(settings):
    settings.PULSELYTICS_RECIPES = [*settings.PULSELYTICS_RECIPES, TINY]
    from core.ml.recipes import recipe_get

    return recipe_get("tiny-likes")


def tiny_frame(n: int = 200, seed: int = 0, clients=("acme", "globex")) -> pandas.DataFrame:
    rng = numpy.random.default_rng(seed)
    followers = rng.uniform(100, 1000, n)
    has_link = rng.integers(0, 2, n).astype(bool)
    platform = rng.choice(["instagram", "tiktok"], n)
    likes = (3 * followers + 10 * has_link + numpy.where(platform == "tiktok", 50, 0)
             + rng.normal(0, 5, n))
    return pandas.DataFrame({
        "client_id": rng.choice(list(clients), n),
        "followers": followers, "has_link": has_link, "platform": platform,
        "region": rng.choice(["north", "south"], n), "likes": likes,
    })


@pytest.fixture
def tiny_csv(tmp_path):
    path = tmp_path / "tiny.csv"
    tiny_frame().to_csv(path, index=False)
    return path
