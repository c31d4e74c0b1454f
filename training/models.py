"""Training's tables: stored datasets and training jobs. Work on them lives in services.py.

Both tables were created by the registry app and keep their names; migration
training/0001 took them over (docs/architecture.md).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from mlregistry.models import MLModelVersion


class TrainingDataset(models.Model):
    """A training file, stored once under the SHA256 of its bytes (docs/training.md#datasets)."""

    model_name = models.SlugField(max_length=100, help_text="The recipe or global model it trains.")
    sha256 = models.CharField(max_length=64)
    storage_path = models.CharField(max_length=255)
    format = models.CharField(max_length=16)
    original_name = models.CharField(max_length=255)
    rows = models.PositiveIntegerField()
    columns = models.JSONField(default=list)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "mlregistry_trainingdataset"  # created by the registry app, moved here
        ordering = ["model_name", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["model_name", "sha256"], name="unique_dataset_content"),
        ]

    def __str__(self) -> str:
        return f"{self.model_name} {self.sha256[:12]} ({self.rows} rows)"


class TrainingJob(models.Model):
    """One training run, queued for a Celery worker; its progress shows in the admin."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    recipe = models.SlugField(max_length=100)
    client_id = models.CharField(max_length=100, blank=True, default="")
    dataset = models.ForeignKey(TrainingDataset, null=True, blank=True, on_delete=models.PROTECT)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    reason = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    stage = models.CharField(max_length=100, blank=True)
    version = models.ForeignKey(MLModelVersion, null=True, blank=True, on_delete=models.PROTECT)
    error = models.TextField(blank=True)
    # A retrain (docs/training.md#training-jobs): the dataset plus the model's logged
    # predictions with feedback.
    include_feedback = models.BooleanField(default=False)
    # Written by the running worker every few seconds; a running job without a recent
    # heartbeat (TRAINING_JOB_STALE_SECONDS) lost its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Runs of this job so far; the running worker's attempt owns the job's row.
    attempts = models.PositiveSmallIntegerField(default=0)
    # Storage names the run was about to write, recorded before writing them, so the
    # files of a run that died before its version was committed can be removed.
    artifact_paths = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "mlregistry_trainingjob"  # created by the registry app, moved here
        ordering = ["-created_at"]
        constraints = [
            # One training of a model at a time (docs/monitoring.md#retraining: retrain lock).
            models.UniqueConstraint(
                fields=["recipe", "client_id"], condition=Q(state__in=["queued", "running"]),
                name="one_active_training_per_model",
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="progress_at_most_100"),
        ]

    def __str__(self) -> str:
        target = f"{self.recipe} ({self.client_id})" if self.client_id else self.recipe
        return f"training {target} #{self.pk}: {self.state}"
