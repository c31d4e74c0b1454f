"""Post engagement: how many likes (`engagement-likes`) and comments (`engagement-comments`)
a social post will get, from what is known when it is published.

Inputs: platform, media type, the account's followers, hour and weekday of publication,
caption length, hashtags, mentions, whether it carries a link, caption sentiment, the
account's recent posting rate and its 30-day average engagement per post.

Why these choices:
- Gradient boosting on trees learns the interactions that drive engagement (a weekend
  helps Instagram and hurts LinkedIn; engagement scales with account size) without
  feature engineering, and SHAP's TreeExplainer explains it exactly.
- The target is the raw count, not its logarithm: the explain endpoint needs SHAP
  contributions that add up to the value the API returns, which a transformed target
  would break. Squared error on raw counts weighs large accounts most, which is also what
  an R2 on counts measures.
- Likes and comments are counts (`target_is_count`): boosted trees can still answer below
  0 for a small account with extreme inputs, so the version's schema records a lower
  bound of 0 and serving answers max(prediction, 0); explanations report the
  adjustment (docs/training.md#count-targets).
- `subsample=0.8` (stochastic gradient boosting) regularises and makes the seed
  meaningful; `random_state` is the training seed, so the same data and seed give
  bit-identical predictions. `min_samples_leaf=10` keeps one extreme post (heavy-tailed
  counts) from becoming a leaf of its own that every similar post then inherits.
- Per-client models reuse the recipe on the client's rows; 200 trees of depth 3 train on
  a few thousand rows in about a second.
- Preprocessing is part of the fitted Pipeline: numeric features median-imputed (the
  platform turns inf into NaN before fitting), flags imputed with the most frequent value,
  categories one-hot encoded over the declared categories, unknown ones ignored (all
  zeros; a missing category is all zeros too). Output names keep the default
  `<transformer>__<feature>[_<category>]` form (`numeric__followers`,
  `category__platform_tiktok`), so every column traces back to its source feature.
  The pipeline expects the canonical frame of core.ml.features.model_frame
  (numbers and flags as float64, categories as str or None).
"""

from typing import Any, ClassVar

from sklearn.ensemble import GradientBoostingRegressor
from sklearn.pipeline import Pipeline

from core.ml.kinds import REGRESSION
from core.ml.recipes.base import Feature, Recipe
from core.ml.recipes.preprocessing import tabular_preprocessing

PLATFORMS = ("facebook", "instagram", "linkedin", "tiktok", "x")
MEDIA_TYPES = ("carousel", "image", "text", "video")

POST_FEATURES = (
    Feature("platform", "category", categories=PLATFORMS),
    Feature("media_type", "category", categories=MEDIA_TYPES),
    Feature("followers", "int", minimum=0),
    Feature("hour", "int", minimum=0, maximum=23),
    Feature("weekday", "int", minimum=0, maximum=6),  # Monday = 0
    Feature("caption_length", "int", minimum=0),
    Feature("hashtags", "int", minimum=0),
    Feature("mentions", "int", minimum=0),
    Feature("has_link", "bool"),
    Feature("sentiment", "float", minimum=-1, maximum=1),
    Feature("recent_posting_rate", "float", minimum=0),  # posts per day, last 7 days
    Feature("avg_engagement_30d", "float", minimum=0),  # likes + comments per post, 30 days
)


class EngagementRegression(Recipe):
    """Shared by the likes and comments recipes: same inputs, same model, another target."""

    task = REGRESSION
    features = POST_FEATURES
    min_samples = 50
    target_is_count = True
    n_estimators: ClassVar[int] = 200
    learning_rate: ClassVar[float] = 0.1
    max_depth: ClassVar[int] = 3
    subsample: ClassVar[float] = 0.8
    min_samples_leaf: ClassVar[int] = 10

    def build_estimator(self, *, seed: int, n_samples: int) -> Pipeline:
        return Pipeline([
            ("prep", tabular_preprocessing(self.features)),
            ("model", GradientBoostingRegressor(
                loss="squared_error", n_estimators=self.n_estimators,
                learning_rate=self.learning_rate, max_depth=self.max_depth,
                subsample=self.subsample, min_samples_leaf=self.min_samples_leaf, random_state=seed,
            )),
        ])

    def hyperparameters(self, estimator: Any) -> dict:
        model = estimator.named_steps["model"]
        params = model.get_params()
        return {
            "model": type(model).__name__,
            **{key: params[key] for key in ("loss", "n_estimators", "learning_rate",
                                            "max_depth", "subsample", "min_samples_leaf")},
            "random_state": params["random_state"],
            "target_transform": None,
            "preprocessing": "median imputation (numbers), most frequent (flags), "
                             "one-hot over declared categories, unknown ignored",
        }


class EngagementLikes(EngagementRegression):
    name = "engagement-likes"
    target = "likes"
    description = ("Likes a post will get (raw count), from its platform, media, timing, "
                   "caption and the account's size and recent engagement.")


class EngagementComments(EngagementRegression):
    name = "engagement-comments"
    target = "comments"
    description = ("Comments a post will get (raw count); noisier than likes, so expect a "
                   "lower R2.")
