from django import forms
from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from core.admin_mixins import ReadOnlyAdminMixin
from predictions.models import DEFAULT_SCOPES, SCOPES, ClientAPIKey, PredictionLog

# Keys are ClientAPIKey rows; the library's own table is not used.
admin.site.unregister(APIKey)


class ClientAPIKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in SCOPES], initial=DEFAULT_SCOPES,
        widget=forms.CheckboxSelectMultiple,
        help_text="What the key may call (docs/api.md#authentication). A change reaches every "
                  "server within API_KEY_CACHE_SECONDS.")

    class Meta:
        model = ClientAPIKey
        fields = ["name", "client_id", "scopes", "expiry_date", "revoked"]

    def clean_scopes(self) -> list[str]:
        chosen = set(self.cleaned_data["scopes"])
        return [scope for scope in SCOPES if scope in chosen]


@admin.register(ClientAPIKey)
class ClientAPIKeyAdmin(APIKeyModelAdmin):
    form = ClientAPIKeyForm
    list_display = [*APIKeyModelAdmin.list_display, "client_id", "scope_list"]
    search_fields = [*APIKeyModelAdmin.search_fields, "client_id"]

    @admin.display(description="scopes")
    def scope_list(self, obj: ClientAPIKey) -> str:
        return ", ".join(obj.scopes)


@admin.register(PredictionLog)
class PredictionLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_select_related = ["model_version"]
    list_display = ["created_at", "model_name", "model_version", "arm", "value", "actual",
                    "latency_ms", "client_id"]
    list_filter = ["model_name", "arm"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in PredictionLog._meta.fields]
