"""The validation gate (SPEC §5): is the candidate not worse than production?

Pure: no database access; the caller passes the production version's metrics. The
candidate fails when its primary metric (metrics.PRIMARY_METRIC) is worse than
production's by more than `settings.VALIDATION_GATE_MARGIN`, an absolute difference in
the metric's own units (0.02 = two points of R2 or ROC AUC). A difference equal to the
margin passes (compared with a 1e-12 tolerance for floating-point noise).

Result, stored as the version's `gate_results`:

    {"validation": {"passed": bool, "metric": "roc_auc" | None, "higher_is_better": bool | None,
                    "candidate": float | None, "production": float | None,
                    "margin": float, "reason": "one sentence"}}

Without a production version the gate passes (nothing to compare with). Anomaly
detection has no primary metric, so its gate passes as not applicable. A candidate whose
primary metric is undefined (None) fails; a production version without the metric
recorded lets the candidate pass, with the reason saying so.
"""

from django.conf import settings

from mlregistry.training.metrics import PRIMARY_METRIC
from pulselytics.errors import ValidationError

TOLERANCE = 1e-12


def _result(*, passed: bool, metric, higher_is_better, candidate, production, margin: float,
            reason: str) -> dict:
    return {"validation": {
        "passed": passed, "metric": metric, "higher_is_better": higher_is_better,
        "candidate": candidate, "production": production, "margin": margin, "reason": reason,
    }}


def gates_evaluate(*, task: str, metrics: dict, production_metrics: dict | None) -> dict:
    """Compare a candidate's metrics with the production version's (None: no production)."""
    if task not in PRIMARY_METRIC:
        raise ValidationError(f"unknown task {task!r}; one of {', '.join(PRIMARY_METRIC)}")
    margin = float(settings.VALIDATION_GATE_MARGIN)
    primary = PRIMARY_METRIC[task]
    if primary is None:
        return _result(passed=True, metric=None, higher_is_better=None, candidate=None,
                       production=None, margin=margin,
                       reason=f"not applicable: {task} has no primary metric to compare")
    metric, higher = primary
    candidate = metrics.get(metric)
    production = (production_metrics or {}).get(metric)
    common = {"metric": metric, "higher_is_better": higher, "candidate": candidate,
              "production": production, "margin": margin}
    if candidate is None:
        return _result(passed=False, **common,
                       reason=f"the candidate's {metric} is undefined on the validation data")
    if not production_metrics:
        return _result(passed=True, **common, reason="no production version to compare with")
    if production is None:
        return _result(passed=True, **common,
                       reason=f"the production version has no {metric} recorded")
    worse_by = (production - candidate) if higher else (candidate - production)
    if worse_by > margin + TOLERANCE:
        return _result(passed=False, **common, reason=(
            f"{metric} {candidate:.4f} is worse than production's {production:.4f} by "
            f"{worse_by:.4f}, more than the margin {margin}"))
    return _result(passed=True, **common, reason=(
        f"{metric} {candidate:.4f} against production's {production:.4f} is within the "
        f"margin {margin}"))
