"""How the API reads request bodies and compresses its answers (docs/api.md#request-bodies).

Requests under /api/:
- `Transfer-Encoding: chunked` (no Content-Length): Django builds its request stream from
  CONTENT_LENGTH, so such a body would read as empty. A server that has already undone
  the chunking says so with `wsgi.input_terminated` (gunicorn does): the body is then read
  from `wsgi.input` up to API_MAX_BODY_BYTES. A server that has not (Django's runserver
  and test LiveServer) cannot hand the body over: 411 `length_required`.
- `Content-Encoding: gzip` (or `x-gzip`, or `identity`): decompressed up to
  API_MAX_BODY_BYTES, a little at a time, so a gzip bomb costs at most that much output
  before it is refused (413 `payload_too_large`); a corrupt stream is 400 `malformed_json`,
  any other coding 415 `unsupported_content_encoding`.
Either way the view sees a plain body with its Content-Length. Other requests are left
exactly as they came.

Answers: JSON (and the OpenAPI document) under /api/ are gzipped for a client that sends
`Accept-Encoding: gzip` (Django's GZipMiddleware, `Vary: Accept-Encoding`). Nothing else:
/metrics is Prometheus' business, and the admin's and Swagger UI's pages carry CSRF tokens
(BREACH).
"""

import io
import zlib

from django.conf import settings
from django.http import JsonResponse
from django.middleware.gzip import GZipMiddleware

from core import prometheus as metrics
from core.api import error_body
from core.errors import ApplicationError, PayloadTooLargeError

# Content codings the API undoes; `x-gzip` is gzip's old name (RFC 9110 §8.4.1.3).
GZIP_CODINGS = frozenset({"gzip", "x-gzip"})
READ_CHUNK_BYTES = 64 * 1024
# Answers of these types may be compressed (JSON, and the OpenAPI document as JSON or YAML).
COMPRESSED_CONTENT_TYPES = ("application/json", "application/vnd.oai.openapi")


class MalformedBodyError(ApplicationError):
    """The body's content coding is corrupt: as for a body that is not JSON."""

    code = "malformed_json"
    http_status = 400


class LengthRequiredError(ApplicationError):
    """A chunked body this server cannot read (it did not undo the chunking)."""

    code = "length_required"
    http_status = 411


class UnsupportedContentEncodingError(ApplicationError):
    code = "unsupported_content_encoding"
    http_status = 415


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"request body over {limit} bytes",
                                details={"limit": limit})


def stream_read_capped(stream, *, limit: int) -> bytes:
    """Everything `stream` holds; PayloadTooLargeError once it gives more than `limit` bytes
    (having read at most one chunk beyond it)."""
    parts, size = [], 0
    while True:
        part = stream.read(READ_CHUNK_BYTES)
        if not part:
            return b"".join(parts)
        size += len(part)
        if size > limit:
            raise _too_large(limit)
        parts.append(part)


def gzip_decompress_capped(data: bytes, *, limit: int) -> bytes:
    """The gzip `data` decompressed (every member, as gzip.decompress), without ever producing
    more than `limit` + 1 bytes: a body expanding beyond `limit` is PayloadTooLargeError
    however much more it would have expanded to."""
    parts, size = [], 0
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            part = inflater.decompress(data, limit - size + 1)
        except zlib.error:
            raise MalformedBodyError("the body is not valid gzip") from None
        size += len(part)
        if size > limit:
            raise _too_large(limit)
        parts.append(part)
        if not inflater.eof:
            # Output was not capped (that would be over the limit), so the input ran out.
            raise MalformedBodyError("the gzip body is truncated")
        data = inflater.unused_data
        if not data:
            return b"".join(parts)


def content_encoding(header: str) -> str:
    """The one coding a Content-Encoding header names, lower-cased ("" for none);
    UnsupportedContentEncodingError for anything but gzip and identity."""
    codings = [part.strip().lower() for part in header.split(",") if part.strip()]
    codings = [coding for coding in codings if coding != "identity"]
    if not codings:
        return ""
    if len(codings) == 1 and codings[0] in GZIP_CODINGS:
        return "gzip"
    raise UnsupportedContentEncodingError(
        f"Content-Encoding {header[:40]!r} is not supported; send gzip or no coding",
        details={"supported": ["gzip", "identity"]})


def request_body_plain(request) -> None:
    """Turn a chunked or gzipped body into a plain one in place (see the module docstring);
    a request with neither is not touched."""
    meta = request.META
    chunked = (not meta.get("CONTENT_LENGTH")
               and "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower())
    coding = content_encoding(meta.get("HTTP_CONTENT_ENCODING", ""))
    if not chunked and not coding:
        return
    limit = settings.API_MAX_BODY_BYTES
    if chunked:
        if not meta.get("wsgi.input_terminated"):
            raise LengthRequiredError(
                "this server cannot read a chunked request body; send Content-Length")
        body = stream_read_capped(meta["wsgi.input"], limit=limit)
    else:
        body = request.read(limit + 1)  # Content-Length: at most API_MAX_BODY_BYTES here
    if coding:
        body = gzip_decompress_capped(body, limit=limit)
        del meta["HTTP_CONTENT_ENCODING"]
    elif len(body) > limit:
        raise _too_large(limit)
    meta.pop("HTTP_TRANSFER_ENCODING", None)
    meta["CONTENT_LENGTH"] = str(len(body))
    # Django made its stream from the original Content-Length; there is no public way to
    # give a request another body, so this sets what HttpRequest.body itself would.
    request._stream = io.BytesIO(body)
    request._read_started = False


class RequestBodyMiddleware:
    """For /api/: chunked and gzipped request bodies made plain before any view reads them;
    errors in the API's envelope. After ApiGuardMiddleware, which refuses an oversized
    Content-Length before this reads anything."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            try:
                request_body_plain(request)
            except ApplicationError as error:
                metrics.API_ERRORS.labels(code=error.code).inc()
                return JsonResponse(error_body(code=error.code, message=error.message,
                                               details=error.details,
                                               request_id=request.request_id),
                                    status=error.http_status)
        return self.get_response(request)


class ApiGZipMiddleware(GZipMiddleware):
    """Django's GZipMiddleware for the API's JSON (and OpenAPI) answers only."""

    def process_response(self, request, response):
        if (not request.path.startswith("/api/")
                or not response.get("Content-Type", "").startswith(COMPRESSED_CONTENT_TYPES)):
            return response
        return super().process_response(request, response)
