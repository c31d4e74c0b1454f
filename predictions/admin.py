from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from core.admin_mixins import ReadOnlyAdminMixin
from predictions.models import ClientAPIKey, PredictionLog

# Keys are ClientAPIKey rows; the library's own table is not used.
admin.site.unregister(APIKey)



@admin.register(ClientAPIKey)
class ClientAPIKeyAdmin(APIKeyModelAdmin):
    list_display = [*APIKeyModelAdmin.list_display, "client_id"]
    search_fields = [*APIKeyModelAdmin.search_fields, "client_id"]


@admin.register(PredictionLog)
class PredictionLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_select_related = ["model_version"]
    list_display = ["created_at", "model_name", "model_version", "arm", "value", "actual",
                    "latency_ms", "client_id"]
    list_filter = ["model_name", "arm"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in PredictionLog._meta.fields]
