from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class CoreConfig(AppConfig):
    """core as an app: the deploy system check and the staff account command
    (add_totp_device); it still owns no table."""

    name = "core"

    def ready(self):
        from core import checks  # noqa: F401 - registers the deploy check


class AdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the project's admin site (two-factor login when
    ADMIN_REQUIRE_2FA is on); INSTALLED_APPS names it in place of django.contrib.admin."""

    default = False  # core's own config stays CoreConfig
    default_site = "core.admin_login.AdminSite"
