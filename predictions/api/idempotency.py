"""The `Idempotency-Key` header of the predict endpoints (docs/api.md#idempotent-retries):
the HTTP side of predictions.idempotency."""

from collections.abc import Callable

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter
from rest_framework.response import Response

from core.api import FastJSONRenderer
from predictions import idempotency

HEADER = "Idempotency-Key"
# On an answer given again from the store.
REPLAYED_HEADER = "Idempotent-Replayed"

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    HEADER, {"type": "string", "minLength": 1, "maxLength": 255,
             "pattern": "^[\\x20-\\x7e]+$"},
    OpenApiParameter.HEADER, required=False,
    description=(
        "1-255 printable ASCII characters, unique per request (e.g. a UUID). A retry with "
        "the same key and body within IDEMPOTENCY_WINDOW_SECONDS (a day) gets the first "
        "answer again, byte for byte (the same prediction ids, header "
        f"`{REPLAYED_HEADER}: true`), and logs nothing new. 409 `idempotency_key_reused`: the "
        "key was used with another body, model or version; 409 "
        "`idempotency_key_in_progress`: the first request is still being answered (retry). "
        "400 `invalid_idempotency_key`: empty, too long or not printable ASCII."),
)


def answered_once(request, body, answer: Callable[[], Response]):
    """`answer()` for a request without the header; with it, the answer stored for its key,
    or `answer()` stored under the key. `body` is the parsed request body."""
    key = idempotency.idempotency_key_clean(header=request.headers.get(HEADER))
    if key is None:
        return answer()
    claim = idempotency.idempotent_request_claim(
        api_key=request.auth, key=key,
        request_sha256=idempotency.idempotency_request_sha256(
            method=request.method, path=request.path, body=body))
    if isinstance(claim, idempotency.StoredAnswer):
        response = HttpResponse(claim.body, status=claim.status_code,
                                content_type="application/json")
        response[REPLAYED_HEADER] = "true"
        return response
    try:
        response = answer()
        content = FastJSONRenderer().render(response.data)
    except BaseException:
        idempotency.idempotent_request_release(claim=claim)
        raise
    idempotency.idempotent_request_answer(claim=claim, status_code=response.status_code,
                                          body=content)
    return HttpResponse(content, status=response.status_code, content_type="application/json")
