"""Live fairness audit (docs/monitoring.md#fairness): the validation-time report, on logged
predictions with outcomes, per live version with protected attributes, and an alert when the gate
fails.

The report is `core.ml.fairness.fairness_report` on the version's labelled
predictions made in [now - PERFORMANCE_WINDOW_HOURS, now) (every routed arm: they are all
this version's answers to live traffic; pinned requests, a client's backtests, are not), so
it has exactly the shape of the version's own `fairness_report`,
and the gate is `core.ml.gates.fairness_gate` (parity ratio at least
FAIRNESS_GATE_MIN_RATIO). The groups come from the logged features; a protected attribute
that is also PII is never logged and so cannot be audited live (it is left out).
Anomaly detectors are audited on their flags (the selection rate is the share flagged).

`passed` is None when no attribute could be judged (fewer than two groups of
FAIRNESS_MIN_GROUP_SIZE labelled rows, a multiclass model).
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from core.ml.fairness import fairness_report
from core.ml.gates import fairness_gate
from core.ml.kinds import ANOMALY, ANOMALY_LABEL, BINARY
from mlregistry import selectors as registry
from mlregistry.models import MLModelVersion
from monitoring.alerts import alert_raise
from monitoring.models import Alert, FairnessReport
from monitoring.performance import classes_of
from predictions.models import PredictionLog


def protected_logged(schema: dict) -> list[str]:
    """The protected attributes of a feature schema that the prediction log keeps."""
    return [f["name"] for f in schema.get("features", [])
            if f.get("protected") and not f.get("pii")]


def _rows(*, version_id: int, attributes: list[str], start: datetime, end: datetime):
    """(value, probabilities, actual, *attribute values) of the labelled predictions, with
    only the protected keys extracted from the features by the database."""
    keys = {f"protected_{i}": KeyTransform(name, "features") for i, name in enumerate(attributes)}
    return (PredictionLog.objects.filter(model_version_id=version_id, created_at__gte=start,
                                         created_at__lt=end, actual_at__isnull=False)
            .exclude(arm=PredictionLog.Arm.PINNED).order_by().annotate(**keys)
            .values_list("value", "probabilities", "actual", *keys)
            .iterator(chunk_size=settings.MONITORING_CHUNK_SIZE))


def fairness_audit(*, version_id: int, now: datetime | None = None) -> FairnessReport | None:
    """Audit a version's labelled predictions in the window; None when it has no protected
    attribute in its logs. A failed gate raises a `fairness` alert."""
    now = now or timezone.now()
    start = now - timedelta(hours=settings.PERFORMANCE_WINDOW_HOURS)
    version = MLModelVersion.objects.select_related("model").get(pk=version_id)
    attributes = protected_logged(version.feature_schema)
    if not attributes:
        return None
    task = version.model.task
    predicted, actual, groups = [], [], {name: [] for name in attributes}
    positive = None
    for value, probabilities, outcome, *values in _rows(
            version_id=version_id, attributes=attributes, start=start, end=now):
        if task == BINARY and positive is None:
            positive = classes_of(probabilities, value)[-1]
        # The report reads an anomaly model's flags as sklearn's outlier labels.
        predicted.append((ANOMALY_LABEL if value else 1) if task == ANOMALY else value)
        actual.append(outcome)
        for name, group in zip(attributes, values, strict=True):
            groups[name].append(group)
    report = fairness_report(task=task, protected=groups,
                             y_true=None if task == ANOMALY else actual, y_pred=predicted,
                             positive_label=positive)
    gate = fairness_gate(report)["fairness"]
    judged = [a for a in gate["attributes"].values() if a["value"] is not None]
    passed = gate["passed"] if judged else None
    with transaction.atomic():
        audit = FairnessReport.objects.create(
            model_version=version, model_name=version.model.name, version=version.version,
            window_start=start, window_end=now, n_labelled=len(predicted), report=report,
            passed=passed, created_at=now,
        )
        if passed is False:
            alert_raise(
                kind=Alert.Kind.FAIRNESS, severity=Alert.Severity.WARNING,
                model_name=version.model.name, version=version.version,
                message=(f"{version.model.name} {version.version}: live fairness gate failed "
                         f"on {len(predicted)} labelled predictions: {gate['reason']}"),
                payload={"fairness_report_id": audit.pk, "gate": gate,
                         "window_start": start.isoformat(), "window_end": now.isoformat()},
            )
    return audit


def fairness_audit_all(*, now: datetime | None = None) -> list[FairnessReport]:
    """fairness_audit for every live version that has protected attributes."""
    now = now or timezone.now()
    audits = (fairness_audit(version_id=live.version_id, now=now)
              for live in registry.live_versions_all() if protected_logged(live.feature_schema))
    return [audit for audit in audits if audit is not None]
