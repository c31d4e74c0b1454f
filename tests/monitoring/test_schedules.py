"""Schedules (docs/monitoring.md#schedules): django-celery-beat rows from monitoring/schedules.py,
and a real beat + worker on Redis running a due check with no call from the test."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from monitoring.models import DriftReport
from monitoring.schedules import SCHEDULES, schedules_install
from pulselytics.celery import app
from tests.celery_processes import celery_beat, celery_worker, wait_for
from tests.factories import register_profiled_version

DRIFT_TASK = "monitoring.tasks.drift_check_task"


def _install() -> int:
    return schedules_install(periodic_task_model=PeriodicTask, interval_model=IntervalSchedule)


@pytest.mark.django_db
def test_migrations_install_every_schedule_with_its_interval():
    rows = {task.name: task for task in PeriodicTask.objects.select_related("interval")}
    for schedule in SCHEDULES:
        row = rows[schedule.name]
        assert (row.task, row.enabled) == (schedule.task, True)
        assert row.interval.every * {"seconds": 1, "minutes": 60, "hours": 3600,
                                     "days": 86400}[row.interval.period] == schedule.every_seconds


def test_every_scheduled_task_is_registered_with_celery():
    app.loader.import_default_modules()
    assert {schedule.task for schedule in SCHEDULES} <= set(app.tasks)


def test_schedule_intervals_follow_the_spec():
    every = {schedule.task: schedule.every_seconds for schedule in SCHEDULES}
    assert every[DRIFT_TASK] == 3600
    assert every["monitoring.tasks.slo_check_task"] == 300
    assert every["monitoring.tasks.ab_evaluate_task"] == 3600
    assert every["monitoring.tasks.retraining_check_task"] == 86400
    assert every["monitoring.tasks.prediction_log_purge_task"] == 86400


@pytest.mark.django_db
def test_install_leaves_operator_edits_alone():
    PeriodicTask.objects.filter(task=DRIFT_TASK).update(enabled=False)
    PeriodicTask.objects.filter(task="monitoring.tasks.slo_check_task").delete()

    assert _install() == 1  # only the deleted row comes back

    assert PeriodicTask.objects.get(task=DRIFT_TASK).enabled is False
    assert PeriodicTask.objects.filter(task="monitoring.tasks.slo_check_task").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("groups_restored_after_module", "governance_groups")
def test_due_periodic_task_runs_the_drift_check_on_real_beat_and_worker(
    redis_server, artifact_dir, data_scientist, reviewer, deployer,
):
    version = register_profiled_version(user=data_scientist, reviewer=reviewer,
                                        deployer=deployer, rows=200)
    _install()  # a transactional test starts from flushed tables
    # Only the drift check is due (its last run two hours ago); the rest are switched off
    # so the worker does nothing else.
    PeriodicTask.objects.exclude(task=DRIFT_TASK).update(enabled=False)
    PeriodicTask.objects.filter(task=DRIFT_TASK).update(
        last_run_at=timezone.now() - timedelta(hours=2))

    with celery_worker(redis_server, artifact_dir), celery_beat(redis_server, artifact_dir):
        report = wait_for(lambda: DriftReport.objects.filter(model_version=version).first(),
                          timeout=90, what="a DriftReport written by the scheduled check")

    assert (report.model_name, report.version) == (version.model.name, version.version)
    # No predictions were logged: the check ran and said so rather than report drift.
    assert report.status == DriftReport.Status.INSUFFICIENT_DATA
    assert PeriodicTask.objects.get(task=DRIFT_TASK).total_run_count >= 1
