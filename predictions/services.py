"""Serving writes."""

from rest_framework_api_key.models import APIKey

from pulselytics.errors import ValidationError


def api_key_create(*, name: str) -> tuple[APIKey, str]:
    """Create a revocable API key; the plain key is returned once and only its hash is kept."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("an API key needs a name")
    return APIKey.objects.create_key(name=name)
