from django.contrib import admin

from monitoring.models import Alert


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["severity", "kind", "model_name", "version", "message", "count",
                    "first_seen", "last_seen", "acknowledged_by", "resolved_at"]
    list_filter = ["severity", "kind", "resolved_at"]
    readonly_fields = [field.name for field in Alert._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
