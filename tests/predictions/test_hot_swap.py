"""Hot swap under load (docs/api.md#predict): gunicorn workers notice a deploy and a rollback made
from the command line within 5 s, without a restart and without failing a request.

Two versions of engagement-likes are trained on different demo data; v1 is the champion.
A real gunicorn (2 sync workers, the test's PostgreSQL database and artifact folder) serves
while client threads hammer /predict; `manage.py deploy` (v2) and then `manage.py rollback`
(back to v1) run as separate processes, as an operator would run them.
"""

import contextlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import pytest
from django.conf import settings

from demo import data as demo_data
from mlregistry import selectors
from mlregistry import services as registry
from predictions import services as serving
from tests.servers import app_server_env, free_port, process_group_stop
from training import services as training

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("groups_restored_after_module", "governance_groups")]

MODEL = "engagement-likes"
SWITCH_SECONDS = 5.0  # docs/api.md#predict: a deploy or rollback is noticed within 5 s
OBSERVE_AFTER_SWITCH = 1.5  # keep watching past the deadline: the new version must stay
CLIENT_THREADS = 3  # more than the workers, so both are kept busy
CLIENT_MAX_SECONDS = 60  # the load stops by itself whatever happens to the test
START_TIMEOUT = 30




@dataclass
class Answer:
    started: float
    status: int | str  # HTTP status, or the exception's name when there was no response
    version: str | None = None
    model_sha256: str | None = None
    value: float | None = None


@dataclass
class Hammer:
    """Client threads posting single-row predictions until told to stop (or a time limit)."""

    port: int
    key: str
    instance: dict
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        body = json.dumps({"instances": [self.instance]})
        headers = {"Authorization": f"Api-Key {self.key}", "Content-Type": "application/json"}
        deadline = time.monotonic() + CLIENT_MAX_SECONDS
        while not self.stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            # gunicorn's sync workers close every connection after the response.
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                conn.request("POST", f"/api/v1/models/{MODEL}/predict", body, headers)
                response = conn.getresponse()
                payload = response.read()
                answer = Answer(started, response.status)
                if response.status == 200:
                    prediction = json.loads(payload)["predictions"][0]
                    answer.version = prediction["version"]
                    answer.model_sha256 = prediction["model_sha256"]
                    answer.value = prediction["value"]
            except Exception as exc:  # noqa: BLE001 - every failure is recorded, none hidden
                answer = Answer(started, type(exc).__name__)
            finally:
                conn.close()
            self.answers.append(answer)  # list.append is atomic

    def __enter__(self) -> "Hammer":
        self.threads = [threading.Thread(target=self._run, daemon=True)
                        for _ in range(CLIENT_THREADS)]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=35)

    def between(self, start: float, end: float) -> list[Answer]:
        return [a for a in list(self.answers) if start <= a.started < end]


def _train(user, tmp_path, seed: int):
    data = tmp_path / f"posts-{seed}.csv"
    demo_data.demo_posts(seed=seed, n=800).to_csv(data, index=False)
    return training.model_train(recipe_name=MODEL, user=user, data_path=data, seed=seed)


def _approve(version, reviewer):
    failed = selectors.failed_gates(version)
    return registry.model_version_approve(
        version=version, user=reviewer, notes="hot swap test",
        override_justification="small test data" if failed else "",
    )


def _manage(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=settings.BASE_DIR,
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _wait_healthy(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert server.poll() is None, "gunicorn exited during start-up"
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                conn.request("GET", "/api/v1/health")
                if conn.getresponse().status == 200:
                    return
            finally:
                conn.close()
        time.sleep(0.2)
    pytest.fail(f"gunicorn did not answer /api/v1/health within {START_TIMEOUT} s")


def _assert_switched(hammer: Hammer, *, returned: float, until: float, to, away_from) -> None:
    """From `returned` + 5 s until `until`, every answer comes from `to`."""
    assert away_from.version != to.version
    settled = hammer.between(returned + SWITCH_SECONDS, until)
    assert len(settled) >= 5, "too few requests after the switch deadline"
    assert {(a.version, a.model_sha256) for a in settled} == {(to.version, to.model_sha256)}


def test_deploy_and_rollback_switch_live_workers_without_failing_a_request(
    data_scientist, reviewer, deployer, artifact_dir, tmp_path,
):
    v1 = _approve(_train(data_scientist, tmp_path, seed=1), reviewer)
    v2 = _approve(_train(data_scientist, tmp_path, seed=2), reviewer)
    registry.model_version_deploy(version=v1, user=deployer, notes="hot swap test: v1")
    _, key = serving.api_key_create(name="hot-swap")
    instance = {name: value.item() if hasattr(value, "item") else value
                for name, value in demo_data.demo_posts(seed=3, n=400).iloc[0].items()
                if name in {f["name"] for f in v1.feature_schema["features"] if f["input"]}}
    env = app_server_env(artifact_dir, REGISTRY_POLL_SECONDS="1", LOG_LEVEL="WARNING")
    port = free_port()
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as log_file:
        server = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "gunicorn"),
             "pulselytics.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2",
             "--graceful-timeout", "5", "--no-control-socket"],
            cwd=settings.BASE_DIR, env=env, start_new_session=True,
            stdout=log_file, stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(port, server)
        with Hammer(port=port, key=key, instance=instance) as hammer:
            deadline = time.monotonic() + START_TIMEOUT
            while not hammer.answers and time.monotonic() < deadline:
                time.sleep(0.05)
            _manage(env, "deploy", MODEL, v2.version, "--user", deployer.username)
            deployed = time.monotonic()
            time.sleep(SWITCH_SECONDS + OBSERVE_AFTER_SWITCH)
            rolling_back = time.monotonic()
            _manage(env, "rollback", MODEL, "--user", deployer.username, "--reason", "hot swap")
            rolled_back = time.monotonic()
            time.sleep(SWITCH_SECONDS + OBSERVE_AFTER_SWITCH)
        answers = list(hammer.answers)
    finally:
        process_group_stop(server)

    failed = [a for a in answers if a.status != 200]
    assert not failed, (f"{len(failed)} of {len(answers)} requests failed: {failed[:5]}\n"
                        f"{log.read_text(errors='replace')[-2000:]}")
    assert answers[0].version == v1.version
    values = {version: {a.value for a in answers if a.version == version}
              for version in (v1.version, v2.version)}
    assert all(len(v) == 1 for v in values.values()) and values[v1.version] != values[v2.version]
    _assert_switched(hammer, returned=deployed, until=rolling_back, to=v2, away_from=v1)
    _assert_switched(hammer, returned=rolled_back, until=float("inf"), to=v1, away_from=v2)
    assert selectors.model_production_version(model=v1.model).pk == v1.pk
