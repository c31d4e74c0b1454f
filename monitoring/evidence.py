"""Production's live figures on the version page (docs/monitoring.md#on-the-version-page).

A reviewer deciding on a candidate sees, right after its validation metrics, how the version
it would replace does on live traffic: the latest live performance check set beside that
version's validation metrics, the latest live fairness audit, and the model's open alerts.
On the production version's own page the panel shows its own figures. With no production
version there is nothing live to set beside the candidate, so the panel says so and keeps
only the model's open alerts (an alert can outlive the version it was raised on).

The registry cannot import monitoring (docs/architecture.md), so MonitoringConfig.ready()
registers `PRODUCTION_LIVE` through mlregistry.evidence_panels. Reads only, through
selectors, in a fixed number of queries however many arms, groups and alerts there are.
"""

from django.conf import settings
from django.urls import reverse

from core.ml.gates import (
    RATIO_METRICS,
    fairness_gate,
    fairness_metric_label,
    gate_attribute_value,
)
from core.ml.kinds import ANOMALY, HIGHER_IS_BETTER, PRIMARY_METRIC
from mlregistry import selectors as registry
from mlregistry.evidence_panels import EvidencePanel
from mlregistry.model_card import METRIC_ORDER, fairness_table
from mlregistry.models import MLModelVersion, Status
from monitoring import selectors
from monitoring.models import PerformanceReport


def _metric_names(reports: list[PerformanceReport], primary: str | None) -> list[str]:
    """Every metric the reports hold: the primary first, then in the order of the metrics
    table above the panel (mlregistry.model_card)."""
    rank = {name: i for i, name in enumerate(METRIC_ORDER)}
    names = {name for report in reports for name in report.metrics}
    return sorted(names, key=lambda name: (name != primary, rank.get(name, len(rank)), name))


def _degraded(report: PerformanceReport, *, task: str, validation: dict) -> bool:
    """Whether the check judged this arm's primary metric degraded: enough labelled
    predictions and worse than validation by more than the threshold (monitoring.performance)."""
    # Imported when a page is drawn: monitoring.performance imports scikit-learn, which no
    # process may import at start-up (tests/test_startup_imports.py).
    from monitoring.performance import degradation_of  # noqa: PLC0415

    return (report.n_labelled >= settings.PERFORMANCE_MIN_LABELLED
            and degradation_of(task=task, live=report.metrics, validation=validation) is not None)


def _performance(production: MLModelVersion, task: str) -> dict | None:
    """The latest check's live metrics per arm beside the validation metrics, or None when
    the version was never measured."""
    reports = selectors.performance_reports_latest(version_id=production.pk)
    if not reports:
        return None
    validation = production.metrics or {}
    primary = (PRIMARY_METRIC.get(task) or (None,))[0]
    arms = [{"arm": report.arm, "n_labelled": report.n_labelled,
             "degraded": _degraded(report, task=task, validation=validation)}
            for report in reports]
    rows = [{"metric": name, "primary": name == primary,
             "higher_is_better": HIGHER_IS_BETTER.get(name),
             "validation": validation.get(name),
             "live": [{"value": report.metrics.get(name),
                       "degraded": name == primary and arm["degraded"]}
                      for report, arm in zip(reports, arms, strict=True)]}
            for name in _metric_names(reports, primary)]
    newest = reports[0]  # every arm of one check shares its time and window
    return {"checked_at": newest.created_at, "window_start": newest.window_start,
            "window_end": newest.window_end, "arms": arms, "rows": rows}


def _fairness(production: MLModelVersion) -> dict | None:
    """The latest live audit as the fairness table of the version page, each attribute
    judged against the gate, or None when the version was never audited live."""
    audit = selectors.fairness_report_latest(version_id=production.pk)
    if audit is None:
        return None
    table = fairness_table(audit.report)
    gate = fairness_gate(audit.report)["fairness"]
    for attribute in table["attributes"]:
        judged = gate["attributes"].get(attribute["name"], {})
        attribute["breach"] = gate_attribute_value(judged) is not None and not judged["passed"]
    bound = "at least" if gate["metric"] in RATIO_METRICS else "at most"
    return {**table, "checked_at": audit.created_at, "window_start": audit.window_start,
            "window_end": audit.window_end, "n_labelled": audit.n_labelled,
            "passed": audit.passed, "reason": gate["reason"],
            "gate_rule": f"{fairness_metric_label(gate['metric'])} {bound} {gate['threshold']}"}


def production_live_panel(version: MLModelVersion) -> dict:
    """The panel's context on the page of `version`: the live figures of the production
    version it would replace, or its own when it is the production version."""
    from monitoring.fairness import protected_logged  # noqa: PLC0415 - see _degraded

    model = version.model
    production = (version if version.status == Status.PRODUCTION
                  else registry.version_production_counterpart(version=version))
    context = {"model_name": model.name, "production": None,
               "alerts": selectors.alerts_open(model_name=model.name)}
    if production is None:
        return context
    context.update(
        production=production.version, this_version=production.pk == version.pk,
        unsupervised=model.task == ANOMALY,
        performance=_performance(production, model.task),
        fairness=_fairness(production),
        fairness_audited=bool(protected_logged(production.feature_schema or {})),
        window_hours=settings.PERFORMANCE_WINDOW_HOURS,
    )
    return context


PRODUCTION_LIVE = EvidencePanel(name="production-live",
                                template="admin/monitoring/evidence/production_live.html",
                                context=production_live_panel)


def report_download_panel(version: MLModelVersion) -> dict:
    """The button that downloads the version's monitoring report (monitoring.report)."""
    return {"report_url": reverse("monitoring_dashboard:report", args=[version.pk])}


MONITORING_REPORT = EvidencePanel(name="monitoring-report",
                                  template="admin/monitoring/evidence/report_download.html",
                                  context=report_download_panel)
