"""How the API key scheme and each operation's scope appear in the OpenAPI document."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "predictions.api.auth.APIKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Api-Key <key>`; keys are created with `manage.py "
                               "create_api_key` or in the admin"}


class ScopedAutoSchema(AutoSchema):
    """Each operation names the API key scope it needs: `x-api-key-scope` and a sentence of
    its description (OpenAPI 3.0 allows scopes in security requirements only for OAuth)."""

    def get_description(self) -> str:
        scope = getattr(self.view, "api_key_scope", None)
        described = super().get_description() or ""
        if scope is None:
            return described
        return f"{described}\n\nNeeds an API key with the `{scope}` scope.".strip()

    def get_extensions(self) -> dict:
        scope = getattr(self.view, "api_key_scope", None)
        return {**super().get_extensions(), **({"x-api-key-scope": scope} if scope else {})}
