"""The one list of periodic tasks, and the audited changes people make to them
(docs/monitoring.md#schedules).

Installed as django-celery-beat `PeriodicTask` rows, upserted by name, by data migrations;
operators change intervals or disable a row in the admin, and
an upsert never overrides what they changed. Each such change (a periodic task or a
schedule added, changed, enabled, disabled or deleted) goes through `schedule_save` or
`schedule_delete` and writes one sealed `ScheduleChange` row in the same transaction.
"""

import json
from dataclasses import dataclass
from datetime import UTC

from celery import current_app
from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from core.errors import NotFoundError
from core.permissions import require_permission
from mlregistry import audit
from mlregistry.anchors import AuditChain
from mlregistry.selectors import AuditResult
from monitoring.models import ScheduleChange

# The chain's name in verify_audit's output and in the daily anchor.
SCHEDULE_CHAIN = "schedule changes"


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
             "degrades the metric. Verdict of every running shadow test."),
    Schedule("monitoring: canary guard", "monitoring.tasks.canary_check_task", 60,
             "Every running canary against the champion: rolled back at the first breach "
             "(SLO, error rate, drift), promoted once healthy through its bake time."),
    Schedule("monitoring: retraining check", "monitoring.tasks.retraining_check_task", 24 * HOUR,
             "Queues a retrain for models that are old, have new labels or open alerts."),
    Schedule("predictions: log retention", "monitoring.tasks.prediction_log_purge_task",
             24 * HOUR, "Deletes prediction log rows older than PREDICTION_LOG_RETENTION_DAYS."),
    Schedule("monitoring: resend pending alert deliveries",
             "monitoring.tasks.alert_deliveries_resend_task", 5 * 60,
             "Queues again alert deliveries that are still pending well after their next "
             "attempt was due (the broker was down when they were raised, or a retry was lost)."),
    Schedule("monitoring: resend pending registry events",
             "monitoring.tasks.registry_events_resend_task", 5 * 60,
             "Queues again registry events that are still pending well after their next "
             "attempt was due (the broker was down when their row committed, or a retry was "
             "lost)."),
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


# --- changes by people, audited -----------------------------------------------------------

# Written by beat on every run (and the change stamp by every save): bookkeeping, not a
# person's decision, so never part of a recorded change.
BOOKKEEPING_FIELDS = {"last_run_at", "total_run_count", "date_changed"}


class _SnapshotEncoder(DjangoJSONEncoder):
    """Field values as JSON; what JSON has no type for (a crontab's time zone) as text."""

    def default(self, o):
        try:
            return super().default(o)
        except TypeError:
            return str(o)


def _snapshot(instance: models.Model) -> dict:
    values = {field.name: field.value_from_object(instance)
              for field in instance._meta.concrete_fields
              if field.name not in BOOKKEEPING_FIELDS}
    return json.loads(json.dumps(values, cls=_SnapshotEncoder))


def _require(user: AbstractBaseUser, verb: str, instance: models.Model) -> None:
    opts = instance._meta
    require_permission(user, f"{opts.app_label}.{verb}_{opts.model_name}",
                       f"{verb} {opts.verbose_name_plural}")


def schedule_change_content(row: ScheduleChange) -> dict:
    """What a row's seal covers."""
    return {"sequence": row.sequence, "actor_id": row.actor_id,
            "created_at": row.created_at.astimezone(UTC).isoformat(), "action": row.action,
            "object_type": row.object_type, "object_id": row.object_id,
            "object_repr": row.object_repr, "changes": row.changes,
            "previous_sha256": row.previous_sha256, "key_id": row.key_id}


def _record(*, instance: models.Model, object_id, user: AbstractBaseUser, action: str,
            changes: dict) -> ScheduleChange:
    # The head row's lock serialises appends; the unique sequence refuses a fork otherwise.
    head = (ScheduleChange.objects.select_for_update().order_by("-sequence")
            .values("sequence", "row_sha256").first())
    key_id, key = audit.current_key()
    row = ScheduleChange(
        sequence=head["sequence"] + 1 if head else 1, actor=user, created_at=timezone.now(),
        action=action, object_type=instance._meta.model_name, object_id=str(object_id),
        object_repr=str(instance)[:255], changes=changes,
        previous_sha256=head["row_sha256"] if head else "", key_id=key_id)
    row.row_sha256 = audit.content_seal(schedule_change_content(row), key)
    row.save(force_insert=True)
    return row


def schedule_save(*, instance: models.Model, user: AbstractBaseUser) -> ScheduleChange | None:
    """Save a periodic task or schedule (django-celery-beat's rows) as `user` added or changed
    it, and record what changed; None when only beat's bookkeeping differs."""
    with transaction.atomic():
        stored = (type(instance)._default_manager.select_for_update().filter(pk=instance.pk)
                  .first() if instance.pk else None)
        _require(user, "change" if stored else "add", instance)
        before = _snapshot(stored) if stored else {}
        instance.save()
        after = _snapshot(instance)
        changes = {name: [before.get(name), value] for name, value in after.items()
                   if before.get(name) != value}
        if not changes:
            return None
        return _record(instance=instance, object_id=instance.pk, user=user, changes=changes,
                       action=ScheduleChange.Action.CHANGED if stored
                       else ScheduleChange.Action.ADDED)


def schedule_delete(*, instance: models.Model, user: AbstractBaseUser) -> list[ScheduleChange]:
    """Delete a periodic task or schedule as `user`; a schedule takes the periodic tasks that
    use it along (as the database does), each recorded first."""
    with transaction.atomic():
        _require(user, "delete", instance)
        links = [field.name for field in PeriodicTask._meta.concrete_fields
                 if field.is_relation and field.related_model is type(instance)]
        rows = []
        for name in links:
            for task in PeriodicTask.objects.filter(**{name: instance}).order_by("pk"):
                rows += schedule_delete(instance=task, user=user)
        object_id = instance.pk
        changes = {name: [value, None] for name, value in _snapshot(instance).items()
                   if value is not None}
        instance.delete()
        rows.append(_record(instance=instance, object_id=object_id, user=user, changes=changes,
                            action=ScheduleChange.Action.DELETED))
    return rows


def periodic_tasks_enabled_set(*, tasks, user: AbstractBaseUser,
                               enabled: bool | None) -> list[ScheduleChange]:
    """Enable, disable or (`enabled=None`) toggle periodic tasks (the admin's list actions),
    one row each, instead of beat's own bulk update, which nobody would have audited."""
    with transaction.atomic():
        rows = []
        # Locked by key: the admin's queryset joins the nullable schedules, which PostgreSQL
        # cannot lock.
        locked = PeriodicTask.objects.select_for_update().filter(pk__in=tasks.values("pk"))
        for task in locked.order_by("pk"):
            task.enabled = not task.enabled if enabled is None else enabled
            row = schedule_save(instance=task, user=user)
            if row is not None:
                rows.append(row)
    return rows


def periodic_tasks_get(*, names: list[str]) -> list[PeriodicTask]:
    """The periodic tasks of these names, in the order given; NotFoundError names the first
    unknown one."""
    found = PeriodicTask.objects.in_bulk(names, field_name="name")
    for name in names:
        if name not in found:
            raise NotFoundError(f"no periodic task named {name!r} (see `schedules list`)")
    return [found[name] for name in names]


def periodic_tasks_run(*, tasks: list[PeriodicTask], user: AbstractBaseUser) -> list[str]:
    """Send periodic tasks to the workers now, as beat would at their time (the admin's "Run
    selected tasks"); the Celery task ids. Running is not a change to the schedule, so it
    writes no ScheduleChange row; it needs the change permission all the same."""
    for task in tasks:
        _require(user, "change", task)
    current_app.loader.import_default_modules()
    registered = [current_app.tasks.get(task.task) for task in tasks]
    for task, celery_task in zip(tasks, registered, strict=True):
        if celery_task is None:
            raise NotFoundError(f"periodic task {task.name!r} runs {task.task!r}, which no "
                                "installed app defines")
    return [celery_task.apply_async(args=json.loads(task.args or "[]"),
                                    kwargs=json.loads(task.kwargs or "{}"), queue=task.queue,
                                    headers={"periodic_task_name": task.name}).id
            for task, celery_task in zip(tasks, registered, strict=True)]


def _first_break() -> tuple[ScheduleChange, str] | None:
    previous, count = "", 0
    for count, row in enumerate(ScheduleChange.objects.order_by("sequence").iterator(), start=1):
        if row.sequence != count:
            return row, f"sequence {row.sequence} where {count} was expected (a row is missing)"
        if row.previous_sha256 != previous:
            return row, "previous_sha256 does not match the previous row"
        if not audit.seal_valid(schedule_change_content(row), row.row_sha256):
            return row, ("content does not match its seal (the row was edited, or was not "
                         f"sealed with audit key {row.key_id or '(none)'})")
        previous = row.row_sha256
    return None


def schedule_changes_verify() -> ScheduleChange | None:
    """The first row (oldest first) whose seal, link to the previous row or place in the
    sequence does not hold, or None when the whole chain verifies."""
    broken = _first_break()
    return broken[0] if broken else None


def schedule_chain_audit() -> AuditResult:
    """The chain as verify_audit reports every chain (mlregistry.anchors.AuditChain)."""
    rows = ScheduleChange.objects.count()
    broken = _first_break()
    if broken is None:
        return AuditResult(model=SCHEDULE_CHAIN, rows=rows)
    row, problem = broken
    return AuditResult(model=SCHEDULE_CHAIN, rows=rows, broken_row_id=row.pk,
                       broken_sequence=row.sequence, problem=problem)


def schedule_chain_head() -> dict | None:
    last = (ScheduleChange.objects.order_by("-sequence")
            .values("sequence", "row_sha256", "created_at").first())
    if last is None:
        return None
    return {"rows": last["sequence"], "head": last["row_sha256"],
            "head_at": last["created_at"].astimezone(UTC).isoformat()}


def schedule_chain_row_seal(sequence: int) -> str | None:
    return (ScheduleChange.objects.filter(sequence=sequence)
            .values_list("row_sha256", flat=True).first())


SCHEDULE_CHAIN_AUDIT = AuditChain(name=SCHEDULE_CHAIN, verify=schedule_chain_audit,
                                  head=schedule_chain_head, row_seal=schedule_chain_row_seal)
