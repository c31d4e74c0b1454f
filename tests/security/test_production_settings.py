"""Production settings (docs/deploy.md) do what `manage.py check --deploy` only reads off them.

That the check itself is clean (exit 0, no warning, `--fail-level WARNING`) with
PULSELYTICS_ENV=production, a 50+ character SECRET_KEY, ALLOWED_HOSTS and an SQLite
database in a temporary folder, and that production refuses to start without SECRET_KEY
or ALLOWED_HOSTS, is tested in tests/test_project.py
(test_production_passes_the_deploy_checks, test_production_refuses_to_start_without_
secret_key_and_allowed_hosts). Here a fresh interpreter with the same environment serves
requests: plain HTTP is redirected to HTTPS, HTTPS answers carry HSTS and the hardening
headers, the proxy's X-Forwarded-Proto is trusted, an unknown Host is refused.
"""

import json
import os
import secrets
import subprocess
import sys
import textwrap

from django.conf import settings

PROBE = """
    import json
    import django
    django.setup()
    from django.conf import settings
    from django.test import Client

    client = Client()
    health = "/api/v1/health"
    plain = client.get(health, HTTP_HOST="pulselytics.example")
    secure = client.get(health, HTTP_HOST="pulselytics.example", secure=True)
    proxied = client.get(health, HTTP_HOST="pulselytics.example",
                         HTTP_X_FORWARDED_PROTO="https")
    forged_host = client.get(health, HTTP_HOST="evil.example", secure=True)
    print(json.dumps({
        "plain": [plain.status_code, plain.get("Location")],
        "secure": [secure.status_code, secure.get("Strict-Transport-Security"),
                   secure.get("X-Content-Type-Options"), secure.get("X-Frame-Options"),
                   secure.get("Referrer-Policy")],
        "proxied": proxied.status_code,
        "forged_host": forged_host.status_code,
        "cookies_secure": [settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE],
        "debug": settings.DEBUG,
    }))
"""


def production_probe(tmp_path) -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PULSELYTICS_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "pulselytics.settings.production",
        "PULSELYTICS_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "pulselytics.example",
        "AUDIT_HMAC_KEY": secrets.token_urlsafe(32),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'production.sqlite3'}",
    }
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(PROBE)],
                            cwd=settings.BASE_DIR, env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_serves_https_only_with_hardening_headers(tmp_path):
    probe = production_probe(tmp_path)

    assert probe["plain"] == [301, "https://pulselytics.example/api/v1/health"]
    assert probe["secure"] == [200, "max-age=31536000; includeSubDomains; preload", "nosniff",
                               "DENY", "same-origin"]
    assert probe["proxied"] == 200
    assert probe["forged_host"] == 400
    assert probe["cookies_secure"] == [True, True]
    assert probe["debug"] is False
