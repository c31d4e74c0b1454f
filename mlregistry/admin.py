from django.contrib import admin
from django.utils.html import format_html

from mlregistry import selectors
from mlregistry.models import (
    MLModel,
    MLModelVersion,
    ModelTransition,
    TrainingDataset,
    TrainingJob,
)
from pulselytics.admin_mixins import ReadOnlyAdminMixin


@admin.register(MLModel)
class MLModelAdmin(admin.ModelAdmin):
    list_display = ["name", "task", "client_id", "created_at"]
    list_filter = ["task"]
    search_fields = ["name", "description", "client_id"]


class ModelTransitionInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ModelTransition
    fields = ["sequence", "created_at", "actor", "from_status", "to_status", "reason", "notes",
              "traffic_before", "traffic_after"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["sequence"]


@admin.register(MLModelVersion)
class MLModelVersionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only here: every state change goes through mlregistry.services."""

    list_display = ["model", "version", "status", "traffic_percentage", "is_shadow", "gates",
                    "created_by", "approved_by", "created_at"]
    list_filter = ["status", "model", "model__client_id"]
    search_fields = ["model__name", "version", "model_sha256"]
    inlines = [ModelTransitionInline]

    @admin.display(description="Gates")
    def gates(self, obj: MLModelVersion) -> str:
        failed = selectors.failed_gates(obj)
        return f"FAILED: {', '.join(failed)}" if failed else "passed"


@admin.register(ModelTransition)
class ModelTransitionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["model", "sequence", "version", "from_status", "to_status", "reason",
                    "actor", "created_at"]
    list_filter = ["model", "to_status", "reason"]


@admin.register(TrainingDataset)
class TrainingDatasetAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["model_name", "original_name", "rows", "short_sha256", "uploaded_by", "created_at"]
    list_filter = ["model_name"]
    readonly_fields = [field.name for field in TrainingDataset._meta.fields]

    @admin.display(description="SHA256")
    def short_sha256(self, obj: TrainingDataset) -> str:
        return obj.sha256[:12]


@admin.register(TrainingJob)
class TrainingJobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Training runs queued for the Celery worker, with their live progress."""

    list_display = ["pk", "recipe", "client_id", "state", "progress_bar", "stage", "version",
                    "requested_by", "created_at", "finished_at"]
    list_filter = ["state", "recipe"]
    readonly_fields = [field.name for field in TrainingJob._meta.fields]

    @admin.display(description="Progress")
    def progress_bar(self, obj: TrainingJob) -> str:
        return format_html('<progress value="{}" max="100" title="{}%"></progress> {}%',
                           obj.progress, obj.progress, obj.progress)
