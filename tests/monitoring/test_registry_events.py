"""Registry events (docs/api.md#registry-events): every sealed audit row, once committed, reaches
REGISTRY_WEBHOOK_URL as signed JSON, in the order of its model's chain, retried like alert
deliveries; and the reviewers are e-mailed when a version awaits review.

The receiver is a real HTTP server on 127.0.0.1 in a thread of the test
(tests/monitoring/test_alert_delivery.py's); Celery runs eagerly, as the test settings say.
Tests that commit for real (transaction=True) see exactly what production sees: the registry's
commit, then the signal, the delivery rows and the sends.
"""

import hashlib
import hmac
import itertools
import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import transaction

from mlregistry import services
from mlregistry.models import ModelTransition
from monitoring.models import RegistryEventDelivery
from monitoring.registry_events import registry_event_send, registry_events_resend
from tests.celery_processes import celery_worker, wait_for
from tests.factories import (
    UserFactory,
    grant_permissions,
    register_approved_version,
    register_deployed_version,
    register_version,
)
from tests.monitoring.test_alert_delivery import CeleryBroker, Received, WebhookReceiver
from tests.servers import free_port

SECRET = "registry-events-test-secret"
ALERT_SECRET = "a-different-secret-for-alerts"
COMMITTED = pytest.mark.django_db(transaction=True)
GROUPS = pytest.mark.usefixtures("groups_restored_after_module", "governance_groups")
RESEND_AFTER = timedelta(minutes=2)  # past webhooks.RESEND_GRACE with no back-off
WAIT = 60


@pytest.fixture
def receiver(settings):
    """A receiver configured as REGISTRY_WEBHOOK_URL, with no back-off between retries."""
    webhook = WebhookReceiver()
    settings.REGISTRY_WEBHOOK_URL = webhook.url
    settings.REGISTRY_WEBHOOK_SECRET = SECRET
    settings.ALERT_WEBHOOK_SECRET = ALERT_SECRET
    settings.ALERT_DELIVERY_RETRY_BACKOFF_SECONDS = 0
    yield webhook
    webhook.close()


@pytest.fixture
def celery_broker():
    broker = CeleryBroker()
    yield broker
    broker.restore()


def signature_of(received: Received, secret: str = SECRET) -> str:
    """Recomputed independently of the code under test: over the timestamp, a dot, the body."""
    signed = received.headers["x-pulselytics-timestamp"].encode() + b"." + received.body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def events(receiver: WebhookReceiver) -> list[dict]:
    return [json.loads(received.body) for received in receiver.received]


def chain(model_name: str) -> list[ModelTransition]:
    return list(ModelTransition.objects.filter(model__name=model_name).order_by("sequence"))


@COMMITTED
@GROUPS
def test_approve_deploy_and_rollback_reach_the_receiver_signed_and_in_chain_order(people,
                                                                                  receiver):
    register_deployed_version(**people, slope=1.0)
    second = register_deployed_version(**people, slope=2.0)
    services.model_rollback(model=second.model, user=people["deployer"], reason="bad lift")

    rows = chain("engagement-likes")
    assert [row.reason for row in rows] == [
        "registered", "validated", "approved", "deployed",
        "registered", "validated", "approved", "deployed", "deployed", "rollback", "rollback"]
    assert [event["sequence"] for event in events(receiver)] == list(range(1, len(rows) + 1))
    for received, row in zip(receiver.received, rows, strict=True):
        assert received.headers["content-type"] == "application/json"
        assert received.headers["x-pulselytics-signature"] == signature_of(received)
        assert received.headers["x-pulselytics-signature"] != signature_of(received,
                                                                           ALERT_SECRET)
        delivery = RegistryEventDelivery.objects.get(transition=row)
        assert received.headers["x-pulselytics-delivery"] == str(delivery.pk)
        assert json.loads(received.body) == {
            "type": "registry.transition", "delivery_id": delivery.pk, "id": row.pk,
            "model": "engagement-likes", "version": row.version.version,
            "sequence": row.sequence, "reason": row.reason, "from_status": row.from_status,
            "to_status": row.to_status, "actor": row.actor.username,
            "created_at": row.created_at.isoformat(), "notes": row.notes,
            "traffic": {"before": row.traffic_before, "after": row.traffic_after},
            "model_sha256": row.model_sha256, "row_sha256": row.row_sha256,
            "previous_sha256": row.previous_sha256, "key_id": row.key_id,
        }
        assert (delivery.state, delivery.attempts, delivery.response_status,
                delivery.target) == ("sent", 1, 200, receiver.url)
    bodies = events(receiver)
    assert all(later["previous_sha256"] == earlier["row_sha256"]
               for earlier, later in itertools.pairwise(bodies))


@COMMITTED
@GROUPS
def test_failing_receiver_is_retried_until_the_event_is_delivered(people, receiver):
    version = register_version(user=people["user"])
    receiver.statuses = [500, 500]

    services.model_version_approve(version=version, user=people["reviewer"], notes="fine")

    *_, first, second, third = receiver.received
    assert first.body == second.body == third.body  # the same event, signed anew each time
    assert json.loads(third.body)["reason"] == "approved"
    delivery = RegistryEventDelivery.objects.get(transition__reason="approved")
    assert (delivery.state, delivery.attempts, delivery.response_status,
            delivery.last_error) == ("sent", 3, 200, "")


@COMMITTED
@GROUPS
def test_event_that_keeps_failing_ends_failed_and_the_next_one_still_goes(people, receiver,
                                                                         settings):
    version = register_version(user=people["user"])
    settings.ALERT_DELIVERY_MAX_RETRIES = 1
    receiver.statuses = [503, 503]

    version = services.model_version_approve(version=version, user=people["reviewer"],
                                             notes="fine")
    services.model_version_deploy(version=version, user=people["deployer"])

    failed = RegistryEventDelivery.objects.get(transition__reason="approved")
    assert (failed.state, failed.attempts, failed.response_status) == ("failed", 2, 503)
    assert "503" in failed.last_error
    # A gap a receiver sees in `sequence`: the deploy was sent after the approval gave up.
    assert [event["reason"] for event in events(receiver)] == [
        "registered", "validated", "approved", "approved", "deployed"]


@COMMITTED
@GROUPS
def test_event_waits_while_an_earlier_one_of_its_model_is_pending(people, receiver,
                                                                celery_broker):
    celery_broker.down()
    version = register_version(user=people["user"])
    registered, validated = RegistryEventDelivery.objects.order_by("transition__sequence")
    celery_broker.restore()

    assert registry_event_send(delivery_id=validated.pk) == "waiting"
    assert receiver.received == []

    assert registry_event_send(delivery_id=registered.pk) == "sent"

    # The first one's task queued the second once it was sent.
    assert [event["reason"] for event in events(receiver)] == ["registered", "validated"]
    assert set(RegistryEventDelivery.objects.values_list("state", flat=True)) == {"sent"}
    assert version.transitions.count() == 2


@COMMITTED
@GROUPS
def test_resend_delivers_the_events_the_broker_never_got(people, receiver, celery_broker):
    celery_broker.down()
    register_version(user=people["user"])
    celery_broker.restore()
    assert receiver.received == []

    later = RegistryEventDelivery.objects.order_by("pk").last().created_at
    assert registry_events_resend(now=later) == 0  # may still be on its way
    assert registry_events_resend(now=later + RESEND_AFTER) == 2

    assert [event["reason"] for event in events(receiver)] == ["registered", "validated"]


def approve_in_a_failing_transaction(version, reviewer) -> None:
    """The approval is made, then the caller's transaction fails and rolls it back."""
    with transaction.atomic():
        services.model_version_approve(version=version, user=reviewer, notes="fine")
        raise RuntimeError("the caller's transaction fails after the approval")


@COMMITTED
@GROUPS
def test_rolled_back_change_sends_nothing(people, receiver):
    version = register_version(user=people["user"])
    sent_before = len(receiver.received)

    with pytest.raises(RuntimeError):
        approve_in_a_failing_transaction(version, people["reviewer"])

    assert len(receiver.received) == sent_before == 2
    assert not RegistryEventDelivery.objects.filter(transition__reason="approved").exists()
    assert not ModelTransition.objects.filter(reason="approved").exists()


@COMMITTED
@GROUPS
def test_no_url_queues_no_delivery(people, settings):
    settings.REGISTRY_WEBHOOK_URL = ""

    register_deployed_version(**people)

    assert ModelTransition.objects.count() == 4
    assert not RegistryEventDelivery.objects.exists()


@pytest.mark.postgres
@COMMITTED
@GROUPS
def test_real_workers_deliver_in_chain_order_while_the_first_event_is_retried(
        people, receiver, redis_server, artifact_dir, celery_broker):
    broker = redis_server.url.rsplit("/", 1)[0] + "/9"  # a queue of this test's own
    celery_broker.point_at(broker)
    receiver.statuses = [500]  # the first event's first attempt; its retry comes 1 s later

    with celery_worker(redis_server, artifact_dir, name="registry-events", concurrency=2,
                       CELERY_BROKER_URL=broker, REGISTRY_WEBHOOK_SECRET=SECRET,
                       ALERT_DELIVERY_RETRY_BACKOFF_SECONDS="1"):
        register_deployed_version(**people)
        wait_for(lambda: RegistryEventDelivery.objects.filter(state="sent").count() == 4,
                 timeout=WAIT, what="the four events to be sent")

    assert [event["reason"] for event in events(receiver)] == [
        "registered", "registered", "validated", "approved", "deployed"]
    assert all(received.headers["x-pulselytics-signature"] == signature_of(received)
               for received in receiver.received)
    assert RegistryEventDelivery.objects.get(transition__sequence=1).attempts == 2


@COMMITTED
@GROUPS
def test_rows_committed_while_the_url_was_unset_come_before_the_next_event(people, receiver,
                                                                          settings):
    version = register_version(user=people["user"])
    settings.REGISTRY_WEBHOOK_URL = ""
    version = services.model_version_approve(version=version, user=people["reviewer"],
                                             notes="fine")
    assert RegistryEventDelivery.objects.count() == 2
    settings.REGISTRY_WEBHOOK_URL = receiver.url

    services.model_version_deploy(version=version, user=people["deployer"])

    assert [event["sequence"] for event in events(receiver)] == [1, 2, 3, 4]


# -- review requests -----------------------------------------------------------------------

@COMMITTED
@GROUPS
def test_reviewers_are_emailed_when_a_data_scientist_registers_a_version(people, settings):
    settings.REGISTRY_WEBHOOK_URL = ""
    UserFactory(username="rosa", groups=["Reviewers"])
    UserFactory(username="ray", groups=["Reviewers"], email="")  # no address: not told
    UserFactory(username="rick", groups=["Reviewers"], is_active=False)

    register_version(user=people["user"], name="engagement-comments")

    [email] = mail.outbox
    assert email.to == ["rita@example.com", "rosa@example.com"]
    assert email.subject == "[Pulselytics] engagement-comments 1.0.0: review needed"
    assert "registered by dana" in email.body
    assert "awaiting review" in email.body


@COMMITTED
@GROUPS
def test_a_reviewer_who_registers_a_version_is_not_asked_to_review_it(people,
                                                                      approver_and_deployer):
    registering_reviewer = grant_permissions(approver_and_deployer, "add_mlmodelversion")

    register_version(user=registering_reviewer)

    [email] = mail.outbox
    assert email.to == [people["reviewer"].email]  # four eyes: someone else reviews it


@COMMITTED
@GROUPS
def test_reviewers_are_emailed_when_an_approval_is_withdrawn(people):
    version = register_approved_version(**people)
    mail.outbox.clear()
    other_reviewer = UserFactory(username="rosa", groups=["Reviewers"])

    services.model_version_withdraw_approval(version=version, user=people["reviewer"],
                                             notes="metrics were computed on the wrong split")

    [email] = mail.outbox
    assert email.to == [other_reviewer.email]  # not the one who withdrew it
    assert "approval_withdrawn, by rita" in email.body
    assert "wrong split" in email.body


@COMMITTED
@GROUPS
def test_nothing_else_emails_the_reviewers(people):
    version = register_version(user=people["user"])
    mail.outbox.clear()

    register_deployed_version(**people, slope=3.0)
    services.model_version_reject(version=version, user=people["reviewer"], notes="no")

    assert [email.subject for email in mail.outbox] == [
        "[Pulselytics] engagement-likes 1.1.0: review needed"]


# -- admin ---------------------------------------------------------------------------------

@COMMITTED
@GROUPS
def test_admin_lists_deliveries_read_only(client, people, receiver):
    receiver.statuses = [500]
    register_version(user=people["user"])
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "pw"))

    listing = client.get("/admin/monitoring/registryeventdelivery/")

    assert listing.status_code == 200
    assert b"engagement-likes 1.0.0 #1 registered" in listing.content
    assert client.get("/admin/monitoring/registryeventdelivery/add/").status_code == 403


@COMMITTED
@GROUPS
def test_a_mail_server_that_refuses_costs_the_review_email_not_the_registration(
        people, settings, caplog):
    settings.REGISTRY_WEBHOOK_URL = ""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens

    version = register_version(user=people["user"], name="engagement-comments")

    assert version.status == "testing"
    [record] = [r for r in caplog.records if "could not email reviewers" in r.getMessage()]
    assert record.levelname == "WARNING" and record.exc_info is None
    assert "engagement-comments 1.0.0" in record.getMessage()
