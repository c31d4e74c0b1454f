"""The gates (docs/training.md#validation-gate): validation (is the candidate not worse than
production?) and fairness (§6, are the protected groups treated alike?). `gates_evaluate` gives the
validation gate, `fairness_gate` the fairness gate; the caller merges the two dicts into the
version's `gate_results` (a version needs an override to be approved when any gate has `passed`
False).

Pure: no database access; the caller passes the production version's metrics. The
candidate fails when its primary metric (core.ml.kinds.PRIMARY_METRIC) is worse than
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

The fairness gate reads a report from `fairness.fairness_report` and judges every protected
attribute by one figure of it, `settings.FAIRNESS_GATE_METRIC`:

- a ratio (`demographic_parity_ratio`, the default: selection rates; regression: mean
  predictions) must be at least `settings.FAIRNESS_GATE_MIN_RATIO` (0.8, the four-fifths
  rule);
- a difference (`demographic_parity_difference`, `equal_opportunity_difference`,
  `equalized_odds_difference`, `error_rate_difference`) must be at most
  `settings.FAIRNESS_GATE_MAX_DIFFERENCE` (0.1).

A figure equal to its threshold passes (same tolerance). Result:

    {"fairness": {"passed": bool, "metric": "demographic_parity_ratio", "threshold": 0.8,
                  "min_ratio": 0.8,                 # ratio metrics only
                  "attributes": {"gender": {"value": 0.84 | None, "passed": bool,
                                            "reason": "one sentence"}},
                  "reason": "one sentence"}}

Results stored before the metric was a setting have `ratio` where `value` is now and no
`metric` or `threshold` (the parity ratio and `min_ratio`): `gate_attribute_value` and
`gate_threshold` read both.

It fails when any attribute's figure is on the wrong side of its threshold. An attribute
whose figure is undefined (fewer than two groups of the minimum size, a multiclass model, a
regressor with negative mean predictions, no labels for a rate) cannot be judged and
passes, its reason saying why: the report holds the figures for the reviewer. Without
protected attributes the gate passes with the reason "no protected attributes"; it is
always present, so `gate_results` shows that fairness was considered.
"""

from django.conf import settings

from core.errors import ValidationError
from core.ml.kinds import PRIMARY_METRIC, TASKS

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
        raise ValidationError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
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


RATIO_METRICS = ("demographic_parity_ratio",)
DIFFERENCE_METRICS = ("demographic_parity_difference", "equal_opportunity_difference",
                      "equalized_odds_difference", "error_rate_difference")
FAIRNESS_METRICS = RATIO_METRICS + DIFFERENCE_METRICS
_LABELS = {"demographic_parity_ratio": "parity ratio",
           "demographic_parity_difference": "parity difference",
           "equal_opportunity_difference": "equal opportunity difference",
           "equalized_odds_difference": "equalized odds difference",
           "error_rate_difference": "error rate difference"}


def fairness_metric_label(metric: str) -> str:
    return _LABELS.get(metric, metric)


def gate_attribute_value(result: dict) -> float | None:
    """An attribute's judged figure in a stored fairness gate result (old: `ratio`)."""
    return result.get("value", result.get("ratio"))


def gate_threshold(gate: dict) -> tuple[str, float | None]:
    """(metric, threshold) of a stored fairness gate result (old: the parity ratio)."""
    return gate.get("metric", RATIO_METRICS[0]), gate.get("threshold", gate.get("min_ratio"))


def fairness_gate(report: dict | None, *, metric: str | None = None,
                  threshold: float | None = None) -> dict:
    """Judge a fairness report (None or {}: no protected attributes) by `metric` (default
    settings.FAIRNESS_GATE_METRIC) against its threshold (default: the setting for its
    kind)."""
    metric = metric or settings.FAIRNESS_GATE_METRIC
    if metric not in FAIRNESS_METRICS:
        raise ValidationError(f"unknown fairness gate metric {metric!r}; one of "
                              f"{', '.join(FAIRNESS_METRICS)}", details={"metric": metric})
    is_ratio = metric in RATIO_METRICS
    if threshold is None:
        threshold = (settings.FAIRNESS_GATE_MIN_RATIO if is_ratio
                     else settings.FAIRNESS_GATE_MAX_DIFFERENCE)
    threshold = float(threshold)
    label = fairness_metric_label(metric)
    bound = "at least" if is_ratio else "at most"
    attributes = (report or {}).get("attributes") or {}
    results: dict[str, dict] = {}
    for name, attribute in attributes.items():
        value = attribute.get(metric)
        if value is None:
            note = attribute.get("note") or f"no {label}"
            results[name] = {"value": None, "passed": True, "reason": f"not assessed: {note}"}
            continue
        failed = (value < threshold - TOLERANCE) if is_ratio else (value > threshold + TOLERANCE)
        results[name] = {"value": value, "passed": not failed,
                         "reason": f"{label} {value:.4f} is "
                                   f"{('below' if is_ratio else 'above') if failed else bound} "
                                   f"{threshold}"}
    failed = [name for name, result in results.items() if not result["passed"]]
    unassessed = [name for name, result in results.items() if result["value"] is None]
    if not results:
        reason = "no protected attributes"
    elif failed:
        reason = "{} {} {} for {}".format(label, "below" if is_ratio else "above", threshold,
                                          ", ".join(f"{name} ({results[name]['value']:.4f})"
                                                    for name in failed))
    elif len(unassessed) == len(results):
        reason = f"no protected attribute could be assessed: {', '.join(unassessed)}"
    else:
        reason = f"every assessed protected attribute has a {label} {bound} {threshold}"
        if unassessed:
            reason += f" ({', '.join(unassessed)} not assessed)"
    gate = {"passed": not failed, "metric": metric, "threshold": threshold,
            "attributes": results, "reason": reason}
    if is_ratio:
        gate["min_ratio"] = threshold
    return {"fairness": gate}
