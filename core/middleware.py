"""Request id in and out (docs/api.md#authentication), the logging context, and the API's guard
rails."""

import re
import time
import uuid

from django.conf import settings
from django.http import JsonResponse

from core import prometheus as metrics
from core.api import error_body
from core.logging import request_id_var

REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Metric labels come from fixed sets: any other method string a client sends is "other",
# so no request can add a time series.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_id_from(header: str | None) -> str:
    """The client's own id when it is 1-64 characters of A-Za-z0-9._-, else a new UUID."""
    if header and REQUEST_ID_PATTERN.fullmatch(header):
        return header
    return str(uuid.uuid4())


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = request_id_from(request.headers.get("X-Request-ID"))
        token = request_id_var.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request.request_id
        return response


class ApiGuardMiddleware:
    """For /api/: refuse oversized bodies before anything reads them; count and time calls."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        started = time.perf_counter()
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.API_MAX_BODY_BYTES:
            metrics.API_ERRORS.labels(code="payload_too_large").inc()
            response = JsonResponse(error_body(
                code="payload_too_large",
                message=f"request body of {length} bytes; at most {settings.API_MAX_BODY_BYTES}",
                details={"limit": settings.API_MAX_BODY_BYTES}, request_id=request.request_id,
            ), status=413)
        else:
            response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        endpoint = match.url_name if match and match.url_name else "unmatched"
        method = request.method if request.method in HTTP_METHODS else "other"
        metrics.API_REQUESTS.labels(endpoint=endpoint, method=method,
                                    status=str(response.status_code)).inc()
        metrics.API_LATENCY.labels(endpoint=endpoint).observe(time.perf_counter() - started)
        return response
