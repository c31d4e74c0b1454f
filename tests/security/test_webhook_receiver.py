"""The webhook receiver of docs/monitoring.md#verifying-a-webhook, run as documented.

Its Python block is read out of the markdown and executed, then put behind a real HTTP
server on 127.0.0.1 that answers 204 to what the function accepts and 401 to the rest. Real
deliveries reach it through the alert delivery code (monitoring/alerts.py); replays are the
recorded request sent again, the receiver's clock set to when the replay arrives.
"""

import json
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from monitoring.alerts import alert_raise
from monitoring.models import AlertDelivery

DOC = Path(__file__).resolve().parents[2] / "docs" / "monitoring.md"
SECRET = "a-webhook-secret-of-forty-bytes-or-so-ok"
FIVE_MINUTES = 5 * 60


def documented_receiver_code() -> str:
    section = DOC.read_text().split("### Verifying a webhook\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


class ReceiverClock:
    """Stands in for the `time` module of the documented code: the real time, or a set one."""

    def __init__(self) -> None:
        self.now: float | None = None

    def time(self) -> float:
        return time.time() if self.now is None else self.now


@dataclass
class Recorded:
    headers: dict[str, str]
    body: bytes


class DocumentedReceiver:
    def __init__(self) -> None:
        namespace: dict = {}
        exec(documented_receiver_code(), namespace)  # the documented code, as a reader copies it
        self.clock = namespace["time"] = ReceiverClock()
        verified = namespace["pulselytics_webhook_verified"]
        self.recorded: list[Recorded] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.recorded.append(Recorded(dict(self.headers), body))
                self.send_response(204 if verified(self.headers, body, SECRET.encode())
                                   else 401)
                self.end_headers()

            def log_message(self, *args):
                """No access log on the test's stderr."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/pulselytics"

    def replay(self, recorded: Recorded, *, body: bytes | None = None, **headers: str) -> int:
        """Send a recorded delivery again (with another body or headers); the answer's status."""
        sent = {name: value for name, value in recorded.headers.items()
                if name.startswith("X-Pulselytics-") or name == "Content-Type"}
        request = urllib.request.Request(self.url, data=body or recorded.body, method="POST",
                                         headers=sent | headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status
        except urllib.error.HTTPError as refused:
            return refused.code

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    documented = DocumentedReceiver()
    settings.ALERT_WEBHOOK_URL = documented.url
    settings.ALERT_WEBHOOK_SECRET = SECRET
    settings.ALERT_EMAIL_RECIPIENTS = []
    settings.ALERT_DELIVERY_RETRY_BACKOFF_SECONDS = 0
    yield documented
    documented.close()


def alert_delivered(receiver: DocumentedReceiver, capture_on_commit) -> Recorded:
    """Raise an alert: its one webhook delivery, as the receiver recorded it."""
    with capture_on_commit(execute=True):
        alert_raise(kind="drift", severity="critical", model_name="engagement-likes",
                    version="1.0.0", message="followers drifted (PSI 0.31)")
    [recorded] = receiver.recorded
    return recorded


@pytest.fixture
def delivered(db, receiver, django_capture_on_commit_callbacks) -> Recorded:
    return alert_delivered(receiver, django_capture_on_commit_callbacks)


def sent_at(recorded: Recorded) -> int:
    return int(recorded.headers["X-Pulselytics-Timestamp"])


def test_documented_receiver_accepts_a_fresh_delivery(db, receiver,
                                                      django_capture_on_commit_callbacks):
    before = int(time.time())

    recorded = alert_delivered(receiver, django_capture_on_commit_callbacks)

    delivery = AlertDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("sent", 1)  # answered 204 the first time
    assert before <= sent_at(recorded) <= int(time.time())


def test_documented_receiver_rejects_a_delivery_replayed_after_5_minutes(receiver, delivered):
    receiver.clock.now = sent_at(delivered) + FIVE_MINUTES + 1

    assert receiver.replay(delivered) == 401


def test_documented_receiver_accepts_a_repeat_within_5_minutes(receiver, delivered):
    # Left to the X-Pulselytics-Delivery id to de-duplicate, as the docs say.
    receiver.clock.now = sent_at(delivered) + FIVE_MINUTES - 60

    assert receiver.replay(delivered) == 204


def test_documented_receiver_rejects_a_replay_with_a_fresh_timestamp(receiver, delivered):
    # The timestamp is signed: moving it forward to pass the age check breaks the signature.
    receiver.clock.now = sent_at(delivered) + FIVE_MINUTES + 1

    fresh = str(sent_at(delivered) + FIVE_MINUTES + 1)
    assert receiver.replay(delivered, **{"X-Pulselytics-Timestamp": fresh}) == 401


def test_documented_receiver_rejects_a_tampered_body(receiver, delivered):
    tampered = json.loads(delivered.body) | {"severity": "info"}

    assert receiver.replay(delivered, body=json.dumps(tampered, sort_keys=True).encode()) == 401
