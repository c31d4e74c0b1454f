"""Warm start under a real gunicorn (docs/deploy.md#warm-start): each worker loads every live
version before it accepts a request, so the first requests after start load no model.

The proof is the workers' own count of model loads (`pulselytics_model_loads_total`, summed
over the workers by /metrics), read before and after the first requests.
"""

import contextlib
import http.client
import json
import os
import subprocess
import sys
import time

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from predictions import services as serving
from tests.factories import register_deployed_version
from tests.servers import app_server_env, free_port, process_group_stop

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("groups_restored_after_module", "governance_groups")]

MODEL = "engagement-likes"
WORKERS = 2
START_TIMEOUT = 60


def _request(port: int, method: str, path: str, body: dict | None = None,
             key: str = "") -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Api-Key {key}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _model_loads(port: int) -> dict[str, float]:
    """Loads so far per version, summed over the workers."""
    status, payload = _request(port, "GET", "/metrics")
    assert status == 200
    return {sample.labels["version"]: sample.value
            for family in text_string_to_metric_families(payload.decode())
            if family.name == "pulselytics_model_loads"
            for sample in family.samples if sample.name == "pulselytics_model_loads_total"}


def _wait_until(condition, server: subprocess.Popen, log, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert server.poll() is None, f"gunicorn exited during start-up\n{log.read_text()}"
        with contextlib.suppress(OSError):
            if condition():
                return
        time.sleep(0.2)
    pytest.fail(f"{what} not within {START_TIMEOUT} s\n{log.read_text()[-3000:]}")


def test_first_requests_after_start_load_no_model(people, artifact_dir, tmp_path):
    versions = [register_deployed_version(**people, slope=1.0),
                register_deployed_version(**people, slope=2.0, traffic=30),
                register_deployed_version(**people, slope=3.0, shadow=True)]
    _, key = serving.api_key_create(name="warm-start")
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    port, log = free_port(), tmp_path / "gunicorn.log"
    with open(log, "wb") as log_file:
        server = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "gunicorn"),
             "pulselytics.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", str(WORKERS), "--no-control-socket"],
            cwd=settings.BASE_DIR, start_new_session=True, stdout=log_file,
            stderr=subprocess.STDOUT, env=app_server_env(
                artifact_dir, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), LOG_LEVEL="INFO"),
        )
    try:
        _wait_until(lambda: _request(port, "GET", "/api/v1/health")[0] == 200, server, log,
                    "an answer to /api/v1/health")
        every_worker_warm = {version.version: float(WORKERS) for version in versions}
        _wait_until(lambda: _model_loads(port) == every_worker_warm, server, log,
                    "every live version loaded by every worker")
        warm = _model_loads(port)

        statuses = [_request(port, "POST", f"/api/v1/models/{MODEL}/predict",
                             {"instances": [{"followers": 10.0, "hashtags": 2}],
                              "routing_key": f"user-{i}"}, key)[0]
                    for i in range(10)]
        after = _model_loads(port)
    finally:
        process_group_stop(server)

    assert statuses == [200] * 10, log.read_text()[-3000:]
    assert after == warm == every_worker_warm
