"""The admin login lockout in headless Chromium (docs/operations.md#admin-login): wrong
passwords typed into the real login form ADMIN_LOCKOUT_FAILURES times, then the right one,
which is refused with the lockout message on the login page.

The rules around it (limits, other users and addresses, the proxy's header, unlocking) are
tested through the test client in tests/security/test_admin_lockout.py.
"""

import pytest
from django.conf import settings

from tests.factories import UserFactory

pytestmark = [pytest.mark.chromium, pytest.mark.django_db(transaction=True)]


def submit_login(admin_browser, username: str, password: str) -> None:
    admin_browser.open("/admin/login/?next=/admin/")
    admin_browser.find("#id_username").send_keys(username)
    admin_browser.find("#id_password").send_keys(password)
    admin_browser.follow(admin_browser.find('#login-form [type="submit"]'))


def test_right_password_is_refused_after_the_configured_failures(admin_browser):
    UserFactory(username="rita")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        submit_login(admin_browser, "rita", "not-the-password")

    submit_login(admin_browser, "rita", "pw")

    assert [note.text for note in admin_browser.find_all(".errornote")] == [
        settings.AXES_COOLOFF_MESSAGE]
    assert admin_browser.find_all("#user-tools") == []  # nobody is logged in
    admin_browser.open("/admin/")
    assert admin_browser.find_all("#login-form")  # the admin still asks for a login
