"""The admin login locks a username out at one address after ADMIN_LOCKOUT_FAILURES failed
logins in a row (django-axes), with the lockout on the login page; other users and other
addresses are not affected (docs/operations.md#admin-login).

Through Django's test client, which posts the admin's real login form. The same in headless
Chromium: tests/browser/test_login_lockout.py.
"""

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import Client

from tests.factories import UserFactory
from tests.test_project import clean_env, run_python

LOGIN = "/admin/login/?next=/admin/"


def log_in(client: Client, username: str, password: str, **headers):
    return client.post(LOGIN, {"username": username, "password": password,
                               "next": "/admin/"}, **headers)


def fail(client: Client, username: str, times: int, **headers) -> None:
    for _ in range(times):
        log_in(client, username, "wrong", **headers)


def logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


@pytest.fixture
def rita(db):
    return UserFactory(username="rita")


def test_right_password_is_refused_after_the_configured_failures(client, rita):
    fail(client, "rita", django_settings.AXES_FAILURE_LIMIT)

    response = log_in(client, "rita", "pw")

    assert response.status_code == 429
    assert django_settings.AXES_COOLOFF_MESSAGE in response.content.decode()
    assert b'id="login-form"' in response.content  # the login page, not a bare refusal
    assert not logged_in(client)


def test_right_password_is_accepted_one_failure_before_the_limit(client, rita):
    fail(client, "rita", django_settings.AXES_FAILURE_LIMIT - 1)

    assert log_in(client, "rita", "pw").status_code == 302
    assert logged_in(client)


def test_failure_limit_follows_the_setting(client, rita, settings):
    settings.AXES_FAILURE_LIMIT = 2
    fail(client, "rita", 2)

    assert log_in(client, "rita", "pw").status_code == 429


def test_another_user_at_the_same_address_still_logs_in(client, rita):
    UserFactory(username="dana")
    fail(client, "rita", django_settings.AXES_FAILURE_LIMIT)

    assert log_in(client, "dana", "pw").status_code == 302
    assert logged_in(client)


def test_the_same_user_at_another_address_still_logs_in(client, rita):
    fail(client, "rita", django_settings.AXES_FAILURE_LIMIT, REMOTE_ADDR="198.51.100.7")

    assert log_in(client, "rita", "pw", REMOTE_ADDR="198.51.100.8").status_code == 302
    assert logged_in(client)


def test_behind_the_proxy_the_address_comes_from_the_configured_header(client, rita, settings):
    # Every request comes from the proxy's address; the proxy appends the client's.
    settings.ADMIN_LOCKOUT_CLIENT_IP_HEADER = "X-Forwarded-For"
    fail(client, "rita", django_settings.AXES_FAILURE_LIMIT,
         HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.7")

    locked = log_in(client, "rita", "pw", HTTP_X_FORWARDED_FOR="203.0.113.7")
    other_client = log_in(client, "rita", "pw", HTTP_X_FORWARDED_FOR="203.0.113.8")

    assert (locked.status_code, other_client.status_code) == (429, 302)


def test_an_operator_unlocks_a_user_with_axes_reset_username(client, rita):
    fail(client, "rita", django_settings.AXES_FAILURE_LIMIT)

    call_command("axes_reset_username", "rita", verbosity=0)

    assert log_in(client, "rita", "pw").status_code == 302


def test_lockout_is_configured_from_the_environment(tmp_path):
    result = run_python("""
        import django
        django.setup()
        from django.conf import settings
        print(settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME.total_seconds())
        print(settings.AXES_COOLOFF_MESSAGE)
    """, clean_env(tmp_path, ADMIN_LOCKOUT_FAILURES="3", ADMIN_LOCKOUT_COOLOFF_MINUTES="30"))

    assert result.returncode == 0, result.stderr
    limits, message = result.stdout.strip().splitlines()
    assert limits == "3 1800.0"
    assert message.endswith("Try again in 30 minutes.")
