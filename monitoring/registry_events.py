"""Registry events (docs/api.md#registry-events): every sealed registry audit row, once its
transaction has committed, POSTed as signed JSON to REGISTRY_WEBHOOK_URL.

The registry reports each row through `mlregistry.signals.transition_sealed`; the receiver
(monitoring/receivers.py) calls `registry_events_create`. Each row gets one
`RegistryEventDelivery`, sent by a Celery task with the alert deliveries' signature, retries
and resend (monitoring/webhooks.py), under its own secret REGISTRY_WEBHOOK_SECRET.

Order: a model's events are delivered in the order of its chain (`sequence`). A delivery is
not sent while an earlier delivery of the same model is pending; it is sent when that one
ends (sent, or failed for good: a gap a receiver sees in `sequence`), whose task queues it.
"""

import json
import urllib.error
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from mlregistry.models import ModelTransition
from monitoring import webhooks
from monitoring.models import RegistryEventDelivery

EVENT_TYPE = "registry.transition"


class RegistryEventDeliveryError(webhooks.DeliveryRetryError):
    """One attempt of a registry event failed and another is allowed `retry_in` seconds
    from now."""


# -- creating and queueing -----------------------------------------------------------------

def registry_events_create(*, transition_id: int) -> list[int]:
    """Create the pending delivery of a committed row (none without REGISTRY_WEBHOOK_URL) and
    queue it after commit; returns the ids of the deliveries queued.

    Two changes to one model commit in chain order, but their commit callbacks may run in
    either order (two processes); so the deliveries of the model's earlier rows that have
    none, back to its last delivery, are created here too (which also sends, once the URL is
    set again, the rows committed while it was not). A model's first delivery is of its row
    alone: rows from before it had any are not sent.
    """
    if not settings.REGISTRY_WEBHOOK_URL:
        return []
    row = ModelTransition.objects.filter(pk=transition_id).values("model_id", "sequence").first()
    if row is None:
        return []
    with transaction.atomic():
        model_deliveries = RegistryEventDelivery.objects.filter(
            transition__model_id=row["model_id"])
        last_with_delivery = model_deliveries.filter(
            transition__sequence__lt=row["sequence"]).aggregate(
            last=Max("transition__sequence"))["last"]
        rows = ModelTransition.objects.filter(
            model_id=row["model_id"], sequence__lte=row["sequence"],
            sequence__gt=last_with_delivery or row["sequence"] - 1)
        now = timezone.now()
        # ignore_conflicts: a concurrent callback of the same model may create one first.
        RegistryEventDelivery.objects.bulk_create(
            [RegistryEventDelivery(transition_id=pk, target=settings.REGISTRY_WEBHOOK_URL,
                                   created_at=now)
             for pk in rows.exclude(pk__in=model_deliveries.values("transition_id"))
             .values_list("pk", flat=True)],
            ignore_conflicts=True)
        # Queued whoever created them: a second message for a delivery sends nothing twice.
        pending = list(model_deliveries.filter(
            transition__in=rows, state=RegistryEventDelivery.State.PENDING)
            .order_by("transition__sequence").values_list("pk", flat=True))
        transaction.on_commit(lambda: _deliveries_queue(pending))
    return pending


def _deliveries_queue(delivery_ids: list[int]) -> int:
    from monitoring.tasks import registry_event_send_task  # noqa: PLC0415 - tasks import us

    return webhooks.tasks_publish(registry_event_send_task, delivery_ids)


def registry_events_resend(*, now: datetime | None = None) -> int:
    """Queue again the pending deliveries whose next attempt is overdue (never queued, or
    their retry was lost); returns how many were queued."""
    now = now or timezone.now()
    pending = RegistryEventDelivery.objects.filter(
        state=RegistryEventDelivery.State.PENDING, created_at__lte=now - webhooks.RESEND_GRACE)
    return _deliveries_queue(webhooks.overdue_ids(
        pending.order_by("transition__model_id", "transition__sequence")
        .values_list("pk", "created_at", "attempts"), now=now))


# -- delivering ----------------------------------------------------------------------------

def registry_event_send(*, delivery_id: int) -> str:
    """Send one delivery once; returns its state afterwards ("sent", "failed", "waiting", ...).

    Idempotent as alert deliveries are: a delivery already sent or given up is not sent
    again, one being sent by another worker is skipped, and the row stays locked while
    sending. One that waits for an earlier delivery of its model is left pending ("waiting")
    and queued again when that one ends. A failed attempt is recorded; if the attempts left
    allow it, RegistryEventDeliveryError (after commit) tells the task to retry.
    """
    error = ""
    with transaction.atomic():
        delivery = (RegistryEventDelivery.objects.select_for_update(skip_locked=True)
                    .filter(pk=delivery_id).first())
        if delivery is None:
            exists = RegistryEventDelivery.objects.filter(pk=delivery_id).exists()
            return "in_progress" if exists else "missing"
        if delivery.state != RegistryEventDelivery.State.PENDING:
            return delivery.state
        row = ModelTransition.objects.select_related("model", "version", "actor").get(
            pk=delivery.transition_id)
        if _earlier_pending(row).exists():
            return "waiting"
        try:
            delivery.response_status = webhooks.webhook_post(
                url=delivery.target, body=registry_event_body(delivery, row),
                secret=settings.REGISTRY_WEBHOOK_SECRET, delivery_id=delivery.pk)
        except urllib.error.HTTPError as exc:
            delivery.response_status = exc.code
            error = f"HTTPError: {exc}"[:2000]
        except Exception as exc:  # noqa: BLE001 - whatever the far end did is recorded and retried
            delivery.response_status = None
            error = f"{type(exc).__name__}: {exc}"[:2000]
        webhooks.attempt_record(delivery, error=error, now=timezone.now())
        delivery.save(update_fields=["attempts", "last_error", "response_status", "state",
                                     "sent_at"])
    webhooks.attempt_report(delivery, error=error, what="registry event",
                            retry_error=RegistryEventDeliveryError,
                            extra={"delivery_id": delivery.pk, "transition_id": row.pk,
                                   "model": row.model.name, "sequence": row.sequence,
                                   "attempts": delivery.attempts})
    # Sent, or failed for good: the model's next event waited for this one.
    _deliveries_queue(list(_next_pending(row)))
    return delivery.state


def _earlier_pending(row: ModelTransition):
    return RegistryEventDelivery.objects.filter(
        state=RegistryEventDelivery.State.PENDING, transition__model_id=row.model_id,
        transition__sequence__lt=row.sequence)


def _next_pending(row: ModelTransition):
    """The model's next pending delivery after `row`'s, which waited for it (none or one)."""
    return (RegistryEventDelivery.objects.filter(
        state=RegistryEventDelivery.State.PENDING, transition__model_id=row.model_id,
        transition__sequence__gt=row.sequence)
        .order_by("transition__sequence").values_list("pk", flat=True)[:1])


def registry_event_body(delivery: RegistryEventDelivery, row: ModelTransition) -> bytes:
    """The exact bytes POSTed (and signed) for a delivery: the same at every attempt."""
    return json.dumps({
        "type": EVENT_TYPE, "delivery_id": delivery.pk, "id": row.pk,
        "model": row.model.name, "version": row.version.version if row.version_id else "",
        "sequence": row.sequence, "reason": row.reason, "from_status": row.from_status,
        "to_status": row.to_status, "actor": row.actor.get_username(),
        "created_at": row.created_at.isoformat(), "notes": row.notes,
        # Rows about the model itself (a description) record no traffic.
        "traffic": ({"before": row.traffic_before, "after": row.traffic_after}
                    if row.version_id else None),
        "model_sha256": row.model_sha256, "row_sha256": row.row_sha256,
        "previous_sha256": row.previous_sha256, "key_id": row.key_id,
    }, sort_keys=True).encode()
