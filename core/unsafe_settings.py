"""What production refuses to run with (docs/deploy.md#refused-settings).

One rule, applied twice: by pulselytics/settings/production.py before anything serves, and
by the deploy system check (core/checks.py) that `manage.py check --deploy` runs under any
settings. It reads only the settings it is given and imports nothing of Django, so the
settings module can call it while it is being loaded.
"""

from typing import Any

# Shortest HMAC key, in bytes, a signed webhook may have.
WEBHOOK_SECRET_MIN_BYTES = 32
# Every signed webhook as (URL setting, secret setting): a URL that is set needs its secret.
SIGNED_WEBHOOKS = [
    ("ALERT_WEBHOOK_URL", "ALERT_WEBHOOK_SECRET"),
    ("REGISTRY_WEBHOOK_URL", "REGISTRY_WEBHOOK_SECRET"),
]


def unsafe_settings(settings: Any) -> list[str]:
    """What makes `settings` (any object holding them as attributes) unsafe for production,
    one line each; empty when nothing does."""
    unsafe = []
    if settings.DEBUG:
        unsafe.append("DEBUG is on")
    if not settings.AUDIT_HMAC_KEY:
        unsafe.append("AUDIT_HMAC_KEY is not set")
    for url_setting, secret_setting in SIGNED_WEBHOOKS:
        secret = getattr(settings, secret_setting)
        if getattr(settings, url_setting) and len(secret.encode()) < WEBHOOK_SECRET_MIN_BYTES:
            unsafe.append(f"{url_setting} is set but {secret_setting} is shorter than "
                          f"{WEBHOOK_SECRET_MIN_BYTES} bytes")
    return unsafe
