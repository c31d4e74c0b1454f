"""Which settings module a process loads: see settings_module().

Nothing here imports Django: the entry points (manage.py, pulselytics/wsgi.py,
pulselytics/celery.py, scripts/run.py) call settings_module() before Django starts.
"""

import os

BASE = "pulselytics.settings.base"
PRODUCTION = "pulselytics.settings.production"


def settings_module() -> str:
    """The settings the environment selects: production under PULSELYTICS_ENV=production,
    else base (development). An explicit DJANGO_SETTINGS_MODULE still wins at the call
    sites (they use os.environ.setdefault)."""
    return PRODUCTION if os.environ.get("PULSELYTICS_ENV") == "production" else BASE
