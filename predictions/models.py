"""Serving tables: API keys, the prediction log, and idempotent requests' answers."""

import uuid

from django.db import models
from rest_framework_api_key.models import AbstractAPIKey

from predictions.routing import PINNED_ARM

# What a key may do (docs/api.md#authentication): each endpoint needs one scope.
SCOPE_PREDICT, SCOPE_EXPLAIN, SCOPE_FEEDBACK, SCOPE_READ = "predict", "explain", "feedback", "read"
SCOPES = (SCOPE_PREDICT, SCOPE_EXPLAIN, SCOPE_FEEDBACK, SCOPE_READ)
# Outcomes steer monitoring and retraining: a key posts them only when asked for.
DEFAULT_SCOPES = (SCOPE_PREDICT, SCOPE_EXPLAIN, SCOPE_READ)


def default_scopes() -> list[str]:
    return list(DEFAULT_SCOPES)


class ClientAPIKey(AbstractAPIKey):
    """A REST client's key (hashed, revocable; djangorestframework-api-key).

    A key bound to a client may only ask for that client's predictions: its requests are
    served by the client's own model where it has one, and asking for another client is
    refused (403 permission_denied). A key with no client may name any client. `scopes`
    lists what it may call (SCOPES).
    """

    client_id = models.CharField(max_length=100, blank=True, default="",
                                 help_text="Empty: may act for any client.")
    scopes = models.JSONField(default=default_scopes,
                              help_text="What the key may call: predict, explain, feedback, "
                                        "read.")

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    @property
    def feedback_source(self) -> str:
        """Who vouches for the outcomes this key posts (docs/monitoring.md#independent-evidence):
        its client, or the key itself when it has none."""
        return f"client:{self.client_id}" if self.client_id else f"key:{self.prefix}"


class PredictionLog(models.Model):
    """Every answered prediction (and every shadow prediction), written in the request.

    Inputs are stored without PII fields; `features_sha256` identifies the full input.
    """

    class Arm(models.TextChoices):
        CHAMPION = "champion"
        CHALLENGER = "challenger"
        SHADOW = "shadow"
        PINNED = PINNED_ARM  # a request that named its version (never routed)

    prediction_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: the (model_version, created_at) index below serves every lookup by
    # version, and each index costs every logged row an insert (bench/RESULTS.md).
    model_version = models.ForeignKey("mlregistry.MLModelVersion", on_delete=models.PROTECT,
                                      related_name="+", db_index=False)
    model_name = models.CharField(max_length=100)
    arm = models.CharField(max_length=16, choices=Arm.choices)
    request_id = models.CharField(max_length=64)
    routing_key_sha256 = models.CharField(max_length=64)
    client_id = models.CharField(max_length=100, blank=True)
    features = models.JSONField()
    features_sha256 = models.CharField(max_length=64)
    value = models.JSONField()
    probabilities = models.JSONField(null=True, blank=True)
    anomaly_score = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField()
    created_at = models.DateTimeField(db_index=True)
    actual = models.JSONField(null=True, blank=True)
    actual_at = models.DateTimeField(null=True, blank=True)
    # ClientAPIKey.feedback_source of the key that posted `actual`. A database default too:
    # the request's log rows are written by COPY, which names only the columns it fills.
    feedback_source = models.CharField(max_length=120, blank=True, default="", db_default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["model_version", "created_at"]),
            models.Index(fields=["model_name", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.model_name} {self.prediction_id}"


class PredictionFailure(models.Model):
    """A predict or explain request the service failed to answer (5xx), for the error-rate
    SLO. Written outside the failed request's transaction; holds no input values."""

    model_name = models.CharField(max_length=100)
    version = models.CharField(max_length=32, blank=True)
    arm = models.CharField(max_length=16, blank=True)
    endpoint = models.CharField(max_length=16)  # "predict" or "explain"
    request_id = models.CharField(max_length=64)
    code = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["model_name", "created_at"])]

    def __str__(self) -> str:
        return f"{self.model_name} {self.code} {self.created_at:%Y-%m-%d %H:%M}"


class IdempotentRequest(models.Model):
    """A predict request sent with an `Idempotency-Key` (docs/api.md#idempotent-retries).

    Claimed (inserted, `status_code` null) before the request is answered, so two requests
    with the same key never both predict and log: the unique (api_key, key) lets one
    insert win. Then it holds the answer, which a retry with the same key and body gets
    back, byte for byte, for IDEMPOTENCY_WINDOW_SECONDS from `created_at`. Written and read
    by predictions.idempotency only.
    """

    # Indexed by the unique (api_key, key) below.
    api_key = models.ForeignKey(ClientAPIKey, on_delete=models.CASCADE, related_name="+",
                                db_index=False)
    key = models.CharField(max_length=255)
    # SHA256 of the method, path (model and version) and canonical JSON body.
    request_sha256 = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True,
                                                   help_text="Empty while being answered.")
    body = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["api_key", "key"],
                                               name="idempotent_request_key_unique")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status_code or 'in progress'})"
