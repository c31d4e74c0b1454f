"""The Celery app: configured from Django settings (CELERY_*), tasks autodiscovered."""

import os

from celery import Celery

from pulselytics.settings import settings_module

os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module())

app = Celery("pulselytics")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
