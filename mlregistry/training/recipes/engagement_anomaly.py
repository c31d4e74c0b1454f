"""Permanent re-export for model files pickled before the recipes moved to core.ml.

Engagement-anomaly pipelines stored before that move name these objects by this module
path; unpickling them must keep finding them here (tests/core/ml/test_legacy_artifacts.py).
"""

from core.ml.recipes.engagement_anomaly import (  # noqa: F401 - re-exported for unpickling
    RobustZScoreDetector,
    engagement_rate_names,
    engagement_rates,
)
