"""Production settings: base plus the HTTPS hardening and the start-up checks.

Loaded when PULSELYTICS_ENV=production (pulselytics.settings.settings_module(), which every entry
point uses). Refuses to start without SECRET_KEY, ALLOWED_HOSTS and AUDIT_HMAC_KEY in the
environment, and with any setting core.unsafe_settings names (DEBUG on, a webhook without a
strong secret): docs/deploy.md#refused-settings.
"""

import os
import sys

from django.core.exceptions import ImproperlyConfigured

from core.unsafe_settings import unsafe_settings

from .base import *  # noqa: F403 - these settings extend the base settings
from .base import env_bool, env_list

missing = [name for name in ("SECRET_KEY", "ALLOWED_HOSTS", "AUDIT_HMAC_KEY")
           if not os.environ.get(name)]
if missing:
    raise ImproperlyConfigured(f"production needs {', '.join(missing)} in the environment")

IS_PRODUCTION = True

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = True
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Banks separate approving from deploying: on unless explicitly switched off.
REQUIRE_SEPARATE_DEPLOYER = env_bool("REQUIRE_SEPARATE_DEPLOYER", default=True)

# Last, so that it judges the settings production runs with: this module as loaded so far.
unsafe = unsafe_settings(sys.modules[__name__])
if unsafe:
    raise ImproperlyConfigured(f"production refuses unsafe settings: {'; '.join(unsafe)}")
