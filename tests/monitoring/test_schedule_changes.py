"""Who may change the schedules, and the audit chain of every change a person makes to them
(docs/monitoring.md#schedules)."""

import importlib
from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import ModelEntry

from mlregistry import anchors, artifacts, audit
from monitoring import schedules
from monitoring.models import ScheduleChange
from pulselytics.celery import app

pytestmark = pytest.mark.django_db

DRIFT_CHECK = "monitoring: drift check"


def drift_check() -> PeriodicTask:
    return PeriodicTask.objects.get(name=DRIFT_CHECK)


def change_url(task: PeriodicTask) -> str:
    return reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form_data(page) -> dict:
    """What the change form posts back unchanged."""
    form = page.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is not None and value is not False:
            data[name] = "on" if value is True else value
    return data


def disabled_through_the_admin(client: Client) -> object:
    data = form_data(client.get(change_url(drift_check())))
    del data["enabled"]
    return client.post(change_url(drift_check()), data)


def test_reviewer_may_not_change_a_periodic_task(reviewer):
    # A reviewer's change page is read-only, so there is no form to post back: post the
    # one field that would disable the task.
    response = logged_in(reviewer).post(change_url(drift_check()),
                                        {"name": DRIFT_CHECK, "task": drift_check().task})

    assert response.status_code == 403
    assert drift_check().enabled is True
    assert not ScheduleChange.objects.exists()


def test_reviewer_may_not_add_a_periodic_task(reviewer):
    assert logged_in(reviewer).get(
        reverse("admin:django_celery_beat_periodictask_add")).status_code == 403


def test_reviewer_may_not_disable_tasks_from_the_list(reviewer):
    response = logged_in(reviewer).post(
        reverse("admin:django_celery_beat_periodictask_changelist"),
        {"action": "disable_tasks", "_selected_action": [drift_check().pk]})

    assert response.status_code in (200, 302)
    assert drift_check().enabled is True
    assert not ScheduleChange.objects.exists()


def test_deployer_disables_a_task_in_the_admin_and_one_sealed_row_records_it(deployer):
    response = disabled_through_the_admin(logged_in(deployer))

    assert response.status_code == 302
    assert drift_check().enabled is False
    row = ScheduleChange.objects.get()
    assert (row.actor_id, row.action, row.object_type, row.object_id) == (
        deployer.pk, "changed", "periodictask", str(drift_check().pk))
    assert row.changes == {"enabled": [True, False]}
    assert (row.sequence, row.previous_sha256) == (1, "")
    assert schedules.schedule_changes_verify() is None


def test_deployer_disabling_tasks_from_the_list_writes_one_row_per_task(deployer):
    tasks = list(PeriodicTask.objects.order_by("pk")[:2])

    logged_in(deployer).post(reverse("admin:django_celery_beat_periodictask_changelist"),
                             {"action": "disable_tasks",
                              "_selected_action": [task.pk for task in tasks]})

    rows = ScheduleChange.objects.order_by("sequence")
    assert [(row.object_id, row.changes) for row in rows] == [
        (str(task.pk), {"enabled": [True, False]}) for task in tasks]
    assert rows[1].previous_sha256 == rows[0].row_sha256


def test_beat_bookkeeping_writes_no_audit_row(deployer):
    disabled_through_the_admin(logged_in(deployer))
    slo_check = PeriodicTask.objects.get(name="monitoring: SLO check")
    runs = slo_check.total_run_count

    next(ModelEntry(slo_check, app=app)).save()  # what beat does after sending the task

    assert PeriodicTask.objects.get(pk=slo_check.pk).total_run_count == runs + 1
    assert ScheduleChange.objects.count() == 1


def test_a_changed_row_breaks_the_chain(deployer):
    disabled_through_the_admin(logged_in(deployer))
    ScheduleChange.objects.update(changes={"enabled": [True, True]})

    assert schedules.schedule_changes_verify() == ScheduleChange.objects.get()


def test_deployer_adding_a_crontab_records_its_fields_time_zone_included(deployer):
    crontab = CrontabSchedule(minute="5", hour="3", timezone="Europe/Zurich")

    row = schedules.schedule_save(instance=crontab, user=deployer)

    assert (row.action, row.object_type, row.object_id) == ("added", "crontabschedule",
                                                            str(crontab.pk))
    assert row.changes["timezone"] == [None, "Europe/Zurich"]
    assert row.changes["hour"] == [None, "3"]


def test_deleting_a_schedule_records_the_tasks_it_takes_along(django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    interval = IntervalSchedule.objects.create(every=17, period="seconds")
    task = PeriodicTask.objects.create(name="every 17 s", task="monitoring.tasks.slo_check_task",
                                       interval=interval)

    ids = (str(task.pk), str(interval.pk))

    rows = schedules.schedule_delete(instance=interval, user=root)

    assert [(row.object_type, row.object_id, row.action) for row in rows] == [
        ("periodictask", ids[0], "deleted"), ("intervalschedule", ids[1], "deleted")]
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()


def test_migration_takes_schedule_writes_away_from_reviewers():
    migration = importlib.import_module("monitoring.migrations.0010_schedule_change_permissions")
    reviewers = Group.objects.get(name="Reviewers")
    reviewers.permissions.add(Permission.objects.get(
        content_type__app_label="django_celery_beat", codename="change_periodictask"))

    # The migrations' own registry: grant() flips models_module on every app it is given.
    migration.grant(MigrationLoader(connection).project_state().apps, None)

    assert not reviewers.permissions.filter(content_type__app_label="django_celery_beat") \
        .exclude(codename__startswith="view_").exists()
    assert Group.objects.get(name="Deployers").permissions.filter(
        codename="change_periodictask").exists()


def verify_audit(*args) -> str:
    out = StringIO()
    call_command("verify_audit", *args, stdout=out)
    return out.getvalue()


def two_changes(deployer) -> list[ScheduleChange]:
    client = logged_in(deployer)
    disabled_through_the_admin(client)
    data = form_data(client.get(change_url(drift_check())))
    data["enabled"] = "on"
    client.post(change_url(drift_check()), data)
    return list(ScheduleChange.objects.order_by("sequence"))


def test_verify_audit_walks_the_schedule_changes_chain_too(deployer):
    two_changes(deployer)

    assert "schedule changes: OK (2 rows)" in verify_audit()


def test_verify_audit_names_an_edited_schedule_change(deployer):
    first, _ = two_changes(deployer)
    ScheduleChange.objects.filter(pk=first.pk).update(changes={"enabled": [True, True]})

    with pytest.raises(CommandError, match=r"audit trail of schedule changes broken at row "
                                           rf"id={first.pk} \(sequence 1\): content does not"):
        verify_audit()


def test_verify_audit_names_the_gap_of_a_removed_schedule_change(deployer):
    first, second = two_changes(deployer)
    ScheduleChange.objects.filter(pk=first.pk).delete()

    with pytest.raises(CommandError, match=rf"schedule changes broken at row id={second.pk} "
                                           r"\(sequence 2\): sequence 2 where 1 was expected"):
        verify_audit()


def test_the_anchor_records_the_schedule_chain_and_proves_a_resealed_rewrite(deployer,
                                                                              tmp_path):
    first, second = two_changes(deployer)
    written = anchors.audit_anchor_write()
    copy = tmp_path / "anchor.json"
    with artifacts.artifact_storage().open(written.name, "rb") as handle:
        copy.write_bytes(handle.read())
    # A key holder rewrites the first change and seals the chain again: it still verifies.
    _, key = audit.current_key()
    previous = ""
    for row in (first, second):
        row.changes = {"enabled": [True, True]} if row.pk == first.pk else row.changes
        row.previous_sha256 = previous
        row.row_sha256 = audit.content_seal(schedules.schedule_change_content(row), key)
        ScheduleChange.objects.filter(pk=row.pk).update(
            changes=row.changes, previous_sha256=previous, row_sha256=row.row_sha256)
        previous = row.row_sha256
    assert "schedule changes: OK (2 rows)" in verify_audit()

    with pytest.raises(CommandError, match="audit trail of schedule changes differs from the "
                                           "anchor"):
        verify_audit("--anchor", str(copy))
    assert anchors.anchor_read(copy.read_bytes())["chains"]["schedule changes"]["rows"] == 2
