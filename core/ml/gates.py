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

The fairness gate reads a report from `fairness.fairness_report` and checks every protected
attribute's demographic parity ratio (selection rates; regression: mean predictions)
against `settings.FAIRNESS_GATE_MIN_RATIO` (0.8, the four-fifths rule); a ratio equal to
the minimum passes (same tolerance). Result:

    {"fairness": {"passed": bool, "min_ratio": 0.8,
                  "attributes": {"gender": {"ratio": 0.84 | None, "passed": bool,
                                            "reason": "one sentence"}},
                  "reason": "one sentence"}}

It fails when any attribute's ratio is below the minimum. An attribute whose ratio is
undefined (fewer than two groups of the minimum size, a multiclass model, a regressor
with negative mean predictions) cannot be judged and passes, its reason saying why: the
report holds the figures for the reviewer. Without protected attributes the gate passes
with the reason "no protected attributes"; it is always present, so `gate_results`
shows that fairness was considered.
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


def fairness_gate(report: dict | None, *, min_ratio: float | None = None) -> dict:
    """Judge a fairness report (None or {}: no protected attributes) against the minimum ratio."""
    min_ratio = float(settings.FAIRNESS_GATE_MIN_RATIO if min_ratio is None else min_ratio)
    attributes = (report or {}).get("attributes") or {}
    results: dict[str, dict] = {}
    for name, attribute in attributes.items():
        ratio = attribute.get("demographic_parity_ratio")
        if ratio is None:
            note = attribute.get("note") or "no parity ratio"
            results[name] = {"ratio": None, "passed": True,
                             "reason": f"not assessed: {note}"}
        elif ratio < min_ratio - TOLERANCE:
            results[name] = {"ratio": ratio, "passed": False,
                             "reason": f"parity ratio {ratio:.4f} is below {min_ratio}"}
        else:
            results[name] = {"ratio": ratio, "passed": True,
                             "reason": f"parity ratio {ratio:.4f} is at least {min_ratio}"}
    failed = [name for name, result in results.items() if not result["passed"]]
    unassessed = [name for name, result in results.items() if result["ratio"] is None]
    if not results:
        reason = "no protected attributes"
    elif failed:
        reason = "parity ratio below {} for {}".format(min_ratio, ", ".join(
            f"{name} ({results[name]['ratio']:.4f})" for name in failed))
    elif len(unassessed) == len(results):
        reason = f"no protected attribute could be assessed: {', '.join(unassessed)}"
    else:
        reason = f"every assessed protected attribute has a parity ratio of at least {min_ratio}"
        if unassessed:
            reason += f" ({', '.join(unassessed)} not assessed)"
    return {"fairness": {"passed": not failed, "min_ratio": min_ratio, "attributes": results,
                         "reason": reason}}
