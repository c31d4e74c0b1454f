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


class APIKeyRateThrottle(throttling.SimpleRateThrottle):
    """Requests per API key (settings REST_FRAMEWORK DEFAULT_THROTTLE_RATES['api_key'])."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ClientAPIKey):
            return None  # open endpoints (health) are not throttled per key
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}

    def allow_request(self, request, view) -> bool:
        # The counters live in the shared cache (CACHE_URL): when it is unreachable,
        # answering unthrottled beats refusing every request of every client.
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # noqa: BLE001 - any cache backend's connection error
            logger.warning("throttle cache unavailable; request not throttled",
                           extra={"error": type(exc).__name__})
            return True


def instances_in(body) -> int:
    """How many instances a predict or explain body asks for (its shape is checked later)."""
    if isinstance(body, list):
        return len(body)
    if isinstance(body, dict) and isinstance(body.get("instances"), list):
        return len(body["instances"])
    return 1


class InstanceRateThrottle(throttling.SimpleRateThrottle):
    """Instances per API key, not requests: a 2,000-row batch or an explanation (about 8x the
    CPU of a prediction per instance) costs what it costs. The rate of `scope` in
    DEFAULT_THROTTLE_RATES; the history holds [time, instances] pairs."""

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}

    def allow_request(self, request, view) -> bool:
        self.key = self.get_cache_key(request, view)
        cost = instances_in(request.data)
        try:
            self.history = self.cache.get(self.key, [])
            self.now = self.timer()
            self.history = [entry for entry in self.history if entry[0] > self.now - self.duration]
            used = sum(count for _, count in self.history)
            if used + cost > self.num_requests:
                self.shortfall = used + cost - self.num_requests
                return False
            self.history.insert(0, [self.now, cost])
            self.cache.set(self.key, self.history, self.duration)
        except Exception as exc:  # noqa: BLE001 - as APIKeyRateThrottle: fail open
            logger.warning("throttle cache unavailable; request not throttled",
                           extra={"error": type(exc).__name__})
        return True

    def wait(self) -> float | None:
        """Seconds until the oldest instances that must expire for this request have."""
        freed = 0
        for at, count in reversed(self.history):
            freed += count
            if freed >= self.shortfall:
                return max(0.0, self.duration - (self.now - at))
        return self.duration


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
