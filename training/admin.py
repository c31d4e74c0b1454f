from django.contrib import admin
from django.utils.html import format_html

from core.admin_mixins import ReadOnlyAdminMixin
from training.models import TrainingDataset, TrainingJob


@admin.register(TrainingDataset)
class TrainingDatasetAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["model_name", "original_name", "rows", "short_sha256", "uploaded_by",
                    "created_at"]
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
