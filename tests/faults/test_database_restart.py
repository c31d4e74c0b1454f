"""PostgreSQL restarted under a live gunicorn (issue 7, faults; docs/api.md#errors).

A PostgreSQL server of the module's own (not the suite's: it is stopped here) holds a
migrated database with one deployed model; gunicorn (2 sync workers) serves it. While the
database is down every request is answered at once with a clean 503 `database_unavailable`
envelope; once it is back the same workers answer again, and the prediction log holds
exactly the predictions and outcomes that were answered 200, nothing more.
"""

import contextlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import psycopg
import pytest
from django.conf import settings

from tests.celery_processes import wait_for
from tests.servers import PostgresServer, ServiceUnavailable, free_port, process_group_stop

pytestmark = pytest.mark.postgres

MODEL = "restart-likes"
INSTANCE = {"followers": 12.5, "hashtags": 3}
CLIENT_THREADS = 3  # more than the workers, so both are kept busy
CLIENT_TIMEOUT = 20  # a request hanging this long fails the test
CLIENT_PAUSE = 0.02  # between a thread's requests: failures are fast, spare the CPU
CLIENT_MAX_SECONDS = 120  # the load stops by itself whatever happens to the test
MIN_DOWNTIME = 2.0  # the database stays down at least this long
WAIT = 60

# Run in a child process on the module's database: users, a deployed version, an API key.
SETUP = f"""
import json
import django
django.setup()
from predictions import services as serving
from tests.factories import UserFactory, register_deployed_version
people = {{"user": UserFactory(username="dana", groups=["Data scientists"]),
          "reviewer": UserFactory(username="rita", groups=["Reviewers"]),
          "deployer": UserFactory(username="dev", groups=["Deployers"])}}
version = register_deployed_version(**people, name={MODEL!r}, slope=3.0)
_, key = serving.api_key_create(name="faults", scopes=["predict", "feedback"])
print(json.dumps({{"key": key, "version": version.version}}))
"""


@dataclass
class Stack:
    database: PostgresServer
    port: int
    key: str
    server: subprocess.Popen
    log: Path

    def gunicorn_log(self) -> str:
        return self.log.read_text(errors="replace")


def _run(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, *args], cwd=settings.BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _get(port: int, path: str) -> int | None:
    with contextlib.suppress(OSError):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        finally:
            conn.close()
    return None


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The module's own PostgreSQL, migrated and seeded, served by gunicorn."""
    try:
        database = PostgresServer()
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("database-restart")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pulselytics.settings.base",
        "DATABASE_URL": database.url,
        "PULSELYTICS_VAR_DIR": str(root / "var"),
        "ARTIFACT_STORAGE_OPTIONS": json.dumps({"location": str(root / "artifacts")}),
        "ALLOWED_HOSTS": "127.0.0.1",
        "REGISTRY_POLL_SECONDS": "1",
        "API_KEY_THROTTLE_RATE": "1000000/min",
        "LOG_LEVEL": "WARNING",
    }
    log = root / "gunicorn.log"
    server = None
    try:
        _run(env, "manage.py", "migrate", "--verbosity", "0")
        key = json.loads(_run(env, "-c", SETUP).splitlines()[-1])["key"]
        port = free_port()
        with open(log, "wb") as log_file:
            server = subprocess.Popen(
                [os.path.join(os.path.dirname(sys.executable), "gunicorn"),
                 "pulselytics.wsgi:application", "--bind", f"127.0.0.1:{port}",
                 "--workers", "2", "--graceful-timeout", "5", "--no-control-socket"],
                cwd=settings.BASE_DIR, env=env, start_new_session=True,
                stdout=log_file, stderr=subprocess.STDOUT,
            )
        wait_for(lambda: server.poll() is not None or _get(port, "/api/v1/health") == 200,
                 timeout=WAIT, what="gunicorn to answer /api/v1/health")
        assert server.poll() is None, log.read_text(errors="replace")[-3000:]
        yield Stack(database=database, port=port, key=key, server=server, log=log)
    finally:
        if server is not None:
            process_group_stop(server)
        database.destroy()


@dataclass
class Exchange:
    kind: str  # "predict" or "feedback"
    request_id: str
    started: float
    status: int | str  # HTTP status, or the exception's name when there was no answer
    finished: float = 0.0
    echoed_request_id: str | None = None
    retry_after: str | None = None
    body: bytes = b""
    prediction_id: str | None = None

    def json(self):
        return json.loads(self.body)


@dataclass
class Traffic:
    """Client threads: each posts a prediction, and every other turn the outcome of its
    oldest answered prediction still without one, so outcomes are posted while the
    database is down too. An outcome is posted until it is answered with something
    other than 503, as a client retries an outcome the service could not record."""

    port: int
    key: str
    exchanges: list[Exchange] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _post(self, kind: str, request_id: str, path: str, body: dict) -> Exchange:
        headers = {"Authorization": f"Api-Key {self.key}", "Content-Type": "application/json",
                   "X-Request-ID": request_id}
        exchange = Exchange(kind, request_id, time.monotonic(), "pending")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT)
        try:
            conn.request("POST", path, json.dumps(body), headers)
            response = conn.getresponse()
            exchange.body = response.read()
            exchange.status = response.status
            exchange.echoed_request_id = response.getheader("X-Request-ID")
            exchange.retry_after = response.getheader("Retry-After")
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, none hidden
            exchange.status = type(exc).__name__
        finally:
            conn.close()
        exchange.finished = time.monotonic()
        self.exchanges.append(exchange)  # list.append is atomic
        return exchange

    def _run(self, thread: int) -> None:
        unlabelled: deque[str] = deque()
        deadline = time.monotonic() + CLIENT_MAX_SECONDS
        turn = 0
        while not self.stop.is_set() and time.monotonic() < deadline:
            turn += 1
            answer = self._post("predict", f"t{thread}-{turn}",
                                f"/api/v1/models/{MODEL}/predict", {"instances": [INSTANCE]})
            if answer.status == 200:
                answer.prediction_id = answer.json()["predictions"][0]["prediction_id"]
                unlabelled.append(answer.prediction_id)
            if turn % 2 == 0 and unlabelled:
                prediction_id = unlabelled[0]
                outcome = self._post("feedback", f"t{thread}-{turn}-feedback",
                                     f"/api/v1/predictions/{prediction_id}/feedback",
                                     {"actual": 40.0})
                outcome.prediction_id = prediction_id
                if outcome.status != 503:  # a 503 recorded nothing: post it again later
                    unlabelled.popleft()
            time.sleep(CLIENT_PAUSE)

    def __enter__(self) -> Self:
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(CLIENT_THREADS)]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=CLIENT_TIMEOUT + 5)

    def answered(self, *, kind: str, after: float, before: float = float("inf"),
                 status: int | None = None) -> list[Exchange]:
        """Exchanges of `kind` started after `after` and finished before `before`."""
        return [e for e in list(self.exchanges) if e.kind == kind and e.started >= after
                and e.finished <= before and (status is None or e.status == status)]


def _logged(database: PostgresServer) -> tuple[dict[str, list[str]], set[str]]:
    """The module database's prediction log: prediction ids by request id, and the ids
    that have an outcome."""
    by_request: dict[str, list[str]] = {}
    labelled = set()
    with psycopg.connect(database.url) as conn:
        rows = conn.execute("SELECT request_id, prediction_id::text, actual_at IS NOT NULL "
                            "FROM predictions_predictionlog WHERE model_name = %s",
                            [MODEL]).fetchall()
    for request_id, prediction_id, has_outcome in rows:
        by_request.setdefault(request_id, []).append(prediction_id)
        if has_outcome:
            labelled.add(prediction_id)
    return by_request, labelled


def _assert_unavailable(exchange: Exchange) -> None:
    assert exchange.status == 503, (exchange.kind, exchange.status, exchange.body[:300])
    error = exchange.json()["error"]
    assert set(error) == {"code", "message", "request_id", "details"}
    assert error["code"] == "database_unavailable"
    assert error["request_id"] == exchange.request_id
    assert exchange.retry_after is not None


def test_requests_fail_cleanly_while_the_database_is_down_and_recover_after(stack):
    with Traffic(port=stack.port, key=stack.key) as traffic:
        began = time.monotonic()
        wait_for(lambda: len(traffic.answered(kind="feedback", after=began, status=200)) >= 3,
                 timeout=WAIT, what="answered predictions and outcomes before the restart")

        stopping = time.monotonic()
        stack.database.stop()  # fast shutdown: every open session is ended
        down = time.monotonic()
        time.sleep(MIN_DOWNTIME)
        wait_for(lambda: len(traffic.answered(kind="predict", after=down)) >= 10
                 and len(traffic.answered(kind="feedback", after=down)) >= 3,
                 timeout=WAIT, what="predictions and outcomes posted while the database is down")
        restarting = time.monotonic()
        stack.database.start()
        up = time.monotonic()
        wait_for(lambda: len(traffic.answered(kind="predict", after=up)) >= 10
                 and len(traffic.answered(kind="feedback", after=up)) >= 3,
                 timeout=WAIT, what="predictions and outcomes after the restart")
    exchanges = list(traffic.exchanges)

    # No hang, no dropped connection, no other error, whatever the moment.
    assert {e.status for e in exchanges} <= {200, 503}, [
        (e.kind, e.status, e.body[:300]) for e in exchanges if e.status not in (200, 503)]
    for exchange in exchanges:
        assert exchange.echoed_request_id == exchange.request_id
        assert b"Traceback" not in exchange.body
        if exchange.status != 200:
            _assert_unavailable(exchange)
    assert traffic.answered(kind="predict", after=began, before=stopping, status=503) == []
    # While it was down: every request failed, cleanly.
    outage = [e for e in exchanges if e.started >= down and e.finished <= restarting]
    assert {e.kind for e in outage} == {"predict", "feedback"}
    for exchange in outage:
        _assert_unavailable(exchange)
    # Once it was back: the same workers answer everything again.
    assert {e.status for e in exchanges if e.started >= up} == {200}
    log = stack.gunicorn_log()
    assert stack.server.poll() is None
    assert log.count("Booting worker") == 2, log[-3000:]  # none died or was replaced

    # The log holds exactly what was answered: one row per answered prediction, none for
    # a request answered 503, an outcome exactly where one was accepted.
    by_request, labelled = _logged(stack.database)
    answered = {e.request_id: [e.prediction_id] for e in exchanges
                if e.kind == "predict" and e.status == 200}
    assert by_request == answered
    assert labelled == {e.prediction_id for e in exchanges
                        if e.kind == "feedback" and e.status == 200}


def test_idle_workers_answer_after_a_restart_without_a_failed_request(stack):
    """A restart while no request is running leaves each worker a dead persistent
    connection; the first request after it must not fail on it."""
    with Traffic(port=stack.port, key=stack.key) as traffic:  # every worker connects
        began = time.monotonic()
        wait_for(lambda: len(traffic.answered(kind="predict", after=began, status=200)) >= 10,
                 timeout=WAIT, what="answered predictions before the restart")
    stack.database.stop()
    stack.database.start()
    up = time.monotonic()

    with Traffic(port=stack.port, key=stack.key) as traffic:
        wait_for(lambda: len(traffic.answered(kind="predict", after=up)) >= 10,
                 timeout=WAIT, what="predictions after the restart")
    assert {e.status for e in traffic.exchanges} == {200}, [
        (e.status, e.body[:200]) for e in traffic.exchanges if e.status != 200]
