"""Test settings: PostgreSQL when the suite started one, else SQLite.

tests/database_plugin.py (a pytest plugin, `-p` in pyproject.toml) starts a throwaway
PostgreSQL before Django loads and puts its URL in TEST_DATABASE_URL; child processes
inherit it from the environment. These settings read only the environment.
"""

import os

from .base import *  # noqa: F403 - these settings extend the base settings
from .base import database_config

DATABASES = {
    "default": database_config(os.environ.get("TEST_DATABASE_URL") or "sqlite:///:memory:")
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
