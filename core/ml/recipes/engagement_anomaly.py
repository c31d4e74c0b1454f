"""Engagement anomalies (`engagement-anomaly`): posts whose engagement is out of line with
the account, such as a viral spike, a post that died (shadow-ban, broken link) or bought
likes.

Inputs are plain columns of one post, so the model is served like any other: the
account's followers and 30-day average engagement per post, and the post's likes and
comments. The pipeline derives three engagement rates from them (`engagement_rates`):

    log_engagement_rate  log((likes + comments + 1) / (followers + 1))
    log_engagement_lift  log((likes + comments + 1) / (avg_engagement_30d + 1))
    log_comment_ratio    log((comments + 1) / (likes + 1))

Logarithms because engagement is multiplicative: a post with ten times the usual
engagement is as unusual as one with a tenth of it. The +1 keeps zero counts finite.
The lift against the account's own average is the strongest signal (it absorbs the
platform and the audience); the comment ratio catches likes without conversation.

Detector:
- From `min_samples` (30) training rows: IsolationForest (200 trees, seeded) with
  `contamination=0.02`: the 2 % most isolated training posts set the threshold, so the
  alert volume is predictable whatever the client's data looks like ("auto" would put the
  threshold at a fixed score whose flag rate depends on the data). Posts scoring below it
  are flagged (`predict` gives -1).
- Below that, too few rows for a forest to learn what normal looks like: a robust
  z-score rule on the engagement rate (`RobustZScoreDetector`), recorded as
  `{"detector": "robust_zscore", ...}` in the version's hyperparameters. It needs at least
  `RobustZScoreDetector.min_rows` rows.

Missing numbers are median-imputed before the rates are taken (the platform turns inf
into NaN before fitting).
"""

from typing import Any, ClassVar

import numpy
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_array, check_is_fitted

from core.errors import InsufficientDataError, ValidationError
from core.ml.kinds import ANOMALY
from core.ml.recipes.base import Feature, Recipe

ANOMALY_FEATURES = (
    Feature("followers", "int", minimum=0),
    Feature("avg_engagement_30d", "float", minimum=0),
    Feature("likes", "int", minimum=0),
    Feature("comments", "int", minimum=0),
)
RATE_NAMES = ("log_engagement_rate", "log_engagement_lift", "log_comment_ratio")


def engagement_rates(counts: numpy.ndarray) -> numpy.ndarray:
    """Columns followers, avg_engagement_30d, likes, comments -> the three log rates."""
    counts = numpy.asarray(counts, dtype=float)
    followers, usual, likes, comments = (counts[:, i] for i in range(4))
    # Counts are non-negative; clip so that a stray negative value cannot produce NaN.
    followers, usual, likes, comments = (numpy.clip(c, 0, None)
                                         for c in (followers, usual, likes, comments))
    engagement = likes + comments + 1.0
    return numpy.column_stack([
        numpy.log(engagement / (followers + 1.0)),
        numpy.log(engagement / (usual + 1.0)),
        numpy.log((comments + 1.0) / (likes + 1.0)),
    ])


def engagement_rate_names(transformer: Any, input_features: Any) -> numpy.ndarray:
    return numpy.array(RATE_NAMES, dtype=object)


class RobustZScoreDetector(OutlierMixin, BaseEstimator):
    """Rule-based outlier detector for small data: robust z-score of one column.

    Rule (Iglewicz & Hoaglin's modified z-score): with `median` and `mad` (median absolute
    deviation from the median) of column `column` over the training rows,

        z = 0.6745 * (x - median) / mad

    and a row is an outlier when |z| > `threshold` (3.5 by default; 0.6745 makes z
    comparable to a standard normal's). The median and MAD are barely moved by the
    outliers themselves, unlike a mean and standard deviation on a handful of rows. When
    more than half the values are equal the MAD is 0; the mean absolute deviation times
    1.2533 (its normal-consistency factor) is used instead, and if that is 0 too every
    value equal to the median is normal and any other is an outlier.

    In this recipe the column is the log engagement rate. sklearn conventions:
    `predict` gives 1 (normal) or -1 (outlier), `score_samples` is -|z| (lower is more
    abnormal) and `decision_function` is threshold - |z| (negative for outliers).
    """

    min_rows: ClassVar[int] = 5

    def __init__(self, threshold: float = 3.5, column: int = 0):
        self.threshold = threshold
        self.column = column

    def fit(self, X, y=None):
        X = check_array(X, dtype=float)
        values = X[:, self.column]
        if len(values) < self.min_rows:
            raise ValidationError(
                f"the robust z-score detector needs at least {self.min_rows} rows; "
                f"got {len(values)}",
                details={"rows": len(values), "minimum": self.min_rows},
            )
        self.n_features_in_ = X.shape[1]
        self.median_ = float(numpy.median(values))
        mad = float(numpy.median(numpy.abs(values - self.median_)))
        self.scale_ = mad / 0.6745 if mad > 0 else (
            1.2533 * float(numpy.mean(numpy.abs(values - self.median_))))
        self.offset_ = -float(self.threshold)
        return self

    def score_samples(self, X) -> numpy.ndarray:
        check_is_fitted(self, "median_")
        values = check_array(X, dtype=float)[:, self.column]
        deviation = numpy.abs(values - self.median_)
        if self.scale_ > 0:
            return -(deviation / self.scale_)
        return numpy.where(deviation > 0, -numpy.inf, 0.0)

    def decision_function(self, X) -> numpy.ndarray:
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> numpy.ndarray:
        return numpy.where(self.decision_function(X) < 0, -1, 1)


class EngagementAnomaly(Recipe):
    name = "engagement-anomaly"
    task = ANOMALY
    target = None
    features = ANOMALY_FEATURES
    min_samples = 30
    fallback_below_minimum = True
    description = ("Flags posts whose engagement is out of line with the account (viral "
                   "spikes, dead posts, bought likes); IsolationForest on engagement rates, "
                   "a robust z-score rule below 30 rows.")
    contamination: ClassVar[float] = 0.02
    n_estimators: ClassVar[int] = 200
    zscore_threshold: ClassVar[float] = 3.5

    def build_estimator(self, *, seed: int, n_samples: int) -> Pipeline:
        if n_samples < self.min_samples:
            if n_samples < RobustZScoreDetector.min_rows:
                raise InsufficientDataError(
                    f"{self.name} needs at least {RobustZScoreDetector.min_rows} rows even "
                    f"for its rule-based detector; got {n_samples}",
                    details={"rows": n_samples, "minimum": RobustZScoreDetector.min_rows},
                )
            detector = RobustZScoreDetector(threshold=self.zscore_threshold,
                                            column=RATE_NAMES.index("log_engagement_rate"))
        else:
            detector = IsolationForest(n_estimators=self.n_estimators,
                                       contamination=self.contamination, random_state=seed)
        counts = ColumnTransformer([
            ("numeric", SimpleImputer(strategy="median"), [f.name for f in self.features]),
        ])
        rates = FunctionTransformer(engagement_rates, feature_names_out=engagement_rate_names)
        return Pipeline([("prep", counts), ("rates", rates), ("model", detector)])

    def hyperparameters(self, estimator: Any) -> dict:
        detector = estimator.named_steps["model"]
        if isinstance(detector, RobustZScoreDetector):
            return {"detector": "robust_zscore", "threshold": detector.threshold,
                    "column": RATE_NAMES[detector.column], "rates": list(RATE_NAMES)}
        params = detector.get_params()
        return {"detector": "isolation_forest", "n_estimators": params["n_estimators"],
                "contamination": params["contamination"], "max_samples": params["max_samples"],
                "random_state": params["random_state"], "rates": list(RATE_NAMES)}
