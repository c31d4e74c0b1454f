from django.contrib import admin

from mlregistry.models import MLModel, MLModelVersion, ModelTransition


@admin.register(MLModel)
class MLModelAdmin(admin.ModelAdmin):
    list_display = ["name", "task", "client_id", "created_at"]
    list_filter = ["task"]
    search_fields = ["name", "description", "client_id"]


class ModelTransitionInline(admin.TabularInline):
    model = ModelTransition
    fields = ["sequence", "created_at", "actor", "from_status", "to_status", "reason", "notes",
              "traffic_before", "traffic_after"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["sequence"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MLModelVersion)
class MLModelVersionAdmin(admin.ModelAdmin):
    """Read-only here: every state change goes through mlregistry.services."""

    list_display = ["model", "version", "status", "traffic_percentage", "is_shadow",
                    "created_by", "approved_by", "created_at"]
    list_filter = ["status", "model", "model__client_id"]
    search_fields = ["model__name", "version", "model_sha256"]
    inlines = [ModelTransitionInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ModelTransition)
class ModelTransitionAdmin(admin.ModelAdmin):
    list_display = ["model", "sequence", "version", "from_status", "to_status", "reason",
                    "actor", "created_at"]
    list_filter = ["model", "to_status", "reason"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
