"""core.ml.explain on the real recipes (pure: no database).

Each recipe is fitted once per module on 1,500 demo rows (the anomaly rule on 20), as the
trainer fits it: the canonical frame of model_frame, `build_estimator(seed=0, n_samples)`.
Every explanation must add up (docs/api.md#explain: |base + sum - value| <= 1e-6 max(1, |value|)),
carry every input feature, and report the model's own output as its value.
"""

import numpy
import pytest
import shap
from scipy.special import expit, logit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline

from core.ml.explain import (
    BACKGROUND_ROWS,
    MAX_INSTANCES,
    ExplanationInconsistentError,
    ExplanationUnsupportedError,
    explainer_build,
    explanation_row,
)
from core.ml.features import model_frame
from core.ml.outputs import anomaly_scores, model_outputs
from core.ml.profile import reference_profile_build
from core.ml.recipes.engagement import EngagementComments, EngagementLikes
from core.ml.recipes.engagement_anomaly import EngagementAnomaly, RobustZScoreDetector
from core.ml.recipes.lead_conversion import LeadConversion
from core.ml.recipes.preprocessing import tabular_preprocessing
from demo.data import demo_leads, demo_posts

ROWS = 1500
EXPLAINED = 100


class Fitted:
    """A fitted model with its schema, training frame and reference profile."""

    def __init__(self, *, recipe, frame, estimator=None, task=None):
        self.recipe = recipe
        self.task = task or recipe.task
        self.schema = recipe.feature_schema()
        self.inputs = model_frame(frame, self.schema)[0]
        self.target = frame[recipe.target] if recipe.target else None
        self.estimator = estimator or recipe.build_estimator(seed=0, n_samples=len(frame))
        self.estimator.fit(self.inputs, self.target)
        outputs, kind = model_outputs(task=self.task, estimator=self.estimator,
                                      features=self.inputs)
        self.profile = reference_profile_build(frame=self.inputs, schema=self.schema,
                                               outputs=outputs, seed=0, output_kind=kind)
        self.explainer = explainer_build(estimator=self.estimator, task=self.task,
                                         schema=self.schema, reference_profile=self.profile)
        self.rows = self.inputs.iloc[:EXPLAINED]
        self.explanations = self.explainer.explain(self.rows)


@pytest.fixture(scope="module")
def posts():
    return demo_posts(n=ROWS)


@pytest.fixture(scope="module")
def leads():
    return demo_leads(n=ROWS)


@pytest.fixture(scope="module")
def likes(posts):
    return Fitted(recipe=EngagementLikes(), frame=posts)


@pytest.fixture(scope="module")
def comments(posts):
    return Fitted(recipe=EngagementComments(), frame=posts)


@pytest.fixture(scope="module")
def lead(leads):
    return Fitted(recipe=LeadConversion(), frame=leads)


@pytest.fixture(scope="module")
def anomaly(posts):
    return Fitted(recipe=EngagementAnomaly(), frame=posts)


@pytest.fixture(scope="module")
def anomaly_rule(posts):
    return Fitted(recipe=EngagementAnomaly(), frame=posts.iloc[:20].reset_index(drop=True))


def assert_adds_up(explanation):
    total = explanation["base_value"] + sum(explanation["contributions"].values())
    value = explanation["value"]
    assert abs(total - value) <= 1e-6 * max(1.0, abs(value))


def assert_close(actual, expected, tolerance=1e-9):
    actual, expected = numpy.asarray(actual, dtype=float), numpy.asarray(expected, dtype=float)
    assert numpy.all(numpy.abs(actual - expected)
                     <= tolerance * numpy.maximum(1.0, numpy.abs(expected)))


def feature_sums(values, columns, features):
    """Encoded-column SHAP values summed per input feature, by the ColumnTransformer's
    `<transformer>__<feature>[_<category>]` names (an oracle independent of explain.py's
    mapping, which reads the fitted transformer)."""
    sums = {}
    for feature in features:
        chosen = [i for i, column in enumerate(columns)
                  if column.split("__", 1)[1] == feature
                  or column.split("__", 1)[1].startswith(f"{feature}_")]
        sums[feature] = values[:, chosen].sum(axis=1)
    return sums


@pytest.mark.parametrize("name", ["likes", "comments"])
def test_explain_regression_adds_up_to_predict(name, request):
    fitted = request.getfixturevalue(name)

    assert fitted.explainer.method == "tree"
    assert len(fitted.explanations) == EXPLAINED
    for explanation in fitted.explanations:
        assert explanation["output_space"] == "raw"
        assert list(explanation["contributions"]) == fitted.recipe.input_features()
        assert "probability" not in explanation
        assert_adds_up(explanation)
    assert_close([e["value"] for e in fitted.explanations], fitted.estimator.predict(fitted.rows))


def test_explain_calibrated_classifier_uses_tree_shap_in_log_odds(lead):
    probabilities = lead.estimator.predict_proba(lead.rows)[:, 1]

    assert lead.explainer.method == "tree_calibrated"
    for explanation in lead.explanations:
        assert explanation["output_space"] == "log_odds"
        assert list(explanation["contributions"]) == lead.recipe.input_features()
        assert_adds_up(explanation)
    assert_close([e["value"] for e in lead.explanations], logit(probabilities))
    assert [e["probability"] for e in lead.explanations] == probabilities.tolist()


def test_explain_calibrated_contributions_are_base_shap_times_minus_a(lead):
    prep, calibrated = lead.estimator.named_steps["prep"], lead.estimator.named_steps["model"]
    (classifier,) = calibrated.calibrated_classifiers_
    base, (sigmoid,) = classifier.estimator, classifier.calibrators
    encoded = prep.transform(lead.rows)
    # sklearn's _SigmoidCalibration: p = expit(-(a * f + b)), f the base model's log-odds.
    assert_close(expit(-(sigmoid.a_ * base.decision_function(encoded) + sigmoid.b_)),
                 calibrated.predict_proba(encoded)[:, 1], tolerance=1e-12)
    tree = shap.TreeExplainer(base, model_output="raw")
    raw = feature_sums(tree.shap_values(encoded), prep.get_feature_names_out(),
                       lead.recipe.input_features())

    for feature, values in raw.items():
        assert_close([e["contributions"][feature] for e in lead.explanations],
                     -sigmoid.a_ * values, tolerance=1e-12)
    expected_base = -(sigmoid.a_ * float(numpy.ravel(tree.expected_value)[0]) + sigmoid.b_)
    assert_close([e["base_value"] for e in lead.explanations], [expected_base] * EXPLAINED)


def test_explain_sums_one_hot_columns_into_their_feature(likes):
    prep, model = likes.estimator.named_steps["prep"], likes.estimator.named_steps["model"]
    columns = prep.get_feature_names_out()
    values = shap.TreeExplainer(model, model_output="raw").shap_values(prep.transform(likes.rows))
    expected = feature_sums(values, columns, likes.recipe.input_features())

    one_hot = [c for c in columns if c.startswith("category__platform_")]
    assert len(one_hot) == 5
    assert [likes.explainer.column_features[list(columns).index(c)] for c in one_hot] == (
        ["platform"] * 5)
    for feature in ("platform", "media_type", "followers"):
        assert_close([e["contributions"][feature] for e in likes.explanations],
                     expected[feature], tolerance=1e-12)


def test_explain_anomaly_forest_explains_the_score_model_agnostically(anomaly):
    scores = anomaly_scores(estimator=anomaly.estimator, features=anomaly.rows)

    assert anomaly.explainer.method == "model_agnostic"
    assert len(anomaly.explainer.background) == BACKGROUND_ROWS
    for explanation in anomaly.explanations:
        assert explanation["output_space"] == "raw"
        assert list(explanation["contributions"]) == anomaly.recipe.input_features()
        assert_adds_up(explanation)
    assert_close([e["value"] for e in anomaly.explanations], scores)


def test_explain_rule_based_detector_gives_unused_feature_zero(anomaly_rule):
    scores = anomaly_scores(estimator=anomaly_rule.estimator, features=anomaly_rule.rows)

    assert isinstance(anomaly_rule.estimator.named_steps["model"], RobustZScoreDetector)
    assert anomaly_rule.explainer.method == "model_agnostic"
    for explanation in anomaly_rule.explanations:
        assert_adds_up(explanation)
        # The rule looks at the engagement rate only: likes, comments and followers.
        assert explanation["contributions"]["avg_engagement_30d"] == 0.0
    assert_close([e["value"] for e in anomaly_rule.explanations], scores)


def linear_expectation(fitted, coefficients):
    """Exact interventional Shapley values of a model linear in the encoded columns:
    coefficient * (encoded value - its mean over the background), summed per feature."""
    prep = fitted.estimator.named_steps["prep"]
    shift = prep.transform(fitted.rows) - prep.transform(fitted.explainer.background).mean(axis=0)
    return feature_sums(shift * coefficients, prep.get_feature_names_out(),
                        fitted.recipe.input_features())


def test_explain_linear_regression_falls_back_to_exact_shapley_values(posts):
    model = Pipeline([("prep", tabular_preprocessing(EngagementLikes.features)),
                      ("model", LinearRegression())])
    fitted = Fitted(recipe=EngagementLikes(), frame=posts, estimator=model)

    assert fitted.explainer.method == "model_agnostic"
    for explanation in fitted.explanations:
        assert_adds_up(explanation)
    assert_close([e["value"] for e in fitted.explanations], model.predict(fitted.rows))
    # 12 features: sampled permutations, which are exact for an additive model.
    expected = linear_expectation(fitted, model.named_steps["model"].coef_)
    for feature, values in expected.items():
        assert_close([e["contributions"][feature] for e in fitted.explanations], values,
                     tolerance=1e-7)


def test_explain_logistic_regression_falls_back_in_log_odds(leads):
    model = Pipeline([("prep", tabular_preprocessing(LeadConversion.features)),
                      ("model", LogisticRegression(max_iter=2000))])
    fitted = Fitted(recipe=LeadConversion(), frame=leads, estimator=model)
    probabilities = model.predict_proba(fitted.rows)[:, 1]

    assert fitted.explainer.method == "model_agnostic"
    for explanation in fitted.explanations:
        assert explanation["output_space"] == "log_odds"
        assert_adds_up(explanation)
    assert_close([e["value"] for e in fitted.explanations], logit(probabilities))
    assert [e["probability"] for e in fitted.explanations] == probabilities.tolist()
    # 8 features: every coalition (exact Shapley values).
    expected = linear_expectation(fitted, model.named_steps["model"].coef_[0])
    for feature, values in expected.items():
        assert_close([e["contributions"][feature] for e in fitted.explanations], values,
                     tolerance=1e-7)


@pytest.mark.parametrize("calibration", [
    {"method": "isotonic", "ensemble": False},
    {"method": "sigmoid", "ensemble": True},
])
def test_explain_calibration_without_affine_log_odds_falls_back(calibration, leads):
    base = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0)
    model = Pipeline([("prep", tabular_preprocessing(LeadConversion.features)),
                      ("model", CalibratedClassifierCV(base, cv=3, **calibration))])
    fitted = Fitted(recipe=LeadConversion(), frame=leads.iloc[:400], estimator=model)

    assert fitted.explainer.method == "model_agnostic"
    for explanation in fitted.explanations:
        assert_adds_up(explanation)


def test_explain_rows_with_missing_values(likes):
    rows = likes.inputs.iloc[:3].copy()
    rows.loc[rows.index[0], "followers"] = numpy.nan
    rows.loc[rows.index[1], "platform"] = None
    rows.loc[rows.index[2], "platform"] = "myspace"  # unknown: all one-hot columns zero

    explanations = likes.explainer.explain(rows)

    for explanation in explanations:
        assert_adds_up(explanation)
    assert_close([e["value"] for e in explanations], likes.estimator.predict(rows))


def test_explain_top_contributions_are_the_largest_by_sign(lead):
    for explanation in lead.explanations:
        contributions = explanation["contributions"]
        positive = sorted((c for c in contributions.values() if c > 0), reverse=True)[:3]
        negative = sorted(c for c in contributions.values() if c < 0)[:3]
        assert [t["contribution"] for t in explanation["top_positive"]] == positive
        assert [t["contribution"] for t in explanation["top_negative"]] == negative
        for top in explanation["top_positive"] + explanation["top_negative"]:
            assert contributions[top["feature"]] == top["contribution"]


def test_explanation_row_orders_top_contributions():
    features = list("abcdefgh")
    contributions = [3.0, -1.0, 0.0, 5.0, 2.0, -4.0, -0.5, -2.0]

    row = explanation_row(output_space="raw", base_value=1.0, value=1.0 + sum(contributions),
                          contributions=contributions, features=features)

    assert row["top_positive"] == [{"feature": "d", "contribution": 5.0},
                                   {"feature": "a", "contribution": 3.0},
                                   {"feature": "e", "contribution": 2.0}]
    assert [t["feature"] for t in row["top_negative"]] == ["f", "h", "b"]


def test_explanation_row_refuses_numbers_that_do_not_add_up():
    with pytest.raises(ExplanationInconsistentError):
        explanation_row(output_space="raw", base_value=1.0, value=10.0,
                        contributions=[1.0, 2.0], features=["a", "b"])


def test_explainer_build_refuses_multiclass(lead):
    with pytest.raises(ExplanationUnsupportedError) as error:
        explainer_build(estimator=lead.estimator, task="multiclass_classification",
                        schema=lead.schema)
    assert isinstance(error.value, ValueError)
    assert error.value.code == "explanation_unsupported"


def test_explainer_build_refuses_model_agnostic_without_background(anomaly):
    with pytest.raises(ExplanationUnsupportedError):
        explainer_build(estimator=anomaly.estimator, task=anomaly.task, schema=anomaly.schema)


def test_explain_refuses_more_than_the_maximum_instances(likes):
    with pytest.raises(ExplanationUnsupportedError):
        likes.explainer.explain(likes.inputs.iloc[:MAX_INSTANCES + 1])


def test_background_from_profile_keeps_canonical_rows(likes):
    fallback = explainer_build(
        estimator=Pipeline([("prep", tabular_preprocessing(EngagementLikes.features)),
                            ("model", LinearRegression())]).fit(likes.inputs, likes.target),
        task="regression", schema=likes.schema, reference_profile=likes.profile)
    rows = fallback.background

    assert len(rows) == BACKGROUND_ROWS
    assert list(rows.columns) == likes.recipe.input_features()
    assert set(rows["has_link"]) <= {0.0, 1.0}
    assert rows["platform"].dtype == object
    assert set(rows["platform"]) <= set(likes.inputs["platform"])
    # Numeric features come from the same training rows (the profile's samples align).
    numeric = ["followers", "hour", "caption_length", "avg_engagement_30d"]
    training = {tuple(row) for row in likes.inputs[numeric].itertuples(index=False)}
    assert all(tuple(row) in training for row in rows[numeric].itertuples(index=False))
