"""Two-factor admin login for staff (docs/operations.md#admin-login): with ADMIN_REQUIRE_2FA
on, the admin's login form asks for a TOTP token besides the password (django-otp), and
only a session verified by one gets in; `manage.py add_totp_device` gives a staff user the
device, printing its otpauth:// URI once.

Tokens are computed with django-otp's TOTP from the device's key, as an authenticator app
does from the URI.
"""

from base64 import b32decode
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.admin_login import totp_device_add
from tests.factories import UserFactory

LOGIN = "/admin/login/?next=/admin/"


def log_in(client: Client, username: str, *, device: TOTPDevice | None = None,
           token: str = ""):
    """The login form as a staff user fills it in: the password, and (once the form lists the
    user's devices) the device chosen and its token."""
    return client.post(LOGIN, {"username": username, "password": "pw",
                               "otp_device": device.persistent_id if device else "",
                               "otp_token": token, "next": "/admin/"})


def current_token(key: bytes) -> str:
    """What an authenticator app shows now for this key (django-otp's TOTP defaults)."""
    return f"{TOTP(key).token():06d}"


def admin_index_status(client: Client) -> int:
    return client.get("/admin/").status_code


@pytest.fixture
def two_factor(settings):
    settings.ADMIN_REQUIRE_2FA = True


@pytest.fixture
def rita(db):
    return UserFactory(username="rita")


@pytest.mark.usefixtures("two_factor")
def test_staff_without_a_device_cannot_log_in_with_the_password_alone(client, rita):
    response = log_in(client, "rita")

    assert response.status_code == 200  # the login page again, asking for the token
    assert b'name="otp_token"' in response.content
    assert admin_index_status(client) == 302


@pytest.mark.usefixtures("two_factor")
def test_session_without_a_verified_device_is_sent_to_the_login(client, rita):
    client.force_login(rita)  # a password login from before 2FA was switched on

    response = client.get("/admin/")

    assert (response.status_code, response["Location"]) == (302, LOGIN)


@pytest.mark.usefixtures("two_factor")
def test_staff_with_a_device_logs_in_with_a_correct_token(client, rita):
    device = totp_device_add(user=rita, name="phone")

    response = log_in(client, "rita", device=device, token=current_token(device.bin_key))

    assert (response.status_code, response["Location"]) == (302, "/admin/")
    assert admin_index_status(client) == 200


@pytest.mark.usefixtures("two_factor")
def test_staff_with_a_device_is_refused_with_a_wrong_token(client, rita):
    device = totp_device_add(user=rita, name="phone")
    wrong = f"{(int(current_token(device.bin_key)) + 1) % 10**6:06d}"

    log_in(client, "rita", device=device, token=wrong)

    assert admin_index_status(client) == 302


def test_without_the_switch_the_password_alone_logs_in(client, rita):
    totp_device_add(user=rita, name="phone")

    log_in(client, "rita")

    assert admin_index_status(client) == 200


def test_add_totp_device_prints_the_uri_an_authenticator_app_reads(rita):
    out = StringIO()

    call_command("add_totp_device", "rita", "--name", "phone", stdout=out)

    uri, secret_line = out.getvalue().splitlines()
    device = TOTPDevice.objects.get(user=rita)
    query = parse_qs(urlsplit(uri).query)
    assert uri.startswith("otpauth://totp/Pulselytics%3Arita?")
    assert b32decode(query["secret"][0]) == device.bin_key
    assert secret_line.endswith(query["secret"][0])
    assert (device.name, device.confirmed) == ("phone", True)


@pytest.mark.usefixtures("two_factor")
def test_the_device_add_totp_device_made_logs_in(client, rita):
    out = StringIO()
    call_command("add_totp_device", "rita", stdout=out)
    key = b32decode(parse_qs(urlsplit(out.getvalue().splitlines()[0]).query)["secret"][0])

    log_in(client, "rita", device=TOTPDevice.objects.get(user=rita), token=current_token(key))

    assert admin_index_status(client) == 200


def test_add_totp_device_refuses_a_user_who_is_not_staff(db):
    UserFactory(username="outsider", is_staff=False)

    with pytest.raises(CommandError, match="validation_error: outsider is not staff"):
        call_command("add_totp_device", "outsider", stdout=StringIO())
    assert not TOTPDevice.objects.exists()


def test_the_admin_never_shows_a_device_secret(client, rita):
    device = totp_device_add(user=rita, name="phone")
    client.force_login(UserFactory(username="root", is_superuser=True))

    config_page = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/config/")
    change_page = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/")

    assert config_page.status_code == 403
    assert change_page.status_code == 200
    assert device.key not in change_page.content.decode()
