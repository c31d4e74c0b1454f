"""Celery tasks: thin shells over the monitoring services (scheduled in schedules.py).

Every task is idempotent and acknowledged late: a redelivered message after a worker died
runs the check again, which writes a new report and never a half-made one.
"""

from celery import shared_task

from monitoring import (
    ab,
    alerts,
    anomaly,
    canary,
    drift,
    estimation,
    fairness,
    performance,
    registry_events,
    retraining,
    review_requests,
    shadow,
    slo,
)
from predictions import services as prediction_services


@shared_task(acks_late=True)
def drift_check_task() -> int:
    return len(drift.drift_check_all())


@shared_task(acks_late=True)
def slo_check_task() -> int:
    return len(slo.slo_check_all())


@shared_task(acks_late=True)
def performance_check_task() -> int:
    # An anomaly model has no labels to judge it by: its live health is its flagged share.
    # Estimated performance needs no labels either (docs/monitoring.md#estimated-performance).
    return (len(performance.performance_evaluate_all()) + len(fairness.fairness_audit_all())
            + len(anomaly.anomaly_rate_check_all())
            + len(estimation.estimation_evaluate_all()))


@shared_task(acks_late=True)
def ab_evaluate_task() -> int:
    # Shadow tests are judged with A/B tests: the same verdicts, on paired answers.
    return len(ab.ab_evaluate_all()) + len(shadow.shadow_evaluate_all())


@shared_task(acks_late=True, name="monitoring.tasks.canary_check_task")
def canary_check_task() -> int:
    return len(canary.canary_check_all())


@shared_task(acks_late=True)
def retraining_check_task() -> int:
    return len(retraining.retraining_check_all())


@shared_task(acks_late=True)
def prediction_log_purge_task() -> int:
    return prediction_services.prediction_log_purge()


# The attempt budget (ALERT_DELIVERY_MAX_RETRIES) is kept on the delivery row, not in
# Celery's retry count, so a message queued again by the resend task cannot exceed it.
@shared_task(bind=True, acks_late=True, max_retries=None)
def alert_delivery_send_task(self, delivery_id: int) -> str:
    """Send one alert delivery; a failure is retried with exponential back-off."""
    try:
        return alerts.alert_delivery_send(delivery_id=delivery_id)
    except alerts.AlertDeliveryError as exc:
        raise self.retry(exc=exc, countdown=exc.retry_in) from exc


@shared_task(acks_late=True, name="monitoring.tasks.review_request_send_task")
def review_request_send_task(transition_id: int) -> int:
    return review_requests.version_review_request(transition_id=transition_id)


@shared_task(acks_late=True)
def alert_deliveries_resend_task() -> int:
    return alerts.alert_deliveries_resend()


# Named for good: queued messages find the task by this name. The attempt budget is kept on
# the delivery row, as for alert deliveries.
@shared_task(bind=True, acks_late=True, max_retries=None,
             name="monitoring.tasks.registry_event_send_task")
def registry_event_send_task(self, delivery_id: int) -> str:
    """Send one registry event; a failure is retried with exponential back-off."""
    try:
        return registry_events.registry_event_send(delivery_id=delivery_id)
    except registry_events.RegistryEventDeliveryError as exc:
        raise self.retry(exc=exc, countdown=exc.retry_in) from exc


@shared_task(acks_late=True, name="monitoring.tasks.registry_events_resend_task")
def registry_events_resend_task() -> int:
    return registry_events.registry_events_resend()
