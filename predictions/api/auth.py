"""API keys (`Authorization: Api-Key <key>`), hashed and revocable, their scopes, and per-key
throttling."""

import hashlib
import logging
import time

from django.conf import settings
from rest_framework import authentication, exceptions, permissions, throttling

from core.errors import PermissionDeniedError
from predictions.models import ClientAPIKey

KEYWORD = "Api-Key"

logger = logging.getLogger("pulselytics.api")

# Verified keys per process, by the SHA256 of the presented key: (row, checked at).
# A revocation reaches every process within API_KEY_CACHE_SECONDS; the lookup it saves
# is a third of the governance cost of a single-row prediction (bench/RESULTS.md).
_verified: dict[str, tuple[ClientAPIKey, float]] = {}


def api_key_verify(key: str) -> ClientAPIKey:
    digest = hashlib.sha256(key.encode()).hexdigest()
    cached = _verified.get(digest)
    now = time.monotonic()
    if cached and now - cached[1] < settings.API_KEY_CACHE_SECONDS:
        return cached[0]
    try:
        api_key = ClientAPIKey.objects.get_from_key(key)
    except ClientAPIKey.DoesNotExist:
        _verified.pop(digest, None)
        raise exceptions.AuthenticationFailed("unknown or revoked API key") from None
    if api_key.has_expired:
        _verified.pop(digest, None)
        raise exceptions.AuthenticationFailed("expired API key")
    _verified[digest] = (api_key, now)
    return api_key


class APIKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates the client (not a user): request.auth is its ClientAPIKey row."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        keyword, _, key = header.partition(" ")
        if keyword != KEYWORD or not key.strip():
            raise exceptions.AuthenticationFailed("expected 'Authorization: Api-Key <key>'")
        return (None, api_key_verify(key.strip()))

    def authenticate_header(self, request) -> str:
        return KEYWORD


class HasAPIKey(permissions.BasePermission):
    """A valid key that holds the scope its view names (`api_key_scope`, docs/api.md)."""

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, ClientAPIKey):
            raise exceptions.NotAuthenticated(
                "an API key is required: 'Authorization: Api-Key <key>'")
        scope = view.api_key_scope
        if scope not in request.auth.scopes:
            raise PermissionDeniedError(f"this API key lacks the {scope!r} scope",
                                        details={"scope": scope})
        return True


class WindowThrottle(throttling.SimpleRateThrottle):
    """At most the scope's rate of units (`cost` per request) per key in any window of the
    rate's duration (DEFAULT_THROTTLE_RATES[scope]).

    The key's history in the shared cache (CACHE_URL) is [bucket start, units] pairs,
    newest first: a request adds its units to its bucket, one WINDOW_BUCKETS-th of the
    window. DRF's own history keeps a timestamp per request, so at 6,000 requests a minute
    every request read and wrote a list of thousands; this one holds WINDOW_BUCKETS pairs
    at most, whatever the rate. Units count until a whole window has passed since the end
    of their bucket, at most one bucket longer than since the request itself: the limit
    is never exceeded, and is reached at most a bucket's width late.
    """

    WINDOW_BUCKETS = 60

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ClientAPIKey):
            return None  # open endpoints (health) are not throttled per key
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}

    def cost(self, request) -> int:
        return 1

    def allow_request(self, request, view) -> bool:
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        cost = self.cost(request)
        # The counters live in the shared cache: when it is unreachable, answering
        # unthrottled beats refusing every request of every client.
        try:
            self.now = self.timer()
            self.width = self.duration / self.WINDOW_BUCKETS
            current = self.now - self.now % self.width
            self.history = [entry for entry in self.cache.get(self.key, [])
                            if entry[0] + self.width > self.now - self.duration]
            used = sum(units for _, units in self.history)
            if used + cost > self.num_requests:
                self.shortfall = used + cost - self.num_requests
                return False
            if self.history and self.history[0][0] == current:
                self.history[0][1] += cost
            else:
                self.history.insert(0, [current, cost])
            self.cache.set(self.key, self.history, self.duration + self.width)
        except Exception as exc:  # noqa: BLE001 - any cache backend's connection error
            logger.warning("throttle cache unavailable; request not throttled",
                           extra={"error": type(exc).__name__})
        return True

    def wait(self) -> float | None:
        """Seconds until enough of the oldest units have aged out for this request."""
        freed = 0
        for start, units in reversed(self.history):
            freed += units
            if freed >= self.shortfall:
                return max(0.0, start + self.width + self.duration - self.now)
        return self.duration


class APIKeyRateThrottle(WindowThrottle):
    """Requests per API key (settings REST_FRAMEWORK DEFAULT_THROTTLE_RATES['api_key'])."""

    scope = "api_key"


def instances_in(body) -> int:
    """How many instances a predict or explain body asks for (its shape is checked later)."""
    if isinstance(body, list):
        return len(body)
    if isinstance(body, dict) and isinstance(body.get("instances"), list):
        return len(body["instances"])
    return 1


class InstanceRateThrottle(WindowThrottle):
    """Instances per API key, not requests: a 2,000-row batch or an explanation (about 8x the
    CPU of a prediction per instance) costs what it costs. The rate of `scope` in
    DEFAULT_THROTTLE_RATES."""

    def cost(self, request) -> int:
        return instances_in(request.data)


class PredictInstanceThrottle(InstanceRateThrottle):
    scope = "api_key_instances"


class ExplainInstanceThrottle(InstanceRateThrottle):
    scope = "api_key_explain"


def model_visible(request, model) -> bool:
    """A client-bound key sees the global models and its own client's, no other client's."""
    bound = request.auth.client_id
    return not (bound and model.client_id and model.client_id != bound)


def model_for_client(request, model):
    """`model`, or 403 when it is another client's own model (the owner is not named)."""
    if not model_visible(request, model):
        raise PermissionDeniedError(f"model {model.name!r} belongs to another client",
                                    details={"model": model.name})
    return model


def client_for(request, requested: str) -> str:
    """The client a request acts for: a client-bound key may only act for its own client."""
    bound = request.auth.client_id
    if bound and requested and requested != bound:
        raise PermissionDeniedError(
            f"this API key belongs to client {bound!r} and may not act for {requested!r}",
            details={"client_id": requested},
        )
    return bound or requested
