"""Raising alerts (docs/monitoring.md#alerts): one open alert per condition, counted while it
repeats, sent when it opens, escalates or is due for a reminder after the cool-down; acknowledge and
resolve."""

import importlib
import re
import threading
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.core import mail
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from core.errors import IllegalTransitionError, NotFoundError, PermissionDeniedError
from monitoring.alerts import alert_acknowledge, alert_raise, alert_resolve
from monitoring.models import Alert, AlertDelivery
from monitoring.selectors import alerts_open
from tests.factories import UserFactory

RESEND_SCHEDULE = "monitoring: resend pending alert deliveries"


@pytest.fixture(autouse=True)
def email_channel(settings):
    """Alerts go out by email only here (webhooks: test_alert_delivery.py)."""
    settings.ALERT_EMAIL_RECIPIENTS = ["ops@example.com"]
    settings.ALERT_WEBHOOK_URL = ""
    settings.ALERT_COOLDOWN_SECONDS = 3600


@pytest.fixture
def raise_committed(db, django_capture_on_commit_callbacks):
    """alert_raise as a caller sees it: committed, so its deliveries are queued (and, with
    the tests' eager Celery, sent)."""
    def raise_(**overrides):
        arguments = {"kind": "drift", "severity": "warning", "model_name": "engagement-likes",
                     "version": "1.0.0", "message": "followers drifted", **overrides}
        with django_capture_on_commit_callbacks(execute=True):
            return alert_raise(**arguments)
    return raise_


@pytest.fixture
def handler(db):
    """A staff user allowed to acknowledge and resolve alerts."""
    user = UserFactory(username="opal")
    user.user_permissions.add(Permission.objects.get(content_type__app_label="monitoring",
                                                     codename="change_alert"))
    return type(user).objects.get(pk=user.pk)


def cool_down_passed(alert: Alert) -> None:
    Alert.objects.filter(pk=alert.pk).update(notified_at=timezone.now() - timedelta(hours=2))


def test_new_alert_is_sent_by_email(raise_committed):
    alert = raise_committed(payload={"dataset_drift": True})

    delivery = AlertDelivery.objects.get()
    assert (delivery.alert_id, delivery.channel, delivery.target) == (
        alert.pk, "email", "ops@example.com")
    assert (delivery.state, delivery.attempts) == ("sent", 1)
    assert [message.subject for message in mail.outbox] == [
        "[Pulselytics warning] drift on engagement-likes 1.0.0"]
    assert mail.outbox[0].to == ["ops@example.com"]
    alert.refresh_from_db()
    assert alert.notified_at == delivery.sent_at
    assert (alert.count, alert.payload) == (1, {"dataset_drift": True})


def test_repeat_within_cool_down_is_counted_and_not_sent_again(raise_committed):
    first = raise_committed(message="PSI 0.12")
    for psi in ("0.13", "0.14", "0.15", "0.16"):
        raise_committed(message=f"PSI {psi}", payload={"psi": psi})

    alert = Alert.objects.get()
    assert alert.pk == first.pk
    assert alert.count == 5
    assert (alert.message, alert.payload) == ("PSI 0.16", {"psi": "0.16"})
    assert alert.last_seen > alert.first_seen == first.first_seen
    assert AlertDelivery.objects.count() == 1
    assert len(mail.outbox) == 1


def test_repeat_after_cool_down_sends_a_reminder(raise_committed):
    alert = raise_committed()
    cool_down_passed(alert)

    raise_committed()

    alert.refresh_from_db()
    assert alert.count == 2
    assert AlertDelivery.objects.filter(alert=alert, state="sent").count() == 2
    assert len(mail.outbox) == 2


def test_escalation_is_sent_at_once(raise_committed):
    raise_committed(severity="warning")

    alert = raise_committed(severity="critical")

    assert (alert.severity, alert.count) == ("critical", 2)
    assert AlertDelivery.objects.filter(alert=alert).count() == 2
    assert mail.outbox[-1].subject == "[Pulselytics critical] drift on engagement-likes 1.0.0"


def test_lower_severity_repeat_keeps_the_worst_severity(raise_committed):
    raise_committed(severity="critical")

    alert = raise_committed(severity="warning")

    assert (alert.severity, alert.count) == ("critical", 2)
    assert AlertDelivery.objects.count() == 1


def test_acknowledged_alert_gets_no_reminder(raise_committed, handler):
    alert = raise_committed()
    alert_acknowledge(alert_id=alert.pk, user=handler)
    cool_down_passed(alert)

    raise_committed()

    alert.refresh_from_db()
    assert alert.count == 2
    assert AlertDelivery.objects.count() == 1


def test_resolved_alert_is_not_counted_into(raise_committed, handler):
    old = raise_committed()
    alert_resolve(alert_id=old.pk, user=handler)

    new = raise_committed()

    assert new.pk != old.pk
    assert new.count == 1
    assert [a.count for a in Alert.objects.order_by("pk")] == [1, 1]
    assert AlertDelivery.objects.filter(alert=new).count() == 1


def test_other_version_is_another_alert(raise_committed):
    raise_committed(version="1.0.0")
    raise_committed(version="1.1.0")

    assert sorted(Alert.objects.values_list("version", "count")) == [("1.0.0", 1), ("1.1.0", 1)]


def test_alert_without_channels_creates_no_delivery(raise_committed, settings):
    settings.ALERT_EMAIL_RECIPIENTS = []

    alert = raise_committed()

    assert not AlertDelivery.objects.exists()
    assert alert.notified_at is None


def test_unknown_severity_is_refused(db):
    with pytest.raises(ValueError, match="'apocalyptic' is not a valid"):
        alert_raise(kind="drift", severity="apocalyptic", model_name="m", message="x")

    assert not Alert.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_raises_count_into_one_alert():
    raisers, barrier, errors = 4, threading.Barrier(4), []

    def raise_one():
        try:
            barrier.wait(timeout=30)
            alert_raise(kind="slo", severity="critical", model_name="engagement-likes",
                        message="p95 latency 900 ms")
        except Exception as exc:  # noqa: BLE001 - a thread's exception is reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=raise_one) for _ in range(raisers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert list(Alert.objects.values_list("count", flat=True)) == [raisers]
    assert AlertDelivery.objects.count() == 1
    assert len(mail.outbox) == 1


def test_acknowledge_records_who_and_when(raise_committed, handler):
    alert = alert_acknowledge(alert_id=raise_committed().pk, user=handler)

    alert.refresh_from_db()
    assert alert.acknowledged_by == handler
    assert alert.acknowledged_at is not None
    assert alert.resolved_at is None


def test_acknowledge_twice_is_an_illegal_transition(raise_committed, handler):
    alert = raise_committed()
    alert_acknowledge(alert_id=alert.pk, user=handler)

    with pytest.raises(IllegalTransitionError, match="already acknowledged by opal"):
        alert_acknowledge(alert_id=alert.pk, user=handler)


def test_acknowledge_resolved_alert_is_an_illegal_transition(raise_committed, handler):
    alert = raise_committed()
    alert_resolve(alert_id=alert.pk, user=handler)

    with pytest.raises(IllegalTransitionError, match="already resolved"):
        alert_acknowledge(alert_id=alert.pk, user=handler)

    alert.refresh_from_db()
    assert alert.acknowledged_at is None


def test_resolve_records_who_and_when(raise_committed, handler):
    alert = alert_resolve(alert_id=raise_committed().pk, user=handler)

    alert.refresh_from_db()
    assert alert.resolved_by == handler
    assert alert.resolved_at is not None


def test_resolve_resolved_alert_is_an_illegal_transition(raise_committed, handler):
    alert = raise_committed()
    first = alert_resolve(alert_id=alert.pk, user=handler).resolved_at

    with pytest.raises(IllegalTransitionError, match="already resolved"):
        alert_resolve(alert_id=alert.pk, user=handler)

    alert.refresh_from_db()
    assert alert.resolved_at == first


@pytest.mark.parametrize("service", [alert_acknowledge, alert_resolve])
def test_handling_without_permission_is_denied(raise_committed, outsider, service):
    alert = raise_committed()

    with pytest.raises(PermissionDeniedError, match=re.escape("monitoring.change_alert")):
        service(alert_id=alert.pk, user=outsider)

    alert.refresh_from_db()
    assert (alert.acknowledged_at, alert.resolved_at) == (None, None)


def test_handling_unknown_alert_is_not_found(handler):
    with pytest.raises(NotFoundError):
        alert_resolve(alert_id=424242, user=handler)


def test_alerts_open_lists_unresolved_most_severe_first(raise_committed, handler):
    warning = raise_committed(kind="drift", severity="warning")
    critical = raise_committed(kind="slo", severity="critical", version="")
    resolved = raise_committed(kind="performance", severity="critical")
    alert_resolve(alert_id=resolved.pk, user=handler)
    other = raise_committed(kind="drift", severity="warning", model_name="lead-conversion")

    assert [a.pk for a in alerts_open(model_name="engagement-likes")] == [critical.pk, warning.pk]
    assert [a.pk for a in alerts_open()] == [critical.pk, other.pk, warning.pk]


def test_resend_schedule_is_installed_by_the_migration(db):
    PeriodicTask.objects.filter(name=RESEND_SCHEDULE).delete()
    migration = importlib.import_module("monitoring.migrations.0004_alert_delivery_resend_schedule")

    migration.install(apps, None)

    task = PeriodicTask.objects.get(name=RESEND_SCHEDULE)
    assert task.task == "monitoring.tasks.alert_deliveries_resend_task"
    assert (task.interval.every, task.interval.period, task.enabled) == (300, "seconds", True)
