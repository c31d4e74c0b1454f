"""Global feature importance of a fitted model: mean |SHAP contribution| per input feature.

Pure: no database access. Computed once, when a version is trained or registered, on at
most MAX_ROWS held-out rows (fewer for wide models explained model-agnostically), with
the explainer the explain endpoint uses (core.ml.explain: tree, tree_calibrated, or
model-agnostic against the version's reference profile), so the figures are the
contributions a client sees, averaged in absolute value. One-hot columns are already
summed back to their input feature there.

Result, stored as the version's `global_importance`:

    {"method": "tree" | "tree_calibrated" | "model_agnostic",
     "output_space": "raw" | "log_odds", "rows": 200,
     "features": {input feature: mean |contribution| (float >= 0)}}

A model that cannot be explained (a multiclass model, a pipeline the background rows do
not fit) gives None: importance is evidence for the reviewer, never a reason for a
training to fail.
"""

import logging
from typing import Any

import numpy
import pandas

from core.logging import exception_outline
from core.ml import explain
from core.ml.features import model_frame

logger = logging.getLogger("pulselytics.training")

MAX_ROWS = 200
SAMPLE_SEED = 0
# The model-agnostic path runs the whole pipeline on (coalitions x background rows) per
# explained row: fewer rows for wide models keep registration within seconds (30
# features: about 85 rows; the anomaly recipe's 4: all 200).
MAX_MODEL_EVALUATIONS = 2_000_000


def importance_sample(frame: pandas.DataFrame, *, rows: int = MAX_ROWS,
                      seed: int = SAMPLE_SEED) -> pandas.DataFrame:
    """The rows importance is computed on: all of them, or `rows` drawn with a fixed seed."""
    return frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed)


def mean_absolute_contributions(explanations: list[dict], features: list[str]) -> dict:
    """Per feature, the mean absolute contribution over explained rows."""
    if not explanations:
        return dict.fromkeys(features, 0.0)
    matrix = numpy.array([[row["contributions"][name] for name in features]
                          for row in explanations], dtype=float)
    return {name: float(value)
            for name, value in zip(features, numpy.abs(matrix).mean(axis=0), strict=True)}


def global_importance_compute(*, estimator: Any, task: str, schema: dict,
                              frame: pandas.DataFrame, reference_profile: dict | None,
                              rows: int = MAX_ROWS) -> dict | None:
    """Mean |contribution| per input feature on (a sample of) `frame`, or None (logged).

    `frame` holds the input features (other columns are ignored); they are put in the
    canonical form serving gives the model (core.ml.features.model_frame).
    """
    try:
        explainer = explain.explainer_build(estimator=estimator, task=task, schema=schema,
                                            reference_profile=reference_profile)
        if isinstance(explainer, explain.ModelAgnosticExplainer):
            per_row = (len(explainer.plan.masks) + 1) * len(explainer.background)
            rows = min(rows, max(1, MAX_MODEL_EVALUATIONS // per_row))
        sample, _ = model_frame(importance_sample(frame, rows=rows), schema)
        explanations = []
        for start in range(0, len(sample), explain.MAX_INSTANCES):
            explanations += explainer.explain(sample.iloc[start:start + explain.MAX_INSTANCES])
    except explain.ExplanationUnsupportedError as exc:
        logger.info("no global importance: %s", exc.message)
        return None
    except Exception as exc:  # noqa: BLE001 - evidence only: never fails the training
        # The outline without messages: a pipeline's error may quote a (personal) value.
        logger.warning("global importance could not be computed",
                       extra={"exception": exception_outline(exc)})
        return None
    return {"method": explainer.method, "output_space": explainer.output_space,
            "rows": len(sample),
            "features": mean_absolute_contributions(explanations, explainer.feature_names)}
