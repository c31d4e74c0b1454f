"""Celery tasks: thin shells that take ids and call a service."""

from celery import shared_task

from training import services as training_services


# Named as when it lived in mlregistry/tasks.py: messages already queued keep finding it.
@shared_task(name="mlregistry.tasks.training_job_run_task", acks_late=True)
def training_job_run_task(job_id: int) -> str:
    # Idempotent: a redelivered message finds the job finished, or running with a live
    # heartbeat, and does nothing; it takes over a running job whose worker died.
    return training_services.training_job_run(job_id=job_id).state
