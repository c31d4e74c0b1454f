"""Settings of a Celery worker whose trainings block in a lifecycle hook
(tests/monitoring/test_retrain_worker.py kills it mid-training)."""

from pulselytics.settings.base import *  # noqa: F403 - settings extend the base settings
from pulselytics.settings.base import PULSELYTICS_LIFECYCLE_HOOKS

PULSELYTICS_LIFECYCLE_HOOKS = [*PULSELYTICS_LIFECYCLE_HOOKS, "tests.recipes.BlockingHook"]
