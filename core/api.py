"""The API's one exception handler and error envelope (docs/api.md#errors).

    {"error": {"code": "...", "message": "...", "request_id": "...", "details": ...}}

Typed ApplicationErrors carry their own code and status; DRF's own exceptions are mapped to the
codes of docs/api.md#errors; a lost database connection is a 503 `database_unavailable` (Django
reconnects by itself once the database is back); anything else is a 500 `internal_error` whose stack
trace goes to the log, never to the client.
"""

import logging

import orjson
from django.contrib import admin
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.defaults import page_not_found
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from core import prometheus as metrics
from core.errors import ApplicationError, DatabaseUnavailableError
from core.logging import exception_outline, request_id_var

logger = logging.getLogger("pulselytics.api")

# Seconds a client is asked to wait (Retry-After) when the database is unavailable.
DATABASE_RETRY_AFTER_SECONDS = 5

DRF_CODES = [
    (exceptions.ParseError, "malformed_json"),
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "not_authenticated"),
    (exceptions.PermissionDenied, "permission_denied"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.Throttled, "throttled"),
    (exceptions.ValidationError, "validation_error"),
]


def error_body(*, code: str, message: str, details=None, request_id: str | None = None) -> dict:
    return {"error": {"code": code, "message": message,
                      "request_id": request_id or request_id_var.get(),
                      "details": details if details is not None else {}}}


def error_response(*, code: str, message: str, status: int, details=None, headers=None) -> Response:
    metrics.API_ERRORS.labels(code=code).inc()
    return Response(error_body(code=code, message=message, details=details), status=status,
                    headers=headers)


def exception_handler(exc, context):
    if isinstance(exc, OperationalError | InterfaceError):
        # Only the first line: a server message's CONTEXT may quote the row being written.
        summary = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        logger.warning("database unavailable in %s: %s",
                       context.get("view").__class__.__name__, summary)
        error = DatabaseUnavailableError("the database is unavailable; retry shortly")
        return error_response(code=error.code, message=error.message, status=error.http_status,
                              headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)})
    if isinstance(exc, ApplicationError):
        return error_response(code=exc.code, message=exc.message, status=exc.http_status,
                              details=exc.details)
    if isinstance(exc, exceptions.APIException):
        code = next((code for kind, code in DRF_CODES if isinstance(exc, kind)), "error")
        status = 422 if code == "validation_error" else exc.status_code
        headers = {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        detail = exc.detail
        message = str(detail) if isinstance(detail, str) else "invalid request"
        return error_response(code=code, message=message, status=status,
                              details=detail if not isinstance(detail, str) else {},
                              headers=headers)
    # The traceback without the exception's message, which may quote the request's values.
    logger.error("unhandled error in %s", context.get("view").__class__.__name__,
                 extra={"exception": exception_outline(exc)})
    return error_response(code="internal_error", message="internal error", status=500)


def json_server_error(request, *args, **kwargs) -> JsonResponse:
    """handler500 for errors outside DRF's views (middleware, URL resolving)."""
    metrics.API_ERRORS.labels(code="internal_error").inc()
    return JsonResponse(error_body(code="internal_error", message="internal error",
                                   request_id=getattr(request, "request_id", None)), status=500)


def json_permission_denied(request, exception=None):
    """handler403: the envelope under /api/; elsewhere a page in the admin's frame that says
    why (the refusal's message, e.g. "you created this version") and that nothing changed."""
    reason = str(exception or "") or "You do not have permission to do this."
    if request.path.startswith("/api/"):
        metrics.API_ERRORS.labels(code="permission_denied").inc()
        return JsonResponse(error_body(code="permission_denied", message=reason,
                                       request_id=getattr(request, "request_id", None)),
                            status=403)
    referrer = request.META.get("HTTP_REFERER", "")
    back_url = referrer if url_has_allowed_host_and_scheme(
        referrer, allowed_hosts={request.get_host()}, require_https=request.is_secure(),
    ) else reverse("admin:index")
    context = {**admin.site.each_context(request), "reason": reason, "back_url": back_url}
    return TemplateResponse(request, "core/permission_denied.html", context,
                            status=403).render()


def json_not_found(request, exception=None):
    """handler404: the envelope under /api/, Django's page elsewhere (the admin)."""
    if not request.path.startswith("/api/"):
        return page_not_found(request, exception)
    metrics.API_ERRORS.labels(code="not_found").inc()
    return JsonResponse(error_body(code="not_found", message="no such endpoint",
                                   request_id=getattr(request, "request_id", None)), status=404)


class FastJSONRenderer(JSONRenderer):
    """DRF's compact JSON, written by orjson (C): a 2,000-prediction answer in about a
    tenth of the time. Dates, decimals, lazy strings and anything else orjson would write
    its own way go through DRF's encoder, so a client reads the values JSONRenderer's
    text holds (a float may be spelled differently: 1e-7 for 1e-07). A float NaN or
    infinity, which JSONRenderer refuses, would be written as null: the views using this
    renderer never answer one (predictions.loader refuses non-finite model outputs)."""

    # Subclasses of str, int, dict and list (choices, DRF's ReturnDict) are written as
    # their base type, as json does.
    _OPTIONS = (orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
                | orjson.OPT_PASSTHROUGH_DATACLASS)
    _fallback = JSONEncoder().default

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        text = orjson.dumps(data, default=self._fallback, option=self._OPTIONS)
        # As JSONRenderer: the two line separators JavaScript's string literals refuse.
        return text.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
