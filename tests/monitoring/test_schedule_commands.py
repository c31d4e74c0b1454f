"""`manage.py schedules`: the Periodic tasks admin's list actions from the command line, through
the same services (docs/operations.md#schedules-and-background-work)."""

import json

import pytest
from django.core.management import CommandError
from django_celery_beat.models import PeriodicTask

from monitoring.models import ScheduleChange
from tests.commands import command_output

pytestmark = pytest.mark.django_db

DRIFT_CHECK = "monitoring: drift check"


def run(*args) -> str:
    return command_output("schedules", *args)


def test_list_json_names_every_periodic_task():
    listed = json.loads(run("list", "--json"))

    assert [task["name"] for task in listed] == sorted(
        PeriodicTask.objects.values_list("name", flat=True))
    assert {task["enabled"] for task in listed} == {True}


def test_deployer_disables_a_task_and_the_change_is_sealed(deployer):
    output = run("disable", DRIFT_CHECK, "--user", deployer.username)

    assert "1 task(s) disabled by" in output
    assert PeriodicTask.objects.get(name=DRIFT_CHECK).enabled is False
    row = ScheduleChange.objects.get()
    assert (row.actor, row.changes) == (deployer, {"enabled": [True, False]})


def test_reviewer_may_not_disable_a_task(reviewer):
    with pytest.raises(CommandError, match="permission_denied"):
        run("disable", DRIFT_CHECK, "--user", reviewer.username)

    assert PeriodicTask.objects.get(name=DRIFT_CHECK).enabled is True
    assert not ScheduleChange.objects.exists()


def test_an_unknown_task_name_changes_nothing(deployer):
    with pytest.raises(CommandError, match="no periodic task named 'no such task'"):
        run("disable", DRIFT_CHECK, "no such task", "--user", deployer.username)

    assert PeriodicTask.objects.get(name=DRIFT_CHECK).enabled is True


def test_run_sends_the_task_to_the_workers(deployer):
    # The suite's Celery runs tasks eagerly: "sent" means the drift check ran here, once.
    output = run("run", DRIFT_CHECK, "--user", deployer.username)

    assert f"sent {DRIFT_CHECK} (monitoring.tasks.drift_check_task, id " in output
    assert not ScheduleChange.objects.exists()  # running is not a change to the schedule


def test_reviewer_may_not_run_a_task(reviewer):
    with pytest.raises(CommandError, match="permission_denied"):
        run("run", DRIFT_CHECK, "--user", reviewer.username)
