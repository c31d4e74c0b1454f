"""Who may do what with alerts and reports (monitoring migration 0005)."""

import pytest

pytestmark = pytest.mark.django_db


def test_reviewers_and_deployers_may_acknowledge_and_resolve_alerts(reviewer, deployer):
    assert reviewer.has_perm("monitoring.change_alert")
    assert deployer.has_perm("monitoring.change_alert")


def test_data_scientists_may_only_look_at_alerts_and_reports(data_scientist):
    assert data_scientist.has_perm("monitoring.view_alert")
    assert data_scientist.has_perm("monitoring.view_driftreport")
    assert not data_scientist.has_perm("monitoring.change_alert")


def test_nobody_outside_the_groups_sees_alerts(outsider):
    assert not outsider.has_perm("monitoring.view_alert")


def test_deployers_may_change_the_schedules_and_others_only_see_them(deployer, reviewer):
    assert deployer.has_perm("django_celery_beat.change_periodictask")
    assert reviewer.has_perm("django_celery_beat.view_periodictask")
    assert not reviewer.has_perm("django_celery_beat.change_periodictask")


def test_a_deployer_opens_the_schedules_in_the_admin(client, deployer):
    client.force_login(deployer)

    page = client.get("/admin/django_celery_beat/periodictask/")

    assert page.status_code == 200
    assert b"monitoring: drift check" in page.content
