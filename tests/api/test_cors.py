"""CORS (docs/api.md#browser-clients): browsers on the origins of CORS_ALLOWED_ORIGINS may
call /api/; nobody else gets CORS headers, and the admin never does."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as loaded_settings

ROOT = Path(__file__).resolve().parent.parent.parent
DASHBOARD = "https://dashboard.example.com"
PREDICT_URL = "/api/v1/models/engagement-likes/predict"


@pytest.fixture
def dashboard_allowed(settings):
    settings.CORS_ALLOWED_ORIGINS = [DASHBOARD]


def preflight(client, path: str, origin: str):
    return client.options(path, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})


def cors_headers(response) -> dict[str, str]:
    return {name.lower(): value for name, value in response.headers.items()
            if name.lower().startswith("access-control-")}


def test_preflight_from_an_allowed_origin_gets_the_allow_headers(client, dashboard_allowed):
    response = preflight(client, PREDICT_URL, DASHBOARD)

    assert response.status_code == 200
    headers = cors_headers(response)
    assert headers["access-control-allow-origin"] == DASHBOARD
    allowed_headers = {name.strip() for name in headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key"} <= allowed_headers
    assert "POST" in headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in headers


def test_answer_to_an_allowed_origin_exposes_the_request_id(client, dashboard_allowed):
    response = client.get("/api/v1/health", headers={"Origin": DASHBOARD})

    assert response.status_code == 200
    headers = cors_headers(response)
    assert headers["access-control-allow-origin"] == DASHBOARD
    assert "x-request-id" in headers["access-control-expose-headers"]


def test_preflight_from_another_origin_gets_no_cors_headers(client, dashboard_allowed):
    response = preflight(client, PREDICT_URL, "https://evil.example.org")

    assert cors_headers(response) == {}


@pytest.mark.django_db
def test_admin_gets_no_cors_headers_even_from_an_allowed_origin(client, dashboard_allowed):
    for response in (preflight(client, "/admin/login/", DASHBOARD),
                     client.get("/admin/login/", headers={"Origin": DASHBOARD})):
        assert cors_headers(response) == {}


def test_no_origin_is_allowed_by_default(client):
    assert loaded_settings.CORS_ALLOWED_ORIGINS == []

    response = preflight(client, PREDICT_URL, DASHBOARD)

    assert cors_headers(response) == {}


@pytest.mark.parametrize(("value", "expected"), [
    (None, []),
    ("https://a.example.com, https://b.example.com:8443",
     ["https://a.example.com", "https://b.example.com:8443"]),
])
def test_allowed_origins_come_from_the_environment(tmp_path, value, expected):
    # In a clean process: the suite's own settings module is not the one a host loads.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PULSELYTICS_VAR_DIR": str(tmp_path),
           "DJANGO_SETTINGS_MODULE": "pulselytics.settings.base"}
    if value is not None:
        env["CORS_ALLOWED_ORIGINS"] = value
    read = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; "
                               "print(','.join(settings.CORS_ALLOWED_ORIGINS))"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)

    assert [origin for origin in read.stdout.strip().split(",") if origin] == expected
