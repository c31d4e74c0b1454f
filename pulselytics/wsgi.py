import os

# Serving processes explain with SHAP; importing it takes about 1.5 s, paid here at worker
# start rather than by the first explain request.
import shap  # noqa: F401 - imported for its start-up cost only (above)
from django.core.wsgi import get_wsgi_application

from pulselytics.settings import settings_module

os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module())

application = get_wsgi_application()

# Warm start (docs/deploy.md#warm-start): gunicorn imports this module in each worker before
# the worker accepts a request, so every live version is loaded by then.
from predictions.warmup import serving_process_warm  # noqa: E402 - needs the app set up

serving_process_warm()
