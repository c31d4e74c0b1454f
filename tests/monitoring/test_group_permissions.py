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
