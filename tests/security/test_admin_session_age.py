"""An admin session ends 8 hours after login unless SESSION_COOKIE_AGE_SECONDS says otherwise
(docs/operations.md#admin-login)."""

import secrets

import pytest

from tests.factories import UserFactory
from tests.test_project import production_env, run_python

EIGHT_HOURS = 8 * 60 * 60


def test_admin_login_cookie_expires_after_8_hours(client, db):
    UserFactory(username="rita")

    response = client.post("/admin/login/?next=/admin/",
                           {"username": "rita", "password": "pw", "next": "/admin/"})

    assert response.status_code == 302
    assert response.cookies["sessionid"]["max-age"] == EIGHT_HOURS


@pytest.mark.parametrize(("configured", "expected"), [({}, EIGHT_HOURS),
                                                      ({"SESSION_COOKIE_AGE_SECONDS": "3600"},
                                                       3600)])
def test_production_session_age_follows_session_cookie_age_seconds(tmp_path, configured,
                                                                   expected):
    env = production_env(tmp_path, SECRET_KEY=secrets.token_urlsafe(50),
                         ALLOWED_HOSTS="pulselytics.example",
                         AUDIT_HMAC_KEY=secrets.token_urlsafe(32), **configured)

    result = run_python("""
        import pulselytics.wsgi
        from django.conf import settings
        print(settings.SESSION_COOKIE_AGE)
    """, env)

    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) == expected
