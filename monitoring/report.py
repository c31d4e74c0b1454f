"""The monitoring report of one version (docs/monitoring.md#reports): everything monitoring
knows about it, as data (`monitoring_report_build`, also the JSON format) and as one
self-contained HTML file (`monitoring_report_html`: inline CSS and SVG, no script, nothing
from the network) to open and share outside the admin.

Sections: the version's evidence summary (hashes, who made and approved it, validation
metrics, gates), drift per feature of its latest drift report (the reference profile's bins
against the window's, per feature and for the output), live performance over the
performance window (each check's figures per arm against the validation figure, and the
estimates made without labels with their bands), fairness
(the latest live audit, else the validation audit), and the latest A/B evaluation, shadow
evaluation and canary check that involve it.
"""

import itertools
from datetime import datetime, timedelta

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from core.ml.kinds import task_kind
from mlregistry.model_card import fairness_table, gates_summary
from mlregistry.models import MLModelVersion
from monitoring.dashboard import charts
from monitoring.models import (
    ABEvaluation,
    CanaryCheck,
    DriftReport,
    EstimatedPerformanceReport,
    FairnessReport,
    PerformanceReport,
    ShadowEvaluation,
)

REPORT_FORMAT = 1


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def _username(user) -> str | None:
    return user.get_username() if user else None


def _bin_labels(edges: list[float]) -> list[str]:
    if not edges:
        return ["all"]
    labels = [f"≤ {edges[0]:.4g}"]
    labels += [f"{low:.4g} – {high:.4g}" for low, high in itertools.pairwise(edges)]
    return [*labels, f"> {edges[-1]:.4g}"]


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [count / total if total else 0.0 for count in counts]


def _distribution(entry: dict, figures: dict) -> dict:
    """Reference and current shares per bin (numeric) or category (categorical)."""
    current = figures.get("current_counts")
    if entry.get("kind") == "categorical":
        reference = entry.get("counts") or {}
        current = current or {}
        labels = sorted(set(reference) | set(current))
        return {"labels": labels,
                "reference": _shares([reference.get(label, 0) for label in labels]),
                "current": _shares([current.get(label, 0) for label in labels])}
    return {"labels": _bin_labels(entry.get("edges") or []),
            "reference": _shares(entry.get("counts") or []),
            "current": _shares(current or [])}


def _drift(version: MLModelVersion) -> dict | None:
    report = (DriftReport.objects.filter(model_version=version)
              .order_by("-created_at", "-pk").first())
    if report is None:
        return None
    profile = version.reference_profile or {}
    features = []
    for name, figures in sorted(report.features.items()):
        entry = (profile.get("features") or {}).get(name) or {}
        features.append({"name": name, "kind": figures.get("kind"), "psi": figures.get("psi"),
                         "severity": figures.get("severity"),
                         "drifted": figures.get("drifted"),
                         "distribution": _distribution(entry, figures)})
    output = None
    if report.prediction:
        output = {"psi": report.prediction.get("psi"),
                  "drifted": report.prediction.get("drifted"),
                  "distribution": _distribution(profile.get("output") or {}, report.prediction)}
    return {"checked_at": _iso(report.created_at), "window_start": _iso(report.window_start),
            "window_end": _iso(report.window_end), "status": report.status,
            "n_current": report.n_current, "dataset_drift": report.dataset_drift,
            "features": features, "output": output}


def _performance(version: MLModelVersion, now: datetime) -> dict:
    metric = task_kind(version.model.task).primary_metric
    since = now - timedelta(hours=settings.PERFORMANCE_WINDOW_HOURS)
    checks = (PerformanceReport.objects.filter(model_version=version, created_at__gte=since)
              .order_by("created_at", "pk"))
    estimates = (EstimatedPerformanceReport.objects
                 .filter(model_version=version, created_at__gte=since)
                 .order_by("created_at", "pk"))
    return {"metric": metric, "validation": (version.metrics or {}).get(metric),
            "checks": [{"checked_at": _iso(check.created_at), "arm": check.arm,
                        "n_labelled": check.n_labelled, "metrics": check.metrics,
                        "outcome_drift": check.outcome_drift}
                       for check in checks],
            "estimated": [{"checked_at": _iso(estimate.created_at), "arm": estimate.arm,
                           "method": estimate.method, "n_predictions": estimate.n_predictions,
                           "metrics": estimate.estimated}
                          for estimate in estimates]}


def _fairness(version: MLModelVersion) -> dict | None:
    live = FairnessReport.objects.filter(model_version=version).order_by("-created_at").first()
    if live is not None:
        return {"source": "live", "checked_at": _iso(live.created_at),
                "n_labelled": live.n_labelled, "passed": live.passed,
                "table": fairness_table(live.report)}
    table = fairness_table(version.fairness_report)
    return {"source": "validation", "table": table} if table else None


def _tests(version: MLModelVersion) -> dict:
    ab = (ABEvaluation.objects.filter(challenger=version) | ABEvaluation.objects.filter(
        champion=version)).select_related("champion", "challenger").first()
    shadow = (ShadowEvaluation.objects.filter(shadow=version) | ShadowEvaluation.objects.filter(
        champion=version)).select_related("champion", "shadow").first()
    canary = (CanaryCheck.objects.filter(canary=version) | CanaryCheck.objects.filter(
        champion=version)).select_related("champion").first()
    return {
        "ab": None if ab is None else {
            "evaluated_at": _iso(ab.created_at), "experiment": ab.experiment,
            "champion": ab.champion.version, "challenger": ab.challenger.version,
            "metric": ab.metric, "test": ab.test, "p_value": ab.p_value,
            "verdict": ab.verdict, "action": ab.action, "reason": ab.reason, "arms": ab.arms},
        "shadow": None if shadow is None else {
            "evaluated_at": _iso(shadow.created_at), "champion": shadow.champion.version,
            "shadow": shadow.shadow.version, "pairs": shadow.pairs,
            "labelled": shadow.labelled, "agreement": shadow.agreement,
            "mean_abs_difference": shadow.mean_abs_difference, "test": shadow.test,
            "p_value": shadow.p_value, "verdict": shadow.verdict, "reason": shadow.reason},
        "canary": None if canary is None else {
            "checked_at": _iso(canary.created_at), "canary": canary.version,
            "champion": canary.champion.version, "experiment": canary.experiment,
            "decision": canary.decision, "breaches": canary.breaches, "reason": canary.reason},
    }


def monitoring_report_build(*, version: MLModelVersion, now: datetime | None = None) -> dict:
    """The report of `version` as JSON-ready data (see the module docstring)."""
    now = now or timezone.now()
    model = version.model
    return {
        "format": REPORT_FORMAT, "generated_at": _iso(now), "model": model.name,
        "version": version.version, "task": model.task, "status": version.status,
        "evidence": {
            "model_sha256": version.model_sha256,
            "dataset_sha256": version.training_dataset_sha256,
            "created_by": _username(version.created_by), "created_at": _iso(version.created_at),
            "approved_by": _username(version.approved_by),
            "approved_at": _iso(version.approved_at), "deployed_at": _iso(version.deployed_at),
            "metrics": version.metrics or {},
            "gates": [{"name": gate["name"], "state": gate["state"], "reason": gate["reason"]}
                      for gate in gates_summary(
                          version.gate_results,
                          override_justification=version.override_justification)],
        },
        "drift": _drift(version),
        "performance": _performance(version, now),
        "fairness": _fairness(version),
        "tests": _tests(version),
    }


def _performance_chart(performance: dict):
    series: dict[str, list] = {}
    metric = performance["metric"]
    for check in performance["checks"]:
        value = (check["metrics"] or {}).get(metric)
        if isinstance(value, int | float):
            series.setdefault(check["arm"], []).append(
                (datetime.fromisoformat(check["checked_at"]), float(value)))
    references = ([charts.Reference("validation", performance["validation"], kind="baseline")]
                  if isinstance(performance["validation"], int | float) else [])
    return charts.line_chart(
        series=[charts.Series(f"{metric} ({arm})", points) for arm, points in series.items()],
        title=f"Live {metric} per check", empty="no live performance check with outcomes yet",
        references=references)


def _estimated_chart(performance: dict):
    """The estimated metric without labels per check, its band, and the realized figure of
    the same metric once outcomes exist."""
    metric = next((name for estimate in performance["estimated"]
                   for name, figures in estimate["metrics"].items()
                   if figures.get("value") is not None), None)
    series: dict[str, list] = {}
    for estimate in performance["estimated"]:
        figures = estimate["metrics"].get(metric) or {}
        at = datetime.fromisoformat(estimate["checked_at"])
        for part, label in (("value", "estimated"), ("lower", "lower"), ("upper", "upper")):
            if isinstance(figures.get(part), int | float):
                series.setdefault(f"{label} ({estimate['arm']})", []).append(
                    (at, float(figures[part])))
    for check in performance["checks"]:
        value = (check["metrics"] or {}).get(metric)
        if isinstance(value, int | float):
            series.setdefault(f"realized ({check['arm']})", []).append(
                (datetime.fromisoformat(check["checked_at"]), float(value)))
    return charts.line_chart(
        series=[charts.Series(name, points) for name, points in series.items()],
        title=f"Estimated {metric or 'performance'} per check, with its band",
        empty="no estimate yet (binary classifiers and regressors registered with an "
              "estimation reference)")


def monitoring_report_html(*, version: MLModelVersion, now: datetime | None = None) -> str:
    """The report of `version` as one self-contained HTML document."""
    report = monitoring_report_build(version=version, now=now)
    drift = report["drift"]
    distributions = []
    if drift:
        distributions = [
            (feature, charts.paired_bar_chart(
                labels=feature["distribution"]["labels"],
                first=feature["distribution"]["reference"],
                second=feature["distribution"]["current"], names=("reference", "current"),
                title=f"{feature['name']}: share of rows per bin",
                empty="no values in the window"))
            for feature in drift["features"]]
        if drift["output"]:
            distributions.append(({"name": "(prediction)", **drift["output"]},
                                   charts.paired_bar_chart(
                labels=drift["output"]["distribution"]["labels"],
                first=drift["output"]["distribution"]["reference"],
                second=drift["output"]["distribution"]["current"],
                names=("reference", "current"), title="prediction: share of rows per bin",
                empty="no values in the window")))
    return render_to_string("monitoring/report.html", {
        "report": report, "distributions": distributions,
        "performance_chart": _performance_chart(report["performance"]),
        "estimated_chart": _estimated_chart(report["performance"]),
        "fairness": (report["fairness"] or {}).get("table"),
    })
