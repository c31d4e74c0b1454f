"""The read-only overview behind the `status` command (docs/operations.md#status-at-a-glance)
and the alerts as `alerts list --json` prints them: per model its live versions with their
traffic, the running A/B test's arms, the open alerts and the latest drift, SLO, performance
and fairness results, as plain data that prints as JSON as it is.

Reads only, through the registry's and monitoring's selectors; nothing is computed anew
(the figures are those of the last scheduled checks, with the time each was made).
"""

from django.contrib.auth.models import AbstractBaseUser

from mlregistry import selectors as registry
from monitoring import selectors as monitoring
from monitoring.dashboard import selectors as dashboard
from monitoring.models import Alert, DriftReport


def _username(user: AbstractBaseUser | None) -> str | None:
    return user.get_username() if user is not None else None


def alert_data(alert: Alert) -> dict:
    return {"id": alert.pk, "kind": alert.kind, "severity": alert.severity,
            "model": alert.model_name, "version": alert.version, "message": alert.message,
            "count": alert.count, "first_seen": alert.first_seen, "last_seen": alert.last_seen,
            "acknowledged_by": _username(alert.acknowledged_by),
            "acknowledged_at": alert.acknowledged_at,
            "resolved_by": _username(alert.resolved_by) if alert.resolved_at else None,
            "resolved_at": alert.resolved_at}


def _drift_data(report: DriftReport | None) -> dict | None:
    if report is None:
        return None
    return {"checked_at": report.created_at, "status": report.status,
            "dataset_drift": report.dataset_drift, "n_current": report.n_current,
            "drifted_features": [name for name, figures in report.features.items()
                                 if figures.get("drifted")],
            "prediction_drifted": bool((report.prediction or {}).get("drifted"))}


def _live_version_data(arm: dashboard.LiveArm, drift: DriftReport | None) -> dict:
    fairness = monitoring.fairness_report_latest(version_id=arm.version_id)
    return {
        "version": arm.version, "role": arm.role, "traffic_percentage": arm.traffic_percentage,
        "experiment": arm.experiment, "canary_until": arm.canary_until,
        "drift": _drift_data(drift),
        "performance": [{"checked_at": report.created_at, "arm": report.arm,
                         "n_labelled": report.n_labelled, "metrics": report.metrics}
                        for report in monitoring.performance_reports_latest(
                            version_id=arm.version_id)],
        "fairness": None if fairness is None else {
            "checked_at": fairness.created_at, "passed": fairness.passed,
            "n_labelled": fairness.n_labelled},
    }


def _ab_test_data(model: dashboard.ModelChoice) -> dict | None:
    evaluation = dashboard.ab_evaluation_running(model=model)
    if evaluation is None:
        return None
    return {"evaluated_at": evaluation.created_at, "champion": evaluation.champion.version,
            "challenger": evaluation.challenger.version, "metric": evaluation.metric,
            "test": evaluation.test, "p_value": evaluation.p_value,
            "verdict": evaluation.verdict, "action": evaluation.action,
            "reason": evaluation.reason, "arms": evaluation.arms,
            "experiment": evaluation.experiment}


def _shadow_tests_data(model: dashboard.ModelChoice) -> list[dict]:
    return [{"evaluated_at": evaluation.created_at, "champion": evaluation.champion.version,
             "shadow": evaluation.shadow.version, "pairs": evaluation.pairs,
             "labelled": evaluation.labelled, "agreement": evaluation.agreement,
             "mean_abs_difference": evaluation.mean_abs_difference,
             "p95_abs_difference": evaluation.p95_abs_difference, "metric": evaluation.metric,
             "test": evaluation.test, "p_value": evaluation.p_value,
             "verdict": evaluation.verdict, "reason": evaluation.reason}
            for evaluation in dashboard.shadow_evaluations_running(model=model)]


def _canary_data(model: dashboard.ModelChoice) -> dict | None:
    check = dashboard.canary_check_running(model=model)
    if check is None:
        return None
    return {"checked_at": check.created_at, "canary": check.version,
            "champion": check.champion.version, "experiment": check.experiment,
            "bake_until": check.bake_until, "decision": check.decision,
            "breaches": check.breaches, "reason": check.reason, "arms": check.arms}


def _slo_data(model_name: str) -> dict | None:
    report = monitoring.slo_report_latest(model_name=model_name)
    if report is None:
        return None
    return {"checked_at": report.created_at, "requests": report.requests,
            "errors": report.errors, "error_rate": report.error_rate,
            "latency_p50_ms": report.latency_p50_ms, "latency_p95_ms": report.latency_p95_ms,
            "breaches": report.breaches}


def models_status(*, model_name: str | None = None) -> list[dict]:
    """Every registered model's status by name (or one model's: an unknown name raises
    ModelNotFoundError). A model without a live version has an empty `live` list and no A/B
    test, and still lists its open alerts and its last SLO result."""
    live_models = {model.name: model for model in dashboard.dashboard_models()}
    overview = []
    for model in registry.models_for(model_name):
        live = live_models.get(model.name) or dashboard.ModelChoice(
            name=model.name, task=model.task, arms=[], open_alerts=0)
        drift = {report.model_version_id: report
                 for report in monitoring.drift_reports_latest(model_name=model.name)}
        overview.append({
            "model": model.name, "task": model.task, "client_id": model.client_id,
            "live": [_live_version_data(arm, drift.get(arm.version_id)) for arm in live.arms],
            "ab_test": _ab_test_data(live),
            "canary": _canary_data(live),
            "shadow_tests": _shadow_tests_data(live),
            "slo": _slo_data(model.name),
            "open_alerts": [alert_data(alert)
                            for alert in monitoring.alerts_open(model_name=model.name)],
        })
    return overview
