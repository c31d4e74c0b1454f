"""Raising alerts: one open alert per (kind, model, version), counted while it repeats."""

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from monitoring.models import Alert


def alert_raise(*, kind: str, severity: str, model_name: str, version: str = "", message: str,
                payload: dict | None = None) -> Alert:
    """Open an alert, or count a repeat of the open one for the same condition."""
    now = timezone.now()
    open_alerts = Alert.objects.filter(kind=kind, model_name=model_name, version=version,
                                       resolved_at__isnull=True)
    for _ in range(2):  # a concurrent raise may create the row between our two statements
        if open_alerts.update(count=F("count") + 1, last_seen=now, message=message):
            return open_alerts.get()
        try:
            with transaction.atomic():
                return Alert.objects.create(
                    kind=kind, severity=severity, model_name=model_name, version=version,
                    message=message, payload=payload or {}, first_seen=now, last_seen=now,
                )
        except IntegrityError:
            continue
    return open_alerts.get()


def alert_delivery_send(*, delivery_id: int, task=None) -> str:
    """PLACEHOLDER: being written (issue 5)."""
    raise NotImplementedError
