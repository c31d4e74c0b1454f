"""Alerts in the admin: read-only lists with filters, and the "Acknowledge" and "Resolve"
actions, offered only to users who may change alerts, calling the services."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from monitoring.alerts import alert_raise, alert_resolve
from monitoring.models import Alert, AlertDelivery
from tests.factories import UserFactory

CHANGELIST = "/admin/monitoring/alert/"


@pytest.fixture(autouse=True)
def email_channel(settings):
    settings.ALERT_EMAIL_RECIPIENTS = ["ops@example.com"]
    settings.ALERT_WEBHOOK_URL = ""


def staff(username: str, *codenames: str):
    user = UserFactory(username=username)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="monitoring",
                                                         codename__in=codenames))
    return get_user_model().objects.get(pk=user.pk)


@pytest.fixture
def viewer(db):
    return staff("vera", "view_alert", "view_alertdelivery")


@pytest.fixture
def handler(db):
    return staff("hank", "view_alert", "change_alert", "view_alertdelivery")


@pytest.fixture
def alert(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return alert_raise(kind="drift", severity="critical", model_name="engagement-likes",
                           version="1.0.0", message="followers drifted (PSI 0.31)")


def run_action(client, action: str, *alerts: Alert):
    return client.post(CHANGELIST, {"action": action, "index": "0",
                                    "_selected_action": [a.pk for a in alerts]}, follow=True)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_viewer_sees_alerts_without_the_actions(client, viewer, alert):
    client.force_login(viewer)

    page = client.get(CHANGELIST)

    assert page.status_code == 200
    assert b"followers drifted (PSI 0.31)" in page.content
    assert b'value="acknowledge"' not in page.content
    assert b'value="resolve"' not in page.content


def test_handler_is_offered_the_actions(client, handler, alert):
    client.force_login(handler)

    page = client.get(CHANGELIST)

    assert b'value="acknowledge"' in page.content
    assert b'value="resolve"' in page.content
    assert b'value="delete_selected"' not in page.content


def test_acknowledge_action_acknowledges_the_selected_alerts(client, handler, alert):
    client.force_login(handler)

    response = run_action(client, "acknowledge", alert)

    assert response.status_code == 200
    assert messages_of(response) == ["1 alert(s) acknowledged."]
    alert.refresh_from_db()
    assert alert.acknowledged_by == handler
    assert alert.resolved_at is None


def test_resolve_action_resolves_the_selected_alerts(client, handler, alert):
    client.force_login(handler)

    response = run_action(client, "resolve", alert)

    assert messages_of(response) == ["1 alert(s) resolved."]
    alert.refresh_from_db()
    assert (alert.resolved_by, alert.resolved_at is not None) == (handler, True)


def test_resolve_action_reports_an_alert_already_resolved(client, handler, alert):
    resolved_at = alert_resolve(alert_id=alert.pk, user=handler).resolved_at
    client.force_login(handler)

    response = run_action(client, "resolve", alert)

    assert messages_of(response) == [f"illegal_transition: alert {alert.pk} is already resolved"]
    alert.refresh_from_db()
    assert alert.resolved_at == resolved_at


def test_action_posted_by_a_viewer_changes_nothing(client, viewer, alert):
    client.force_login(viewer)

    response = run_action(client, "acknowledge", alert)

    assert response.status_code == 200
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


def test_open_filter_leaves_out_resolved_alerts(client, handler, alert):
    alert_resolve(alert_id=alert.pk, user=handler)
    alert_raise(kind="slo", severity="warning", model_name="lead-conversion",
                message="p95 latency 420 ms")
    client.force_login(handler)

    opened = client.get(CHANGELIST, {"state": "open"})
    resolved = client.get(CHANGELIST, {"state": "resolved"})

    assert b"p95 latency 420 ms" in opened.content
    assert b"followers drifted" not in opened.content
    assert b"followers drifted" in resolved.content
    assert b"p95 latency 420 ms" not in resolved.content


def test_search_finds_alerts_by_model(client, viewer, alert):
    alert_raise(kind="slo", severity="warning", model_name="lead-conversion",
                message="p95 latency 420 ms")
    client.force_login(viewer)

    page = client.get(CHANGELIST, {"q": "lead-conv"})

    assert b"p95 latency 420 ms" in page.content
    assert b"followers drifted" not in page.content


def test_alert_page_is_read_only_with_its_deliveries(client, handler, alert):
    client.force_login(handler)

    page = client.get(f"{CHANGELIST}{alert.pk}/change/")

    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert b"ops@example.com" in page.content  # the delivery inline


@pytest.mark.parametrize("path", ["/admin/monitoring/alert/add/",
                                  "/admin/monitoring/alertdelivery/add/"])
def test_admin_refuses_to_add_alerts_or_deliveries(client, db, path):
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "pw"))

    assert client.get(path).status_code == 403


def test_delivery_list_shows_each_sending(client, viewer, alert):
    client.force_login(viewer)

    page = client.get("/admin/monitoring/alertdelivery/")

    assert page.status_code == 200
    delivery = AlertDelivery.objects.get()
    assert f"/admin/monitoring/alertdelivery/{delivery.pk}/change/".encode() in page.content
    assert b"ops@example.com" in page.content
