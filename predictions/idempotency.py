"""Idempotent retries of predict requests (docs/api.md#idempotent-retries).

A request with an `Idempotency-Key` header claims the key for its API key (one insert:
the unique (api_key, key) lets exactly one of several concurrent requests win) before it
is answered, and stores its answer once it is. A retry with the same key and the same
body, within IDEMPOTENCY_WINDOW_SECONDS, gets the stored answer back and predicts and logs
nothing; with another body it is refused (409 `idempotency_key_reused`); while the first
is still being answered, 409 `idempotency_key_in_progress` (retry after a second). A
request that fails releases its claim, so its retry is answered afresh.

A claim left behind by a process that died mid-request is taken over after
CLAIM_STALE_SECONDS, well beyond any request's time limit (gunicorn's `--timeout`,
docs/deploy.md). Expired answers are replaced when their key comes again, and deleted by
the daily prediction log purge (`idempotent_requests_purge`).
"""

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ApplicationError, ConflictError
from predictions.models import ClientAPIKey, IdempotentRequest
from predictions.parsers import NON_FINITE

logger = logging.getLogger("pulselytics.predictions")

# 1-255 printable ASCII characters (space included, as in "order 8812 try").
KEY_PATTERN = re.compile(r"[\x20-\x7e]{1,255}")
# An unanswered claim older than this belongs to a process that died: it is taken over.
CLAIM_STALE_SECONDS = 300
# Claim attempts before a request that keeps losing races is told to retry.
CLAIM_ATTEMPTS = 3
# What a non-finite number in a body hashes as (such a body is refused, never stored).
_NON_FINITE_TEXT = "\x00non-finite"


class IdempotencyKeyInvalidError(ApplicationError):
    code = "invalid_idempotency_key"
    http_status = 400


class IdempotencyKeyReusedError(ConflictError):
    """The key was used for another request (another body, model, version or endpoint)."""

    code = "idempotency_key_reused"


class IdempotencyKeyInProgressError(ConflictError):
    """The request that claimed the key is still being answered."""

    code = "idempotency_key_in_progress"


@dataclass(frozen=True)
class StoredAnswer:
    """The answer given to the request that first used a key."""

    status_code: int
    body: bytes


def idempotency_key_clean(*, header: str | None) -> str | None:
    """The key a request sent, or None when it sent no header; IdempotencyKeyInvalidError
    for an empty one or one that is not 1-255 printable ASCII characters."""
    if header is None:
        return None
    if not KEY_PATTERN.fullmatch(header):
        raise IdempotencyKeyInvalidError(
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
            details={"header": "Idempotency-Key", "max_length": 255})
    return header


def _non_finite(value):
    if value is NON_FINITE:
        return _NON_FINITE_TEXT
    raise TypeError(f"not JSON: {type(value).__name__}")


def idempotency_request_sha256(*, method: str, path: str, body) -> str:
    """SHA256 of what makes two requests the same: method, path (endpoint, model and
    version) and the parsed body as canonical JSON (keys sorted, no whitespace), so a
    retry may re-serialise its body."""
    try:
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS, default=_non_finite)
    except TypeError:  # an integer beyond 64 bits, which orjson does not write
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False, default=_non_finite).encode()
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    digest.update(canonical)
    return digest.hexdigest()


def idempotent_request_claim(*, api_key: ClientAPIKey, key: str, request_sha256: str,
                             now=None) -> IdempotentRequest | StoredAnswer:
    """Claim `key` for this request (the row to answer with idempotent_request_answer),
    or the answer stored for it; IdempotencyKeyReusedError when the key was used for
    another request, IdempotencyKeyInProgressError while that request is answered."""
    now = now or timezone.now()
    expired_before = now - timedelta(seconds=settings.IDEMPOTENCY_WINDOW_SECONDS)
    stale_before = now - timedelta(seconds=CLAIM_STALE_SECONDS)
    for _ in range(CLAIM_ATTEMPTS):
        try:
            with transaction.atomic():
                return IdempotentRequest.objects.create(
                    api_key=api_key, key=key, request_sha256=request_sha256, created_at=now)
        except IntegrityError:
            pass
        found = IdempotentRequest.objects.filter(api_key=api_key, key=key).first()
        if found is None:
            continue  # released or purged since: claim it again
        if found.created_at < expired_before or (
                found.status_code is None and found.created_at < stale_before):
            # Only one of several requests replacing it deletes it; the others then lose
            # the insert to the one that did.
            IdempotentRequest.objects.filter(pk=found.pk).delete()
            continue
        if found.request_sha256 != request_sha256:
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was used for another request (another body, model or "
                "endpoint); use a new key for a new request",
                details={"key": key, "first_used_at": found.created_at})
        if found.status_code is None:
            break
        return StoredAnswer(status_code=found.status_code, body=found.body.encode())
    raise IdempotencyKeyInProgressError(
        "a request with this Idempotency-Key is still being answered; retry shortly",
        details={"key": key})


def idempotent_request_answer(*, claim: IdempotentRequest, status_code: int,
                              body: bytes) -> None:
    """Store the answer of the request that claimed the key."""
    IdempotentRequest.objects.filter(pk=claim.pk).update(
        status_code=status_code, body=body.decode(), answered_at=timezone.now())


def idempotent_request_release(*, claim: IdempotentRequest) -> None:
    """Give the key up after the request failed, so that a retry is answered afresh. Never
    raises: a claim that cannot be released is taken over once it is stale."""
    try:
        IdempotentRequest.objects.filter(pk=claim.pk, status_code__isnull=True).delete()
    except Exception:  # the request's own error answer must go out unchanged
        logger.warning("could not release an idempotency key; it is freed after %s s",
                       CLAIM_STALE_SECONDS, exc_info=True)


def idempotent_requests_purge(*, now=None) -> int:
    """Delete stored answers older than IDEMPOTENCY_WINDOW_SECONDS, in batches of
    MONITORING_CHUNK_SIZE, each its own short transaction; returns how many went."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.IDEMPOTENCY_WINDOW_SECONDS)
    expired = IdempotentRequest.objects.filter(created_at__lt=cutoff).order_by()
    deleted = 0
    while True:
        count, _ = IdempotentRequest.objects.filter(
            pk__in=expired.values("pk")[:settings.MONITORING_CHUNK_SIZE]).delete()
        if not count:
            return deleted
        deleted += count
