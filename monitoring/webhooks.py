"""What every signed webhook monitoring sends has in common: alert deliveries (alerts.py) and
registry events (registry_events.py).

The signature and its headers (docs/monitoring.md#verifying-a-webhook), a POST that follows
no redirect, publishing send tasks without ever waiting on a broker that is down, and the
retry timing that the send tasks and the resend tasks agree on.
"""

import hashlib
import hmac
import logging
import time
import urllib.request
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings

logger = logging.getLogger("pulselytics.monitoring")

# A pending delivery is queued again once it is this much later than its next attempt was
# due: long enough for a queued message to reach a worker, short enough for an operator.
RESEND_GRACE = timedelta(seconds=60)
# Publishing deliveries gives up after this long on an unreachable broker.
PUBLISH_TIMEOUT_SECONDS = 2
# The states every delivery model has beside "pending" (AlertDelivery, RegistryEventDelivery).
SENT, FAILED = "sent", "failed"


class DeliveryRetryError(Exception):
    """One attempt failed and another is allowed `retry_in` seconds from now."""

    def __init__(self, message: str, *, retry_in: float) -> None:
        super().__init__(message)
        self.retry_in = retry_in


def webhook_signature(body: bytes, *, timestamp: int, secret: str) -> str:
    """The X-Pulselytics-Signature header: HMAC-SHA256, keyed with the shared secret, of the
    X-Pulselytics-Timestamp value, a dot and the body, so a receiver can refuse a replay of an
    old delivery (docs/monitoring.md#verifying-a-webhook)."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer the receiver must fix, not a reason to post the signed body
    somewhere else: it fails the attempt as a non-2xx status."""

    def redirect_request(self, *args, **kwargs):
        return None


_webhook_opener = urllib.request.build_opener(_NoRedirect)


def webhook_post(*, url: str, body: bytes, secret: str, delivery_id: int) -> int:
    """POST `body` signed with `secret`; returns the 2xx status answered.

    A non-2xx answer raises HTTPError (an OSError carrying the status as `code`): 3xx by
    _NoRedirect, 4xx/5xx by urllib; a network failure raises its OSError.
    """
    timestamp = int(time.time())  # per attempt: a retry sent minutes later is still fresh
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json",
        "X-Pulselytics-Timestamp": str(timestamp),
        "X-Pulselytics-Signature": webhook_signature(body, timestamp=timestamp, secret=secret),
        "X-Pulselytics-Delivery": str(delivery_id),
    })
    with _webhook_opener.open(request, timeout=settings.ALERT_WEBHOOK_TIMEOUT_SECONDS) as answer:
        answer.read()
        return answer.status


def tasks_publish(task, delivery_ids: Iterable[int]) -> int:
    """Publish one `task` message per delivery id; returns how many were queued, never raises.

    A fresh connection that tries the broker once, with short socket timeouts: Celery's
    own publish path retries the connection for seconds (broker_connection_timeout plus its
    back-off) before giving up, which would hold up a prediction request while the broker
    is down. What was not queued stays pending for the resend tasks.
    """
    delivery_ids = list(delivery_ids)
    if not delivery_ids:
        return 0
    queued = 0
    try:
        with task.app.connection_for_write(
                connect_timeout=PUBLISH_TIMEOUT_SECONDS,
                transport_options={"socket_connect_timeout": PUBLISH_TIMEOUT_SECONDS,
                                   "socket_timeout": PUBLISH_TIMEOUT_SECONDS},
        ) as connection:
            connection.ensure_connection(max_retries=0)
            for delivery_id in delivery_ids:
                task.apply_async((delivery_id,), connection=connection, retry=False)
                queued += 1
    except Exception:  # any broker failure: the delivery stays pending for the resend task
        logger.warning("deliveries not queued; left pending for the resend task",
                       exc_info=True, extra={"task": task.name,
                                             "delivery_ids": delivery_ids[queued:]})
    return queued


def attempt_due(created_at: datetime, attempts: int) -> datetime:
    """When attempt `attempts + 1` is expected at the latest: every earlier attempt timed
    out and waited its full back-off (see `retry_in`)."""
    backoff = settings.ALERT_DELIVERY_RETRY_BACKOFF_SECONDS * (2 ** attempts - 1)
    return created_at + timedelta(
        seconds=backoff + attempts * settings.ALERT_WEBHOOK_TIMEOUT_SECONDS)


def overdue_ids(rows: Iterable[tuple[int, datetime, int]], *, now: datetime) -> list[int]:
    """The ids, of pending (id, created_at, attempts) rows, whose next attempt is overdue by
    RESEND_GRACE: never queued, or their retry was lost."""
    return [pk for pk, created_at, attempts in rows
            if attempt_due(created_at, attempts) + RESEND_GRACE <= now]


def attempt_record(delivery, *, error: str, now: datetime) -> None:
    """Count one attempt on a locked delivery row: sent, or failed for good once
    ALERT_DELIVERY_MAX_RETRIES retries are spent, else still pending. The caller saves it."""
    delivery.attempts += 1
    delivery.last_error = error
    if not error:
        delivery.state, delivery.sent_at = SENT, now
    elif delivery.attempts > settings.ALERT_DELIVERY_MAX_RETRIES:
        delivery.state = FAILED


def attempt_report(delivery, *, error: str, what: str, retry_error: type[DeliveryRetryError],
                   extra: dict) -> None:
    """Log the attempt recorded (after its commit); raise `retry_error` when another is due.

    The attempt budget lives on the row, not in Celery's retry count, so a message queued
    again by a resend task cannot exceed it.
    """
    if not error:
        logger.info("%s sent", what, extra=extra)
    elif delivery.state == FAILED:
        logger.error("%s failed for good: %s", what, error, extra=extra)
    else:
        logger.warning("%s attempt failed: %s", what, error, extra=extra)
        raise retry_error(error, retry_in=retry_in(delivery.attempts))


def retry_in(attempts: int) -> float:
    """Back-off before the next attempt: BACKOFF * 2 ** (attempts so far - 1)."""
    return settings.ALERT_DELIVERY_RETRY_BACKOFF_SECONDS * 2 ** (attempts - 1)
