"""Prometheus metrics (`/metrics`).

Under gunicorn with several workers, set PROMETHEUS_MULTIPROC_DIR to an empty folder
(`make run` does) so every worker's figures are aggregated.
"""

import os

from django.http import HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

API_REQUESTS = Counter("pulselytics_api_requests_total", "API requests",
                       ["endpoint", "method", "status"])
API_LATENCY = Histogram(
    "pulselytics_api_request_seconds", "API request latency", ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
API_ERRORS = Counter("pulselytics_api_errors_total", "API errors by code", ["code"])
PREDICTIONS = Counter("pulselytics_predictions_total", "Predictions served",
                      ["model", "version", "arm"])
# One per version a process loads (verified, explainer and inference path built); a warm
# start (docs/deploy.md#warm-start) does every load before the first request.
MODEL_LOADS = Counter("pulselytics_model_loads_total", "Model versions loaded by a process",
                      ["model", "version"])
# One per version a process loads: `path` "compiled" or "pipeline"; `reason` why not
# compiled ("unsupported", "mismatch", "error"; "" when compiled). docs/api.md#compiled-inference
INFERENCE_PATHS = Counter("pulselytics_model_inference_paths_total",
                          "Loaded versions by the inference path that serves them",
                          ["model", "version", "path", "reason"])


def metrics_view(request) -> HttpResponse:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
