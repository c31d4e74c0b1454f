"""Logging in to the admin (docs/operations.md#admin-login): the lockout after repeated failures
(django-axes calls the two hooks below) and the optional TOTP second factor for staff
(django-otp), switched by ADMIN_REQUIRE_2FA at request time.
"""

from axes.helpers import get_lockout_message
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.errors import ValidationError


class AdminSite(admin.AdminSite):
    """Django's admin site; with ADMIN_REQUIRE_2FA on it acts as django-otp's OTPAdminSite: the
    login asks for a TOTP token besides the password, and a session that was not verified by
    one is not let in."""

    site_header = "Pulselytics"
    site_title = "Pulselytics"
    index_title = "Model governance"

    @property
    def login_form(self):
        return OTPAdminAuthenticationForm if settings.ADMIN_REQUIRE_2FA else None

    @property
    def login_template(self):
        return OTPAdminSite.login_template if settings.ADMIN_REQUIRE_2FA else None

    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and (
            not settings.ADMIN_REQUIRE_2FA or request.user.is_verified())


def admin_login_locked_out(request: HttpRequest, original_response: HttpResponse,
                           credentials: dict) -> TemplateResponse:
    """AXES_LOCKOUT_CALLABLE: the admin's login page again (the only view that logs people
    in), with the lockout as its one error in place of the "wrong password" the refused
    attempt got; 429. Rendered here: the response middleware that follows reads its content."""
    context = original_response.context_data
    context["form"].errors.clear()
    context["form"].add_error(None, get_lockout_message())
    return TemplateResponse(request, original_response.template_name, context,
                            status=429).render()


def client_ip_address(request: HttpRequest) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: the address a login comes from. Behind the TLS proxy every
    peer is the proxy, so the last entry of ADMIN_LOCKOUT_CLIENT_IP_HEADER (the one the proxy
    itself wrote) is taken when the header is configured and present."""
    header = settings.ADMIN_LOCKOUT_CLIENT_IP_HEADER
    forwarded = request.META.get(f"HTTP_{header.upper().replace('-', '_')}", "") if header else ""
    entries = [entry.strip() for entry in forwarded.split(",") if entry.strip()]
    # A request made in-process has no REMOTE_ADDR; axes' own lookup gives None for it too.
    return entries[-1] if entries else request.META.get("REMOTE_ADDR")


def totp_device_add(*, user: AbstractBaseUser, name: str) -> TOTPDevice:
    """A confirmed TOTP device for a staff user; its `config_url` (otpauth://) holds the
    secret, for an authenticator app."""
    if not user.is_staff:
        raise ValidationError(f"{user.get_username()} is not staff: only staff log in to the "
                              "admin", details={"username": user.get_username()})
    return TOTPDevice.objects.create(user=user, name=name, confirmed=True)
