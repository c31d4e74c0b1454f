import os

# Serving processes explain with SHAP; importing it takes about 1.5 s, paid here at worker
# start rather than by the first explain request.
import shap  # noqa: F401
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pulselytics.settings.base")

application = get_wsgi_application()
