"""Separation of duties in headless Chromium at 1280 px (docs/registry.md#four-eyes,
docs/monitoring.md#schedules): the approver of a version is offered no deploy and a forced
one is refused with the reason; a reviewer can look at the schedules but not change them."""

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from mlregistry import services
from mlregistry.models import MLModelVersion, Status
from monitoring.schedules import schedules_install
from tests.factories import UserFactory, register_version

pytestmark = [pytest.mark.chromium, pytest.mark.postgres,
              pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("groups_restored_after_module", "governance_groups")]


@pytest.fixture
def approver_and_deployer(governance_groups):
    return UserFactory(username="rex", groups=["Reviewers", "Deployers"])


def test_approver_is_offered_no_deploy_and_a_forced_one_says_why(
        narrow, settings, people, champion, approver_and_deployer):
    settings.REQUIRE_SEPARATE_DEPLOYER = True
    version = services.model_version_approve(
        version=register_version(user=people["user"], slope=3.0), user=approver_and_deployer,
        notes="checked")
    change_path = f"/admin/mlregistry/mlmodelversion/{version.pk}/change/"
    narrow.log_in(approver_and_deployer)

    narrow.open(change_path)
    offered = {button.get_attribute("id") for button in narrow.find_all("a.version-action")}
    narrow.open(f"/admin/mlregistry/mlmodelversion/{version.pk}/deploy/")

    assert offered.isdisjoint({"action-deploy", "action-ab-test", "action-shadow-test"})
    assert "action-withdraw" in offered  # the page and the reviewer's own actions are there
    assert narrow.driver.current_url.endswith(change_path)
    assert narrow.messages("error") == [  # (the admin's style capitalises a message)
        f"Rex approved {version} and may not deploy it (separation of duties: another "
        "deployer must)"]
    assert MLModelVersion.objects.get(pk=version.pk).status == Status.STAGING


def test_reviewer_sees_a_periodic_task_but_cannot_change_it(narrow, reviewer):
    # A transactional test's flush removed the migrated rows: install them again.
    schedules_install(periodic_task_model=PeriodicTask, interval_model=IntervalSchedule)
    task = PeriodicTask.objects.get(name="monitoring: drift check")
    narrow.log_in(reviewer)

    narrow.open("/admin/django_celery_beat/periodictask/")
    actions = {option.get_attribute("value")
               for option in narrow.find_all('select[name="action"] option')}
    narrow.open(f"/admin/django_celery_beat/periodictask/{task.pk}/change/")

    assert actions.isdisjoint({"enable_tasks", "disable_tasks", "toggle_tasks", "run_tasks"})
    assert narrow.find("#content h1").text.startswith("View periodic task")
    assert narrow.find_all('[name="_save"]') == []
    assert PeriodicTask.objects.get(pk=task.pk).enabled is True
