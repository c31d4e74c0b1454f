"""`alerts list|ack|resolve` (docs/operations.md#alerts): the Alerts admin's list and
actions from the command line, through the same services, with one-line failures."""

import json

import pytest
from django.core.management import CommandError

from monitoring.alerts import alert_raise, alert_resolve
from monitoring.models import Alert
from tests.commands import command_output
from tests.factories import register_version

pytestmark = pytest.mark.usefixtures("no_alert_delivery_channels")


@pytest.fixture
def drift_alert(db) -> Alert:
    return alert_raise(kind="drift", severity="warning", model_name="engagement-likes",
                       version="1.0.0", message="followers drifted")


@pytest.fixture
def slo_alert(db) -> Alert:
    return alert_raise(kind="slo", severity="critical", model_name="lead-scoring",
                       message="error rate 4.00% above 1.00%")


def test_list_prints_open_alerts_most_severe_first(drift_alert, slo_alert):
    lines = command_output("alerts", "list").splitlines()

    assert lines[0].startswith(f"#{slo_alert.pk} [critical] slo lead-scoring: error rate")
    assert lines[1].startswith(f"#{drift_alert.pk} [warning] drift engagement-likes 1.0.0: "
                               "followers drifted")
    assert lines[1].endswith("; open)")


def test_list_json_parses_and_leaves_out_resolved_alerts(drift_alert, slo_alert, reviewer):
    alert_resolve(alert_id=slo_alert.pk, user=reviewer)

    listed = json.loads(command_output("alerts", "list", "--json"))

    assert [alert["id"] for alert in listed] == [drift_alert.pk]
    assert listed[0] | {"first_seen": None, "last_seen": None} == {
        "id": drift_alert.pk, "kind": "drift", "severity": "warning", "model": "engagement-likes",
        "version": "1.0.0", "message": "followers drifted", "count": 1, "first_seen": None,
        "last_seen": None, "acknowledged_by": None, "acknowledged_at": None,
        "resolved_by": None, "resolved_at": None}


def test_list_all_adds_the_resolved_alerts_after_the_open_ones(drift_alert, slo_alert,
                                                               reviewer):
    alert_resolve(alert_id=slo_alert.pk, user=reviewer)

    listed = json.loads(command_output("alerts", "list", "--all", "--json"))

    assert [(alert["id"], alert["resolved_by"]) for alert in listed] == [
        (drift_alert.pk, None), (slo_alert.pk, "rita")]
    assert f"#{slo_alert.pk} [critical] slo" in command_output("alerts", "list", "--all")


def test_list_of_one_model_leaves_out_the_others(drift_alert, slo_alert, data_scientist):
    register_version(user=data_scientist)

    listed = json.loads(command_output("alerts", "list", "--model", "engagement-likes", "--json"))

    assert [alert["id"] for alert in listed] == [drift_alert.pk]


def test_list_of_an_unknown_model_fails_with_its_code(drift_alert):
    with pytest.raises(CommandError, match=r"^model_not_found: "):
        command_output("alerts", "list", "--model", "no-such-model")


def test_list_says_when_nothing_is_open(db):
    assert command_output("alerts", "list") == "no open alerts\n"


def test_ack_records_who_and_when(drift_alert, reviewer):
    output = command_output("alerts", "ack", str(drift_alert.pk), "--user", "rita")

    drift_alert.refresh_from_db()
    assert drift_alert.acknowledged_by == reviewer
    assert drift_alert.acknowledged_at is not None
    assert drift_alert.resolved_at is None
    assert output == f"alert {drift_alert.pk} ({drift_alert}) acknowledged by rita\n"


def test_resolve_closes_the_alert(drift_alert, deployer):
    command_output("alerts", "resolve", str(drift_alert.pk), "--user", "dev")

    drift_alert.refresh_from_db()
    assert drift_alert.resolved_by == deployer
    assert drift_alert.resolved_at is not None


def test_ack_without_the_permission_fails_and_changes_nothing(drift_alert, outsider):
    with pytest.raises(CommandError, match=r"^permission_denied: "):
        command_output("alerts", "ack", str(drift_alert.pk), "--user", "olly")

    drift_alert.refresh_from_db()
    assert drift_alert.acknowledged_at is None


def test_resolve_twice_is_an_illegal_transition(drift_alert, reviewer):
    command_output("alerts", "resolve", str(drift_alert.pk), "--user", "rita")

    with pytest.raises(CommandError, match=r"^illegal_transition: .* already resolved"):
        command_output("alerts", "resolve", str(drift_alert.pk), "--user", "rita")


def test_ack_of_an_unknown_alert_fails_with_not_found(reviewer):
    with pytest.raises(CommandError, match=r"^not_found: alert 999999 does not exist"):
        command_output("alerts", "ack", "999999", "--user", "rita")
