"""API keys (`Authorization: Api-Key <key>`), hashed and revocable, and per-key throttling."""

from rest_framework import authentication, exceptions, permissions, throttling

from predictions.models import ClientAPIKey
from pulselytics.errors import PermissionDeniedError

KEYWORD = "Api-Key"


class APIKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates the client (not a user): request.auth is its ClientAPIKey row."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        keyword, _, key = header.partition(" ")
        if keyword != KEYWORD or not key.strip():
            raise exceptions.AuthenticationFailed("expected 'Authorization: Api-Key <key>'")
        try:
            api_key = ClientAPIKey.objects.get_from_key(key.strip())
        except ClientAPIKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("unknown or revoked API key") from None
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed("expired API key")
        return (None, api_key)

    def authenticate_header(self, request) -> str:
        return KEYWORD


class HasAPIKey(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ClientAPIKey):
            return True
        raise exceptions.NotAuthenticated("an API key is required: 'Authorization: Api-Key <key>'")


class APIKeyRateThrottle(throttling.SimpleRateThrottle):
    """Requests per API key (settings REST_FRAMEWORK DEFAULT_THROTTLE_RATES['api_key'])."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ClientAPIKey):
            return None  # open endpoints (health) are not throttled per key
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}


def client_for(request, requested: str) -> str:
    """The client a request acts for: a client-bound key may only act for its own client."""
    bound = request.auth.client_id
    if bound and requested and requested != bound:
        raise PermissionDeniedError(
            f"this API key belongs to client {bound!r} and may not act for {requested!r}",
            details={"client_id": requested},
        )
    return bound or requested
