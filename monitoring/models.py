"""Monitoring tables."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Alert(models.Model):
    """Something an operator must look at, de-duplicated while it stays open."""

    class Severity(models.TextChoices):
        INFO = "info"
        WARNING = "warning"
        CRITICAL = "critical"

    class Kind(models.TextChoices):
        DRIFT = "drift"
        PERFORMANCE = "performance"
        SLO = "slo"
        FAIRNESS = "fairness"
        INTEGRITY = "integrity"
        ANOMALY_SPIKE = "anomaly_spike"
        RETRAIN_FAILED = "retrain_failed"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    model_name = models.CharField(max_length=100)
    version = models.CharField(max_length=32, blank=True)
    message = models.TextField()
    payload = models.JSONField(default=dict, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    count = models.PositiveIntegerField(default=1)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                        on_delete=models.PROTECT)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen"]
        indexes = [models.Index(fields=["kind", "model_name", "version", "resolved_at"])]
        constraints = [
            # One open alert per condition: repeats raise its count instead.
            models.UniqueConstraint(fields=["kind", "model_name", "version"],
                                    condition=Q(resolved_at__isnull=True),
                                    name="one_open_alert_per_condition"),
        ]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.kind} {self.model_name} {self.version}".strip()
