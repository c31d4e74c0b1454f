"""`manage.py check --deploy` fails on what production refuses to start with
(core/unsafe_settings.py), so an operator sees it under any settings module."""

from django.conf import settings
from django.core.checks import Error, Tags, register

from core.unsafe_settings import unsafe_settings


@register(Tags.security, deploy=True)
def unsafe_settings_check(app_configs, **kwargs) -> list[Error]:
    return [Error(f"{reason}: production refuses to start with it",
                  hint="docs/deploy.md#refused-settings", id="core.E001")
            for reason in unsafe_settings(settings)]
