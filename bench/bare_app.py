"""The comparison app of bench/serving.py: one bare DRF endpoint around the same model.

Settings module, URLconf and WSGI app in one file (DJANGO_SETTINGS_MODULE=bare_app, with
bench/ on the Python path). It loads the estimator once, at import, from the joblib file
that bench/serving.py exported from the governed app's verified bundle
(BARE_MODEL_PATH) with its feature schema (BARE_SCHEMA_PATH), and answers
`POST /predict` with `{"instances": [...]}` or a bare array: no database, no
authentication, throttling, validation, routing, prediction log, metrics or request
logging. It only turns the instances into the frame the pipeline takes (numbers and
flags as float64, categories as objects: what predictions.validation also produces) and
returns the model's values (and probabilities for a classifier).
"""

import json
import os

import joblib
import numpy
import pandas
from django.core.wsgi import get_wsgi_application
from django.urls import path

# --- settings (defined before DRF is imported: it reads them at import) ---------------

SECRET_KEY = "bench-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["rest_framework"]
MIDDLEWARE: list = []
ROOT_URLCONF = __name__
DATABASES: dict = {}
USE_TZ = True
REST_FRAMEWORK = {
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_THROTTLE_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}

from rest_framework.response import Response  # noqa: E402 - after the settings above
from rest_framework.views import APIView  # noqa: E402 - after the settings above

# --- the model, loaded once per process ---------------------------------------------------

ESTIMATOR = joblib.load(os.environ["BARE_MODEL_PATH"])
with open(os.environ["BARE_SCHEMA_PATH"]) as schema_file:
    _schema = json.load(schema_file)
INPUTS = [(f["name"], f["dtype"]) for f in _schema["features"] if f.get("input", True)]
CLASSIFIER = hasattr(ESTIMATOR, "predict_proba")


def frame_for(instances: list[dict]) -> pandas.DataFrame:
    columns = {}
    for name, dtype in INPUTS:
        values = [row.get(name) for row in instances]
        # object dtype for categories, as predictions.validation makes them (pandas would
        # otherwise infer its own string dtype)
        columns[name] = (pandas.Series(values, dtype=object) if dtype == "category"
                         else numpy.array(values, dtype=float))
    return pandas.DataFrame(columns)


class PredictView(APIView):
    def post(self, request):
        body = request.data
        instances = body["instances"] if isinstance(body, dict) else body
        frame = frame_for(instances)
        if CLASSIFIER:
            probabilities = ESTIMATOR.predict_proba(frame)
            classes = [str(c) for c in ESTIMATOR.classes_]
            predictions = [{"value": classes[row.argmax()],
                            "probabilities": dict(zip(classes, row.tolist(), strict=True))}
                           for row in probabilities]
        else:
            predictions = [{"value": value} for value in ESTIMATOR.predict(frame).tolist()]
        return Response({"predictions": predictions})


urlpatterns = [path("predict", PredictView.as_view())]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", __name__)
application = get_wsgi_application()
