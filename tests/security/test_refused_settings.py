"""Production refuses unsafe settings (docs/deploy.md#refused-settings): DEBUG on, an alert
webhook URL whose secret is shorter than 32 bytes, no AUDIT_HMAC_KEY.

Each is tried against the real entry points in a fresh process with a clean production
environment: `manage.py check --deploy`, and gunicorn started as docs/deploy.md starts it,
which must exit non-zero with the reason before its worker serves anything. The deploy
check names the same settings under the development settings too (core/checks.py).

Each process takes seconds to import the project and the tests only wait for it, so
`processes` runs every test's process in the background, two at a time (the machine's
second core), from the module's first test on; each test reads its own process' result.
"""

import contextlib
import http.client
import os
import secrets
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.servers import free_port, process_group_stop
from tests.test_project import ROOT, clean_env, manage, production_env

HOOK = "https://hooks.example/pulselytics"
SHORT_SECRET = "ALERT_WEBHOOK_URL is set but ALERT_WEBHOOK_SECRET is shorter than 32 bytes"
SHORT_REGISTRY_SECRET = ("REGISTRY_WEBHOOK_URL is set but REGISTRY_WEBHOOK_SECRET is shorter "
                         "than 32 bytes")
# A ceiling for a slow machine, not a speed test.
START_TIMEOUT = 120

# (overrides of a safe environment, production's refusal, the deploy check's error)
UNSAFE = [
    pytest.param({"DEBUG": "1"}, "production refuses unsafe settings: DEBUG is on",
                 "DEBUG is on", id="debug-on"),
    pytest.param({"ALERT_WEBHOOK_URL": HOOK, "ALERT_WEBHOOK_SECRET": ""},
                 f"production refuses unsafe settings: {SHORT_SECRET}", SHORT_SECRET,
                 id="webhook-without-secret"),
    pytest.param({"ALERT_WEBHOOK_URL": HOOK, "ALERT_WEBHOOK_SECRET": "s" * 31},
                 f"production refuses unsafe settings: {SHORT_SECRET}", SHORT_SECRET,
                 id="webhook-secret-of-31-bytes"),
    pytest.param({"REGISTRY_WEBHOOK_URL": HOOK, "REGISTRY_WEBHOOK_SECRET": "s" * 31},
                 f"production refuses unsafe settings: {SHORT_REGISTRY_SECRET}",
                 SHORT_REGISTRY_SECRET, id="registry-webhook-secret-of-31-bytes"),
    pytest.param({"AUDIT_HMAC_KEY": ""}, "production needs AUDIT_HMAC_KEY in the environment",
                 "AUDIT_HMAC_KEY is not set", id="audit-key-missing"),
]


def safe_settings(tmp_path: Path) -> dict[str, str]:
    """What production starts with: its secrets, and an alert webhook with a 32-byte secret."""
    return {"SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "pulselytics.example",
            "AUDIT_HMAC_KEY": secrets.token_urlsafe(32),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'production.sqlite3'}",
            "ALERT_WEBHOOK_URL": HOOK, "ALERT_WEBHOOK_SECRET": "s" * 32}


def gunicorn(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    """The web server as docs/deploy.md runs it (one worker, on loopback)."""
    port = free_port()
    with open(log, "wb") as log_file:
        server = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "gunicorn"),
             "pulselytics.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1",
             "--timeout", "30", "--graceful-timeout", "30", "--no-control-socket"],
            cwd=ROOT, env=env, start_new_session=True, stdout=log_file,
            stderr=subprocess.STDOUT)
    return server, port


def health_status(port: int) -> int | None:
    """/api/v1/health as the TLS proxy forwards it; None while nothing answers."""
    with contextlib.suppress(OSError):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/api/v1/health", headers={
                "Host": "pulselytics.example", "X-Forwarded-Proto": "https"})
            return conn.getresponse().status
        finally:
            conn.close()
    return None


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return manage("check", "--deploy", env=env)


def server_refusal(env: dict[str, str], log: Path) -> tuple[int, str]:
    """Start gunicorn with `env`; its exit code and output once it gave up by itself."""
    server, _ = gunicorn(env, log)
    try:
        returncode = server.wait(timeout=START_TIMEOUT)
    finally:
        process_group_stop(server)
    return returncode, log.read_text()


def server_health(env: dict[str, str], log: Path) -> tuple[int | None, str]:
    """Start gunicorn with `env`; the status of /api/v1/health once it answers, and its log."""
    server, port = gunicorn(env, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while health_status(port) is None and server.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        status = health_status(port)
    finally:
        process_group_stop(server)
    return status, log.read_text()


def unsafe_key(unsafe: dict[str, str]) -> tuple:
    return tuple(sorted(unsafe.items()))


@pytest.fixture(scope="module")
def processes(tmp_path_factory):
    """Every test's process, started in the background two at a time: (kind, unsafe) -> a
    future of its result. Each process has its own folder (database, log)."""
    jobs = {}  # in the order the tests ask for them
    for kind in ("production-check", "development-check", "server"):
        for unsafe in [*(param.values[0] for param in UNSAFE), {}]:
            if unsafe or kind != "production-check":
                jobs[kind, unsafe_key(unsafe)] = (kind, unsafe,
                                                  tmp_path_factory.mktemp("refused-settings"))

    def run(kind: str, unsafe: dict[str, str], folder: Path):
        if kind == "development-check":
            return check_deploy(clean_env(folder, **safe_settings(folder) | unsafe))
        env = production_env(folder, **safe_settings(folder) | unsafe)
        if kind == "production-check":
            return check_deploy(env)
        serve = server_refusal if unsafe else server_health
        return serve(env, folder / "gunicorn.log")

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="refused-settings") as pool:
        futures = {key: pool.submit(run, *job) for key, job in jobs.items()}
        yield futures
        for future in futures.values():
            future.cancel()


def result_of(processes: dict[tuple, Future], kind: str, unsafe: dict[str, str]):
    return processes[kind, unsafe_key(unsafe)].result(timeout=10 * START_TIMEOUT)


@pytest.mark.parametrize(("unsafe", "refusal", "check_error"), UNSAFE)
def test_check_deploy_fails_under_production_with_an_unsafe_setting(processes, unsafe, refusal,
                                                                    check_error):
    result = result_of(processes, "production-check", unsafe)

    assert result.returncode != 0
    assert refusal in result.stderr


@pytest.mark.parametrize(("unsafe", "refusal", "check_error"), UNSAFE)
def test_check_deploy_names_an_unsafe_setting_under_the_development_settings(
        processes, unsafe, refusal, check_error):
    result = result_of(processes, "development-check", unsafe)

    assert result.returncode != 0
    assert f"(core.E001) {check_error}: production refuses to start with it" in result.stderr


def test_check_deploy_under_the_development_settings_has_no_error_when_all_is_safe(processes):
    result = result_of(processes, "development-check", {})

    assert result.returncode == 0, result.stderr
    assert "core.E001" not in result.stdout + result.stderr


@pytest.mark.parametrize(("unsafe", "refusal", "check_error"), UNSAFE)
def test_server_refuses_to_start_with_an_unsafe_setting(processes, unsafe, refusal,
                                                        check_error):
    returncode, output = result_of(processes, "server", unsafe)

    assert returncode != 0
    assert refusal in output
    assert "Worker failed to boot" in output  # its only worker never got to serve


def test_server_serves_with_safe_production_settings(processes):
    status, log = result_of(processes, "server", {})

    assert status == 200, log
