"""SHAP explanations for the explain endpoint (docs/api.md#explain). Pure: no database, no Django.

`explainer_build` runs once per loaded model version (the serving cache keeps the result;
building costs far more than explaining a row), then `ModelExplainer.explain` turns up to
MAX_INSTANCES rows of the canonical input frame (core.ml.features.model_frame)
into one explanation each, whose contributions add up to the value the model computes.
Multiclass models are refused. Serving answers a count target never below 0:
`explanation_bounded` reports that bound beside the contributions
(docs/training.md#count-targets).

The path chosen at build time is `ModelExplainer.method`: "tree" or "tree_calibrated"
where SHAP's TreeExplainer explains the pipeline's tree model exactly (tree.py), else
"model_agnostic": Shapley values of the whole pipeline against background rows drawn
from the version's reference profile (agnostic.py).

base.py holds the explanation contract (the explainer interface, the explanation of one
row and its additivity check, the errors); tree.py the tree paths; agnostic.py the
model-agnostic path and `explainer_build`. Import the package, not its modules: the names
below are its public API.
"""

from core.ml.explain.agnostic import (
    BACKGROUND_ROWS,
    BATCH_ROWS,
    BOOL_KEYS,
    EXACT_MAX_FEATURES,
    PERMUTATIONS,
    PROBABILITY_EPS,
    SAMPLING_SEED,
    CoalitionPlan,
    ModelAgnosticExplainer,
    background_from_profile,
    coalition_plan,
    explainer_build,
)
from core.ml.explain.base import (
    ADDITIVITY_TOLERANCE,
    LOG_ODDS,
    MAX_INSTANCES,
    MODEL_AGNOSTIC,
    NUMERIC_DTYPES,
    RAW,
    TOP_CONTRIBUTIONS,
    TREE,
    TREE_CALIBRATED,
    ExplanationInconsistentError,
    ExplanationUnsupportedError,
    InputFeature,
    ModelExplainer,
    explanation_bounded,
    explanation_row,
    input_features,
)
from core.ml.explain.tree import (
    PROBABILITY_TOLERANCE,
    TREE_CLASSIFIERS,
    TREE_REGRESSORS,
    TreeModelExplainer,
    encoded_column_features,
)

__all__ = [
    "ADDITIVITY_TOLERANCE",
    "BACKGROUND_ROWS",
    "BATCH_ROWS",
    "BOOL_KEYS",
    "EXACT_MAX_FEATURES",
    "LOG_ODDS",
    "MAX_INSTANCES",
    "MODEL_AGNOSTIC",
    "NUMERIC_DTYPES",
    "PERMUTATIONS",
    "PROBABILITY_EPS",
    "PROBABILITY_TOLERANCE",
    "RAW",
    "SAMPLING_SEED",
    "TOP_CONTRIBUTIONS",
    "TREE",
    "TREE_CALIBRATED",
    "TREE_CLASSIFIERS",
    "TREE_REGRESSORS",
    # The model-agnostic path (agnostic.py).
    "CoalitionPlan",
    "ExplanationInconsistentError",
    "ExplanationUnsupportedError",
    # The explanation contract (base.py).
    "InputFeature",
    "ModelAgnosticExplainer",
    "ModelExplainer",
    "TreeModelExplainer",
    "background_from_profile",
    "coalition_plan",
    # The tree paths (tree.py).
    "encoded_column_features",
    # Building and using an explainer.
    "explainer_build",
    "explanation_bounded",
    "explanation_row",
    "input_features",
]
