"""Production refuses unsafe settings (docs/deploy.md#refused-settings): DEBUG on, an alert
webhook URL whose secret is shorter than 32 bytes, no AUDIT_HMAC_KEY.

Each is tried against the real entry points in a fresh process with a clean production
environment: `manage.py check --deploy`, and gunicorn started as docs/deploy.md starts it,
which must exit non-zero with the reason before its worker serves anything. The deploy
check names the same settings under the development settings too (core/checks.py).
"""

import contextlib
import http.client
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import free_port, process_group_stop
from tests.test_project import ROOT, clean_env, manage, production_env

HOOK = "https://hooks.example/pulselytics"
SHORT_SECRET = "ALERT_WEBHOOK_URL is set but ALERT_WEBHOOK_SECRET is shorter than 32 bytes"
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


@pytest.mark.parametrize(("unsafe", "refusal", "check_error"), UNSAFE)
def test_check_deploy_fails_under_production_with_an_unsafe_setting(tmp_path, unsafe, refusal,
                                                                    check_error):
    env = production_env(tmp_path, **safe_settings(tmp_path) | unsafe)

    result = manage("check", "--deploy", env=env)

    assert result.returncode != 0
    assert refusal in result.stderr


@pytest.mark.parametrize(("unsafe", "refusal", "check_error"), UNSAFE)
def test_check_deploy_names_an_unsafe_setting_under_the_development_settings(
        tmp_path, unsafe, refusal, check_error):
    env = clean_env(tmp_path, **safe_settings(tmp_path) | unsafe)

    result = manage("check", "--deploy", env=env)

    assert result.returncode != 0
    assert f"(core.E001) {check_error}: production refuses to start with it" in result.stderr


def test_check_deploy_under_the_development_settings_has_no_error_when_all_is_safe(tmp_path):
    result = manage("check", "--deploy", env=clean_env(tmp_path, **safe_settings(tmp_path)))

    assert result.returncode == 0, result.stderr
    assert "core.E001" not in result.stdout + result.stderr


@pytest.mark.parametrize(("unsafe", "refusal", "check_error"), UNSAFE)
def test_server_refuses_to_start_with_an_unsafe_setting(tmp_path, unsafe, refusal,
                                                        check_error):
    log = tmp_path / "gunicorn.log"
    server, _ = gunicorn(production_env(tmp_path, **safe_settings(tmp_path) | unsafe), log)
    try:
        returncode = server.wait(timeout=START_TIMEOUT)
    finally:
        process_group_stop(server)

    output = log.read_text()
    assert returncode != 0
    assert refusal in output
    assert "Worker failed to boot" in output  # its only worker never got to serve


def test_server_serves_with_safe_production_settings(tmp_path):
    server, port = gunicorn(production_env(tmp_path, **safe_settings(tmp_path)),
                            tmp_path / "gunicorn.log")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while health_status(port) is None and server.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        status = health_status(port)
    finally:
        process_group_stop(server)

    assert status == 200, (tmp_path / "gunicorn.log").read_text()
