"""Celery tasks of the registry: thin shells over its services (scheduled in
monitoring/schedules.py). The training task kept its old name `mlregistry.tasks.*` but
lives in training/tasks.py."""

from celery import shared_task

from mlregistry import anchors, registration


@shared_task(acks_late=True)
def artifact_cleanup_task() -> int:
    # Idempotent: a second run finds nothing more to delete.
    return len(registration.artifact_cleanup().versions)


@shared_task(acks_late=True)
def audit_anchor_task() -> str:
    # Idempotent: the day's anchor is written once.
    return anchors.audit_anchor_write().name
