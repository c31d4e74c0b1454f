"""Registry tables, choices and constraints. Workflow lives in services.py."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from core.ml.kinds import TASKS
from mlregistry.audit import seal_valid, transition_content

# The task kinds of core.ml.kinds, as choices (member names: the values upper-cased).
Task = models.TextChoices("Task", [(task.upper(), task) for task in TASKS])


class Status(models.TextChoices):
    TRAINING = "training"
    TESTING = "testing"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


# Model names: lowercase letters, digits and hyphens, at most 63 characters. They appear in
# URLs, metric labels, alert subjects and file names; nothing else may reach them.
MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
MODEL_DESCRIPTION_MAX_LENGTH = 2000
EXPERIMENT_NAME_MAX_LENGTH = 64
EXPERIMENT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MODEL_NAME_RULE = ("lowercase letters, digits and hyphens, starting with a letter or digit, "
                   "at most 63 characters")


class MLModel(models.Model):
    name = models.SlugField(max_length=100, unique=True, validators=[
        RegexValidator(MODEL_NAME_PATTERN, message=f"a model name is {MODEL_NAME_RULE}")])
    task = models.CharField(max_length=32, choices=Task.choices)
    description = models.TextField(blank=True)
    client_id = models.CharField(
        max_length=100, blank=True, default="",
        help_text="Set for a per-client model; empty for the global model.",
    )
    # A per-client model specialises a global one; serving falls back to the global model
    # for clients without their own production version.
    global_model = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="client_models"
    )
    # Schema of the newest version; each version keeps its own copy.
    feature_schema = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "ML model"
        constraints = [
            models.UniqueConstraint(
                fields=["global_model", "client_id"], condition=Q(global_model__isnull=False),
                name="one_client_model_per_client",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class MLModelVersion(models.Model):
    model = models.ForeignKey(MLModel, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="created_versions"
    )
    feature_schema = models.JSONField(default=dict)
    artifact_manifest = models.JSONField(default=dict)
    model_sha256 = models.CharField(max_length=64)
    training_dataset_sha256 = models.CharField(max_length=64)
    training_samples = models.PositiveIntegerField(default=0)
    training_duration_seconds = models.FloatField(default=0.0)
    hyperparameters = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    reference_profile = models.JSONField(default=dict, blank=True)
    fairness_report = models.JSONField(default=dict, blank=True)
    gate_results = models.JSONField(default=dict, blank=True)
    # What training did to the data: rows read, dropped without target, imputed per feature,
    # train/validation sizes, the detector used.
    training_report = models.JSONField(default=dict, blank=True)
    # Mean |SHAP contribution| per input feature on held-out rows, computed once when the
    # version was trained or registered (core.ml.importance); None when the
    # model could not be explained. The admin compares it with production's.
    global_importance = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRAINING)
    deployed_at = models.DateTimeField(null=True, blank=True)
    deprecated_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="approved_versions",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approval_notes = models.TextField(blank=True)
    override_justification = models.TextField(blank=True)
    traffic_percentage = models.PositiveSmallIntegerField(
        default=0, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    is_shadow = models.BooleanField(default=False)
    # The name a deployer gave the live A/B test or canary of this version (reports,
    # dashboard and verdicts show it); empty outside a named test.
    experiment = models.CharField(max_length=EXPERIMENT_NAME_MAX_LENGTH, blank=True, default="")
    # While this challenger is a canary (docs/registry.md#canary-deployments): when the
    # canary guard promotes it if it stayed healthy. Null for every other version.
    canary_until = models.DateTimeField(null=True, blank=True)
    # Set when artifact clean-up removed this retired version's files.
    artifacts_deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["model__name", "-created_at"]
        verbose_name = "ML model version"
        permissions = [
            ("approve_mlmodelversion", "Can approve or reject a model version"),
            ("deploy_mlmodelversion", "Can deploy, test and roll back a model version"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["model", "version"], name="unique_version_per_model"),
            models.UniqueConstraint(
                fields=["model"], condition=Q(status="production"),
                name="one_production_version_per_model",
            ),
            models.CheckConstraint(
                condition=Q(traffic_percentage__gte=0) & Q(traffic_percentage__lte=100),
                name="traffic_percentage_0_to_100",
            ),
            # Only the champion and live challengers carry traffic; a shadow never does.
            models.CheckConstraint(
                condition=Q(traffic_percentage=0)
                | (Q(status__in=["production", "staging"]) & Q(is_shadow=False)),
                name="traffic_only_on_live_versions",
            ),
            models.CheckConstraint(
                condition=Q(is_shadow=False) | Q(status="staging"),
                name="shadow_only_in_staging",
            ),
            # A canary is a challenger: approved, not a shadow, with traffic.
            models.CheckConstraint(
                condition=Q(canary_until__isnull=True)
                | (Q(status="staging") & Q(is_shadow=False) & Q(traffic_percentage__gt=0)),
                name="canary_only_on_challengers",
            ),
        ]
        indexes = [models.Index(fields=["model", "status"])]

    def __str__(self) -> str:
        return f"{self.model.name} {self.version}"


class ModelTransition(models.Model):
    """One immutable audit row per state change, chained per model and sealed.

    `row_sha256` is the row's seal: HMAC-SHA256, under the audit key named by `key_id`, of
    the row's content, which includes `previous_sha256` (the previous row's seal) and what
    the version was at that moment (its model_sha256, dataset, schema and gates hashes,
    traffic, shadow flag). Editing any row breaks the chain (mlregistry/audit.py,
    verify_audit).
    """

    model = models.ForeignKey(MLModel, on_delete=models.PROTECT, related_name="transitions")
    # Empty for a change to the model itself (its description).
    version = models.ForeignKey(
        MLModelVersion, null=True, blank=True, on_delete=models.PROTECT,
        related_name="transitions",
    )
    sequence = models.PositiveIntegerField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    created_at = models.DateTimeField()
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    notes = models.TextField(blank=True)
    reason = models.CharField(max_length=64)
    traffic_before = models.PositiveSmallIntegerField(default=0)
    traffic_after = models.PositiveSmallIntegerField(default=0)
    previous_sha256 = models.CharField(max_length=64, blank=True)
    row_sha256 = models.CharField(max_length=64)
    # What the version was when the row was written: bound into the sealed content.
    model_sha256 = models.CharField(max_length=64, blank=True)
    dataset_sha256 = models.CharField(max_length=64, blank=True)
    schema_sha256 = models.CharField(max_length=64, blank=True)
    gates_sha256 = models.CharField(max_length=64, blank=True)
    is_shadow = models.BooleanField(default=False)
    # What the model was: its name, task, client, global model and description.
    identity_sha256 = models.CharField(max_length=64, blank=True)
    # Who ran the command that made the change, as the operating system knows them
    # (empty for the admin, the API and scheduled work).
    os_user = models.CharField(max_length=150, blank=True)
    host = models.CharField(max_length=255, blank=True)
    # The audit key that sealed the row; empty: never sealed (its chain was already broken
    # when sealing began), so it fails verification.
    key_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["model", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["model", "sequence"],
                                    name="unique_transition_sequence"),
        ]
        indexes = [models.Index(fields=["model", "created_at"])]

    def __str__(self) -> str:
        return f"{self.model.name} #{self.sequence}: {self.from_status or '-'} -> {self.to_status}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("ModelTransition rows are immutable")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("ModelTransition rows are immutable")

    def sealed_content(self) -> dict:
        """The content `row_sha256` seals, rebuilt from the stored row."""
        return transition_content(
            model_id=self.model_id, version_id=self.version_id,
            version=self.version.version if self.version_id else "",
            sequence=self.sequence, actor_id=self.actor_id, created_at=self.created_at,
            from_status=self.from_status, to_status=self.to_status, notes=self.notes,
            reason=self.reason, traffic_before=self.traffic_before,
            traffic_after=self.traffic_after, previous_sha256=self.previous_sha256,
            model_sha256=self.model_sha256, dataset_sha256=self.dataset_sha256,
            schema_sha256=self.schema_sha256, gates_sha256=self.gates_sha256,
            is_shadow=self.is_shadow, identity_sha256=self.identity_sha256,
            os_user=self.os_user, host=self.host,
            key_id=self.key_id,
        )

    @property
    def seal_valid(self) -> bool:
        return seal_valid(self.sealed_content(), self.row_sha256)


class RegistryGeneration(models.Model):
    """One row whose counter moves with every registry change.

    Serving processes poll it (one tiny query a second) to notice deploys and rollbacks
    without querying every model on every request.
    """

    generation = models.PositiveBigIntegerField(default=0)
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"registry generation {self.generation}"
