"""Monitoring's answers to what the layers below it report (connected in apps.ready())."""

import logging

from django.dispatch import receiver

from mlregistry.signals import transition_sealed
from monitoring import registry_events, retraining
from monitoring.alerts import alert_raise
from monitoring.models import Alert
from predictions.signals import model_load_refused
from training.signals import training_job_finished

logger = logging.getLogger("pulselytics.monitoring")


@receiver(training_job_finished, dispatch_uid="monitoring.retrain_followup")
def retrain_followup(sender, *, job, **kwargs) -> None:
    # Only retrains on feedback are monitoring's: it queued them.
    if job.include_feedback:
        retraining.retrain_job_finished(job=job)


@receiver(model_load_refused, dispatch_uid="monitoring.integrity_alert")
def integrity_alert(sender, *, model_name: str, version: str, error, **kwargs) -> None:
    alert_raise(kind=Alert.Kind.INTEGRITY, severity=Alert.Severity.CRITICAL,
                model_name=model_name, version=version,
                message=f"{model_name} {version} is not served: {error.message}",
                payload={"code": error.code, **error.details})


@receiver(transition_sealed, dispatch_uid="monitoring.registry_event")
def registry_event(sender, *, transition_id: int, **kwargs) -> None:
    registry_events.registry_events_create(transition_id=transition_id)


@receiver(transition_sealed, dispatch_uid="monitoring.review_request")
def review_request(sender, *, transition_id: int, **kwargs) -> None:
    # Sent by a worker: the request that registered or withdrew never waits for a mail
    # server. A broker that is down costs this e-mail, not the request (logged). Imported
    # here: the tasks bring every monitoring service, and with them the model libraries that
    # start-up does not load (tests/test_startup_imports.py).
    from monitoring.tasks import review_request_send_task  # noqa: PLC0415

    try:
        review_request_send_task.apply_async((transition_id,), retry=False)
    except Exception:
        logger.warning("review request not queued: the reviewers are not e-mailed about "
                       "audit row %s", transition_id, exc_info=True)
