"""The one list of periodic tasks (docs/monitoring.md#schedules).

Installed as django-celery-beat `PeriodicTask` rows, upserted by name, by data migrations;
operators change intervals or disable a row in the admin, and
an upsert never overrides what they changed.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    every_seconds: int
    description: str


HOUR = 3600
SCHEDULES = [
    Schedule("monitoring: drift check", "monitoring.tasks.drift_check_task", HOUR,
             "Drift of every live version's last window against its reference profile."),
    Schedule("monitoring: SLO check", "monitoring.tasks.slo_check_task", 5 * 60,
             "p95 latency and error rate of every model over the SLO window."),
    Schedule("monitoring: live performance and fairness", "monitoring.tasks.performance_check_task",
             HOUR, "Live metrics and fairness of every live version from outcome feedback; "
             "anomaly spikes of anomaly models."),
    Schedule("monitoring: A/B evaluation", "monitoring.tasks.ab_evaluate_task", HOUR,
             "Verdict of every running A/B test; stops a challenger that breaks the SLO or "
             "degrades the metric."),
    Schedule("monitoring: retraining check", "monitoring.tasks.retraining_check_task", 24 * HOUR,
             "Queues a retrain for models that are old, have new labels or open alerts."),
    Schedule("predictions: log retention", "monitoring.tasks.prediction_log_purge_task",
             24 * HOUR, "Deletes prediction log rows older than PREDICTION_LOG_RETENTION_DAYS."),
    Schedule("monitoring: resend pending alert deliveries",
             "monitoring.tasks.alert_deliveries_resend_task", 5 * 60,
             "Queues again alert deliveries that are still pending well after their next "
             "attempt was due (the broker was down when they were raised, or a retry was lost)."),
    Schedule("registry: artifact clean-up", "mlregistry.tasks.artifact_cleanup_task", 24 * HOUR,
             "Deletes the artifact files no kept version needs (every version not archived and "
             "the ARTIFACT_KEEP_PRIOR_PRODUCTION latest former champions stay); one audit row "
             "per version cleaned."),
    Schedule("registry: audit anchor", "mlregistry.tasks.audit_anchor_task", 24 * HOUR,
             "Writes the day's signed anchor of every audit chain's head through the "
             "artifact storage (never replaced); verify_audit --anchor checks against it."),
]


def schedules_install(*, periodic_task_model, interval_model) -> int:
    """Create the rows that are missing; returns how many were created.

    Takes the models as arguments so a migration can pass its historical ones.
    """
    created = 0
    for schedule in SCHEDULES:
        if periodic_task_model.objects.filter(name=schedule.name).exists():
            continue  # an operator may have edited it: leave it alone
        interval, _ = interval_model.objects.get_or_create(every=schedule.every_seconds,
                                                           period="seconds")
        periodic_task_model.objects.create(name=schedule.name, task=schedule.task,
                                           interval=interval, description=schedule.description,
                                           enabled=True)
        created += 1
    return created


def schedule_install_operation(name: str):
    """The data migration that installs a new schedule `name` (with any other missing one)
    and, reversed, removes it. Each migration that adds a schedule uses this."""
    from django.db import migrations  # noqa: PLC0415 - only migrations need it

    def install(apps, schema_editor):
        schedules_install(
            periodic_task_model=apps.get_model("django_celery_beat", "PeriodicTask"),
            interval_model=apps.get_model("django_celery_beat", "IntervalSchedule"))

    def uninstall(apps, schema_editor):
        apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=name).delete()

    return migrations.RunPython(install, uninstall)
