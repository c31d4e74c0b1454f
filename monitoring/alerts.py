"""Alerts (docs/monitoring.md#alerts): raise with de-duplication and a cool-down, deliver by email
and by signed webhook, acknowledge and resolve.

One open alert per (kind, model, version): a repeat counts into it. An alert is sent when
it opens, when it escalates, and again as a reminder when a repeat comes after
ALERT_COOLDOWN_SECONDS since it was last sent (unless someone acknowledged it). Each
sending is an `AlertDelivery` row per channel, created in the alert's transaction and
queued after commit; queueing never fails or blocks the caller (alerts are raised inside
prediction requests): a delivery that could not be queued stays pending and the periodic
`alert_deliveries_resend` queues it again.
"""

import json
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import IllegalTransitionError, NotFoundError
from core.permissions import require_permission
from monitoring import webhooks
from monitoring.models import Alert, AlertDelivery

logger = logging.getLogger("pulselytics.monitoring")

CHANGE_PERMISSION = "monitoring.change_alert"
SEVERITY_RANK = {Alert.Severity.INFO: 0, Alert.Severity.WARNING: 1, Alert.Severity.CRITICAL: 2}


class AlertDeliveryError(webhooks.DeliveryRetryError):
    """One attempt of an alert delivery failed and another is allowed `retry_in` seconds
    from now."""


# -- raising -------------------------------------------------------------------------------

def alert_raise(*, kind: str, severity: str, model_name: str, version: str = "", message: str,
                payload: dict | None = None) -> Alert:
    """Open an alert, or count a repeat of the open one for the same condition; queue its
    deliveries when it is new, escalated, or due for a reminder."""
    kind, severity = Alert.Kind(kind), Alert.Severity(severity)
    now = timezone.now()
    with transaction.atomic():
        alert, created = _alert_open_locked(kind=kind, severity=severity, model_name=model_name,
                                            version=version, message=message,
                                            payload=payload or {}, now=now)
        if created:
            reason = "opened"
        else:
            reason = _repeat_count(alert, severity=severity, message=message,
                                   payload=payload or {}, now=now)
        if reason and _deliveries_create(alert, now=now):
            alert.notified_at = now
        alert.save()
    if reason:
        logger.info("alert %s", reason, extra={"alert_id": alert.pk, "kind": kind,
                                               "severity": alert.severity, "model": model_name,
                                               "version": version, "count": alert.count})
    return alert


def _alert_open_locked(*, kind: str, severity: str, model_name: str, version: str,
                       message: str, payload: dict, now: datetime) -> tuple[Alert, bool]:
    """The open alert of the condition, locked, or a new one (True)."""
    open_alerts = Alert.objects.select_for_update().filter(
        kind=kind, model_name=model_name, version=version, resolved_at__isnull=True)
    alert = open_alerts.first()
    if alert is not None:
        return alert, False
    try:
        with transaction.atomic():  # a savepoint: a concurrent raise may have won the insert
            return Alert.objects.create(
                kind=kind, severity=severity, model_name=model_name, version=version,
                message=message, payload=payload, first_seen=now, last_seen=now,
            ), True
    except IntegrityError:
        # The partial unique constraint made us wait for the winner's commit: count into it.
        return open_alerts.get(), False


def _repeat_count(alert: Alert, *, severity: str, message: str, payload: dict,
                  now: datetime) -> str:
    """Count a repeat into the locked open alert; returns why it must be sent again, or ""."""
    alert.count += 1
    alert.last_seen = now
    alert.message, alert.payload = message, payload
    if SEVERITY_RANK[severity] > SEVERITY_RANK[alert.severity]:
        alert.severity = severity  # never lowered while open: the worst seen stands
        return "escalated"
    cooled_down = (alert.notified_at is None or now - alert.notified_at
                   >= timedelta(seconds=settings.ALERT_COOLDOWN_SECONDS))
    if cooled_down and alert.acknowledged_at is None:
        return "reminded"
    return ""


def _deliveries_create(alert: Alert, *, now: datetime) -> list[AlertDelivery]:
    """One pending delivery per configured channel, queued once the transaction commits."""
    targets = []
    if settings.ALERT_EMAIL_RECIPIENTS:
        targets.append((AlertDelivery.Channel.EMAIL, ", ".join(settings.ALERT_EMAIL_RECIPIENTS)))
    if settings.ALERT_WEBHOOK_URL:
        targets.append((AlertDelivery.Channel.WEBHOOK, settings.ALERT_WEBHOOK_URL))
    deliveries = [AlertDelivery.objects.create(alert=alert, channel=channel, target=target,
                                               created_at=now)
                  for channel, target in targets]
    if deliveries:
        ids = [delivery.pk for delivery in deliveries]
        transaction.on_commit(lambda: _deliveries_queue(ids))
    return deliveries


def _deliveries_queue(delivery_ids: list[int]) -> int:
    """Publish one send task per delivery; returns how many were queued, never raises nor
    waits on a broker that is down (webhooks.tasks_publish)."""
    from monitoring.tasks import alert_delivery_send_task  # noqa: PLC0415 - tasks import us

    return webhooks.tasks_publish(alert_delivery_send_task, delivery_ids)


def alert_deliveries_resend(*, now: datetime | None = None) -> int:
    """Queue again the pending deliveries whose next attempt is overdue (never queued, or
    their retry was lost); returns how many were queued."""
    now = now or timezone.now()
    pending = AlertDelivery.objects.filter(state=AlertDelivery.State.PENDING,
                                           created_at__lte=now - webhooks.RESEND_GRACE)
    return _deliveries_queue(webhooks.overdue_ids(
        pending.order_by("pk").values_list("pk", "created_at", "attempts"), now=now))


# -- delivering ----------------------------------------------------------------------------

def alert_delivery_send(*, delivery_id: int) -> str:
    """Send one delivery once; returns its state afterwards ("sent", "failed", ...).

    Idempotent: a delivery already sent or given up is not sent again, and one being sent
    by another worker right now is skipped. The row stays locked while sending, so a
    duplicate message cannot send it twice. A failed attempt is recorded; if the attempts
    left allow it, AlertDeliveryError (after commit) tells the task to retry, else the
    delivery ends `failed`.
    """
    error = ""
    with transaction.atomic():
        delivery = (AlertDelivery.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("alert").filter(pk=delivery_id).first())
        if delivery is None:
            exists = AlertDelivery.objects.filter(pk=delivery_id).exists()
            return "in_progress" if exists else "missing"
        if delivery.state != AlertDelivery.State.PENDING:
            return delivery.state
        now = timezone.now()
        try:
            _SENDERS[delivery.channel](delivery)
        except Exception as exc:  # noqa: BLE001 - whatever the far end did is recorded and retried
            error = f"{type(exc).__name__}: {exc}"[:2000]
        webhooks.attempt_record(delivery, error=error, now=now)
        if not error:
            # The cool-down runs from when it was really sent.
            Alert.objects.filter(Q(notified_at__isnull=True) | Q(notified_at__lt=now),
                                 pk=delivery.alert_id).update(notified_at=now)
        delivery.save(update_fields=["attempts", "last_error", "state", "sent_at"])
    webhooks.attempt_report(delivery, error=error, what="alert delivery",
                            retry_error=AlertDeliveryError,
                            extra={"delivery_id": delivery.pk, "alert_id": delivery.alert_id,
                                   "channel": delivery.channel, "attempts": delivery.attempts})
    return delivery.state


def alert_subject(alert: Alert) -> str:
    """E.g. "[Pulselytics critical] drift on engagement-likes 1.0.0"."""
    subject = f"[Pulselytics {alert.severity}] {alert.kind} on {alert.model_name} {alert.version}"
    return subject.strip()


def alert_webhook_body(delivery: AlertDelivery) -> bytes:
    """The exact bytes POSTed (and signed) for a webhook delivery."""
    alert = delivery.alert
    return json.dumps({
        "id": alert.pk, "kind": alert.kind, "severity": alert.severity,
        "model": alert.model_name, "version": alert.version, "message": alert.message,
        "payload": alert.payload, "count": alert.count,
        "first_seen": alert.first_seen.isoformat(), "last_seen": alert.last_seen.isoformat(),
        "delivery_id": delivery.pk,
    }, sort_keys=True).encode()


def _webhook_send(delivery: AlertDelivery) -> None:
    webhooks.webhook_post(url=delivery.target, body=alert_webhook_body(delivery),
                          secret=settings.ALERT_WEBHOOK_SECRET, delivery_id=delivery.pk)


def _email_send(delivery: AlertDelivery) -> None:
    alert = delivery.alert
    lines = [
        alert.message, "",
        f"Kind: {alert.kind}", f"Severity: {alert.severity}",
        f"Model: {alert.model_name} {alert.version}".rstrip(),
        (f"Seen {alert.count} time(s): first {alert.first_seen:%Y-%m-%d %H:%M:%S %Z}, "
         f"last {alert.last_seen:%Y-%m-%d %H:%M:%S %Z}"),
        f"Alert id: {alert.pk}",
    ]
    if alert.payload:
        lines += ["", "Details:", json.dumps(alert.payload, indent=2, sort_keys=True)]
    recipients = [address.strip() for address in delivery.target.split(",") if address.strip()]
    send_mail(alert_subject(alert), "\n".join(lines), settings.ALERT_EMAIL_FROM, recipients)


_SENDERS = {AlertDelivery.Channel.EMAIL: _email_send, AlertDelivery.Channel.WEBHOOK: _webhook_send}


# -- handling ------------------------------------------------------------------------------

def _alert_locked(alert_id: int) -> Alert:
    try:
        return Alert.objects.select_for_update().get(pk=alert_id)
    except Alert.DoesNotExist:
        raise NotFoundError(f"alert {alert_id} does not exist",
                            details={"alert_id": alert_id}) from None


def alert_acknowledge(*, alert_id: int, user: AbstractBaseUser) -> Alert:
    """Someone is on it: repeats are still counted, reminders stop (escalations do not)."""
    require_permission(user, CHANGE_PERMISSION, "acknowledge alerts")
    with transaction.atomic():
        alert = _alert_locked(alert_id)
        if alert.resolved_at is not None:
            raise IllegalTransitionError(f"alert {alert.pk} is already resolved",
                                         details={"alert_id": alert.pk})
        if alert.acknowledged_at is not None:
            raise IllegalTransitionError(
                f"alert {alert.pk} was already acknowledged by {alert.acknowledged_by}",
                details={"alert_id": alert.pk})
        alert.acknowledged_by, alert.acknowledged_at = user, timezone.now()
        alert.save(update_fields=["acknowledged_by", "acknowledged_at"])
    return alert


def alert_resolve(*, alert_id: int, user: AbstractBaseUser) -> Alert:
    """Close the alert: the next occurrence of its condition opens a new one."""
    require_permission(user, CHANGE_PERMISSION, "resolve alerts")
    with transaction.atomic():
        alert = _alert_locked(alert_id)
        if alert.resolved_at is not None:
            raise IllegalTransitionError(f"alert {alert.pk} is already resolved",
                                         details={"alert_id": alert.pk})
        alert.resolved_by, alert.resolved_at = user, timezone.now()
        alert.save(update_fields=["resolved_by", "resolved_at"])
    return alert
