"""The API's one exception handler and error envelope (SPEC §4).

    {"error": {"code": "...", "message": "...", "request_id": "...", "details": ...}}

Typed ApplicationErrors carry their own code and status; DRF's own exceptions are mapped
to the SPEC codes; anything else is a 500 `internal_error` whose stack trace goes to the
log, never to the client.
"""

import logging

from django.http import JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions
from rest_framework.response import Response

from pulselytics import metrics
from pulselytics.errors import ApplicationError
from pulselytics.logging import request_id_var

logger = logging.getLogger("pulselytics.api")

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
    logger.exception("unhandled error in %s", context.get("view").__class__.__name__)
    return error_response(code="internal_error", message="internal error", status=500)


def json_server_error(request, *args, **kwargs) -> JsonResponse:
    """handler500 for errors outside DRF's views (middleware, URL resolving)."""
    metrics.API_ERRORS.labels(code="internal_error").inc()
    return JsonResponse(error_body(code="internal_error", message="internal error",
                                   request_id=getattr(request, "request_id", None)), status=500)


def json_not_found(request, exception=None):
    """handler404: the envelope under /api/, Django's page elsewhere (the admin)."""
    if not request.path.startswith("/api/"):
        return page_not_found(request, exception)
    metrics.API_ERRORS.labels(code="not_found").inc()
    return JsonResponse(error_body(code="not_found", message="no such endpoint",
                                   request_id=getattr(request, "request_id", None)), status=404)
