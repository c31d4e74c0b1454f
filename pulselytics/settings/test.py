"""Test settings: PostgreSQL when its binaries are here (always in CI), else SQLite."""

from tests.servers import test_database_url

from .base import *  # noqa: F403
from .base import database_config

_postgres_url = test_database_url()
DATABASES = {"default": database_config(_postgres_url or "sqlite:///:memory:")}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
