"""Delivering alerts (docs/monitoring.md#alert-delivery): a signed webhook POST and an email per
alert sent, retried with back-off by Celery until the attempts run out, never holding up the caller,
and queued again when the broker was down.

The webhook receiver is a real HTTP server on 127.0.0.1 in a thread of the test. Most tests
use the test settings' eager Celery (a retry runs inline); the last one uses a real worker
on Redis.
"""

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from monitoring.alerts import (
    AlertDeliveryError,
    alert_deliveries_resend,
    alert_delivery_send,
    alert_raise,
)
from monitoring.models import Alert, AlertDelivery
from predictions import services as serving
from predictions.api import auth
from predictions.loader import model_cache
from pulselytics.celery import app as celery_app
from tests.celery_processes import celery_worker, wait_for
from tests.factories import artifact_tamper, register_deployed_version
from tests.servers import free_port

SECRET = "webhook-test-secret"
HOLD_LIMIT = 120  # a held answer is released by then whatever happens to the test
WAIT = 60


@dataclass
class Received:
    headers: dict  # lower-cased names
    body: bytes


@dataclass
class WebhookReceiver:
    """Records every POST and answers with the next scripted status (200 once the script is
    used up); while held, answers wait until `release()`."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    answered: int = 0
    gate: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.gate.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body))
                receiver.gate.wait(timeout=HOLD_LIMIT)
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.answered += 1

            def log_message(self, *args):
                """No access log on the test's stderr."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/pulselytics"

    def hold(self) -> None:
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    """A webhook receiver, configured as the only alert channel, with no back-off."""
    webhook = WebhookReceiver()
    settings.ALERT_WEBHOOK_URL = webhook.url
    settings.ALERT_WEBHOOK_SECRET = SECRET
    settings.ALERT_EMAIL_RECIPIENTS = []
    settings.ALERT_DELIVERY_RETRY_BACKOFF_SECONDS = 0
    yield webhook
    webhook.close()


class CeleryBroker:
    """Points this process's Celery app at another broker with eager mode off: what the
    web process does in production."""

    KEYS = ("broker_url", "task_always_eager")

    def __init__(self) -> None:
        self.saved = {key: celery_app.conf[key] for key in self.KEYS}

    def point_at(self, url: str) -> None:
        celery_app.conf.update(broker_url=url, task_always_eager=False)

    def down(self) -> None:
        self.point_at(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there

    def restore(self) -> None:
        celery_app.conf.update(self.saved)


@pytest.fixture
def celery_broker():
    broker = CeleryBroker()
    yield broker
    broker.restore()


@pytest.fixture
def raise_committed(db, django_capture_on_commit_callbacks):
    def raise_(**overrides):
        arguments = {"kind": "drift", "severity": "critical", "model_name": "engagement-likes",
                     "version": "1.0.0", "message": "followers drifted (PSI 0.31)",
                     "payload": {"features": ["followers"]}, **overrides}
        with django_capture_on_commit_callbacks(execute=True):
            return alert_raise(**arguments)
    return raise_


def signature_of(received: Received) -> str:
    """Recomputed independently of the code under test: over the timestamp, a dot, the body."""
    signed = received.headers["x-pulselytics-timestamp"].encode() + b"." + received.body
    return "sha256=" + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()


def test_webhook_reaches_the_receiver_with_a_valid_signature(receiver, raise_committed):
    alert = raise_committed()

    [received] = receiver.received
    delivery = AlertDelivery.objects.get()
    assert received.headers["content-type"] == "application/json"
    assert received.headers["x-pulselytics-signature"] == signature_of(received)
    assert received.headers["x-pulselytics-delivery"] == str(delivery.pk)
    assert json.loads(received.body) == {
        "id": alert.pk, "kind": "drift", "severity": "critical", "model": "engagement-likes",
        "version": "1.0.0", "message": "followers drifted (PSI 0.31)",
        "payload": {"features": ["followers"]}, "count": 1,
        "first_seen": alert.first_seen.isoformat(), "last_seen": alert.last_seen.isoformat(),
        "delivery_id": delivery.pk,
    }
    assert (delivery.channel, delivery.target, delivery.state, delivery.attempts) == (
        "webhook", receiver.url, "sent", 1)


def test_failing_webhook_is_retried_until_delivered(receiver, raise_committed):
    receiver.statuses = [500, 500]

    raise_committed()

    assert len(receiver.received) == 3
    assert len({r.body for r in receiver.received}) == 1  # the same signed body each time
    delivery = AlertDelivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("sent", 3, "")
    assert Alert.objects.get().notified_at == delivery.sent_at


def test_webhook_that_keeps_failing_ends_failed_after_the_last_retry(receiver, raise_committed,
                                                                     settings):
    settings.ALERT_DELIVERY_MAX_RETRIES = 2
    receiver.statuses = [503] * 10

    raise_committed()

    assert len(receiver.received) == 3  # the first attempt and two retries
    delivery = AlertDelivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.sent_at) == ("failed", 3, None)
    assert "503" in delivery.last_error


def test_unreachable_webhook_records_the_network_error(receiver, raise_committed, settings):
    settings.ALERT_DELIVERY_MAX_RETRIES = 0
    settings.ALERT_WEBHOOK_URL = f"http://127.0.0.1:{free_port()}/nobody-listens"

    raise_committed()

    delivery = AlertDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("failed", 1)
    assert "Connection refused" in delivery.last_error


def test_sent_delivery_is_not_sent_again(receiver, raise_committed):
    raise_committed()
    delivery = AlertDelivery.objects.get()

    assert alert_delivery_send(delivery_id=delivery.pk) == "sent"

    assert len(receiver.received) == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 1


def test_email_delivery_lands_in_the_outbox(raise_committed, settings):
    settings.ALERT_EMAIL_RECIPIENTS = ["ops@example.com", "oncall@example.com"]
    settings.ALERT_EMAIL_FROM = "alerts@pulselytics.test"
    settings.ALERT_WEBHOOK_URL = ""

    raise_committed()

    [email] = mail.outbox
    assert email.subject == "[Pulselytics critical] drift on engagement-likes 1.0.0"
    assert (email.from_email, email.to) == ("alerts@pulselytics.test",
                                            ["ops@example.com", "oncall@example.com"])
    assert "followers drifted (PSI 0.31)" in email.body
    assert AlertDelivery.objects.get().state == "sent"


def test_both_channels_get_a_delivery_each(receiver, raise_committed, settings):
    settings.ALERT_EMAIL_RECIPIENTS = ["ops@example.com"]

    raise_committed()

    assert sorted(AlertDelivery.objects.values_list("channel", "state")) == [
        ("email", "sent"), ("webhook", "sent")]
    assert (len(mail.outbox), len(receiver.received)) == (1, 1)


def test_broker_down_leaves_the_delivery_pending(receiver, raise_committed, celery_broker):
    celery_broker.down()

    alert = raise_committed()

    assert Alert.objects.get().pk == alert.pk
    delivery = AlertDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("pending", 0)
    assert receiver.received == []


def test_resend_delivers_what_the_broker_never_got(receiver, raise_committed, celery_broker):
    celery_broker.down()
    raise_committed()
    celery_broker.restore()  # the broker is back (here: eager, the tests' stand-in)

    assert alert_deliveries_resend(now=timezone.now()) == 0  # may still be on its way
    assert alert_deliveries_resend(now=timezone.now() + timedelta(minutes=2)) == 1

    assert AlertDelivery.objects.get().state == "sent"
    assert len(receiver.received) == 1


def test_resend_leaves_a_delivery_waiting_for_its_retry(receiver, raise_committed, settings,
                                                        celery_broker):
    settings.ALERT_DELIVERY_RETRY_BACKOFF_SECONDS = 600
    receiver.statuses = [500]
    celery_broker.down()
    raise_committed()
    delivery = AlertDelivery.objects.get()
    with pytest.raises(AlertDeliveryError):  # the first attempt; its retry message is lost
        alert_delivery_send(delivery_id=delivery.pk)
    celery_broker.restore()

    assert alert_deliveries_resend(now=timezone.now() + timedelta(minutes=5)) == 0
    assert alert_deliveries_resend(now=timezone.now() + timedelta(minutes=15)) == 1

    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("sent", 2)


# -- a real worker: a hanging webhook never holds up a prediction --------------------------

@pytest.fixture
def fresh_model_cache(settings):
    settings.REGISTRY_POLL_SECONDS = 0
    model_cache.clear()
    auth._verified.clear()
    yield
    model_cache.clear()
    auth._verified.clear()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("groups_restored_after_module", "governance_groups", "fresh_model_cache")
def test_hanging_webhook_never_delays_a_prediction(people, receiver, redis_server, artifact_dir,
                                                  celery_broker):
    version = register_deployed_version(**people, name="hanging-likes", slope=3.5)
    artifact_tamper(version)
    _, key = serving.api_key_create(name="alert tests")
    broker = redis_server.url.rsplit("/", 1)[0] + "/7"  # a queue of this test's own
    celery_broker.point_at(broker)
    receiver.hold()

    with celery_worker(redis_server, artifact_dir, name="alerts", CELERY_BROKER_URL=broker,
                       ALERT_WEBHOOK_SECRET=SECRET, ALERT_WEBHOOK_TIMEOUT_SECONDS="300"):
        response = Client().post("/api/v1/models/hanging-likes/predict",
                                 data=json.dumps([{"followers": 12.5, "hashtags": 3}]),
                                 content_type="application/json",
                                 HTTP_AUTHORIZATION=f"Api-Key {key}")

        assert response.status_code == 503
        assert response.json()["error"]["code"] == "model_integrity_error"
        wait_for(lambda: receiver.received, timeout=WAIT, what="the worker's webhook POST")
        # The prediction was answered; the webhook has not been, and its delivery waits.
        assert receiver.answered == 0
        delivery = AlertDelivery.objects.get()
        assert (delivery.alert.kind, delivery.alert.version) == ("integrity", version.version)
        assert delivery.state == "pending"

        receiver.release()

        wait_for(lambda: AlertDelivery.objects.filter(pk=delivery.pk, state="sent").exists(),
                 timeout=WAIT, what="the delivery to be recorded as sent")
    [received] = receiver.received
    assert received.headers["x-pulselytics-signature"] == signature_of(received)
    assert json.loads(received.body)["kind"] == "integrity"
