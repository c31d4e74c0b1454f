"""Monitoring tables: drift, live performance, SLO, fairness and A/B reports, alerts, and the
audit trail of people's changes to the schedules.

Reports are written by the scheduled checks (one row per check and version or model) and
never edited; the dashboard and the API read the latest ones and their history.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Report(models.Model):
    """What every report has: the model, the window it judged, and when it was made."""

    model_name = models.CharField(max_length=100)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
        abstract = True
        ordering = ["-created_at", "-pk"]


class VersionReport(Report):
    """A report on one version of the model."""

    model_version = models.ForeignKey("mlregistry.MLModelVersion", on_delete=models.PROTECT,
                                      related_name="+")
    version = models.CharField(max_length=32)

    class Meta(Report.Meta):
        abstract = True


class DriftReport(VersionReport):
    """One drift check of a live version: its logged inputs and outputs in a window
    against the version's reference profile (docs/monitoring.md#drift)."""

    class Status(models.TextChoices):
        OK = "ok"
        INSUFFICIENT_DATA = "insufficient_data"

    n_reference = models.PositiveIntegerField()
    n_current = models.PositiveIntegerField()
    status = models.CharField(max_length=32, choices=Status.choices)
    dataset_drift = models.BooleanField(default=False)
    # {name: {"kind", "psi", "ks_statistic", "ks_pvalue", "chi2_statistic", "chi2_pvalue",
    #         "js_distance", "drifted", "severity"}} (docs/api.md#drift drift endpoint)
    features = models.JSONField(default=dict)
    prediction = models.JSONField(null=True, blank=True)

    class Meta(Report.Meta):
        indexes = [models.Index(fields=["model_version", "created_at"]),
                   models.Index(fields=["model_name", "created_at"])]

    def __str__(self) -> str:
        return f"drift {self.model_name} {self.version} {self.created_at:%Y-%m-%d %H:%M}"


class PerformanceReport(VersionReport):
    """Live metrics of one version and arm from logged predictions with feedback."""

    arm = models.CharField(max_length=16)
    n_labelled = models.PositiveIntegerField()
    # MAE/R2 for regression, accuracy/F1/Brier for classification; empty when n_labelled = 0.
    metrics = models.JSONField(default=dict)
    # The received outcomes against the training target's profile, with the drift check's
    # figures (monitoring.stats); null when the version has no target profile.
    outcome_drift = models.JSONField(null=True, blank=True)

    class Meta(Report.Meta):
        indexes = [models.Index(fields=["model_version", "created_at"]),
                   models.Index(fields=["model_name", "created_at"])]

    def __str__(self) -> str:
        return f"performance {self.model_name} {self.version} {self.arm}"


class EstimatedPerformanceReport(VersionReport):
    """Performance of one version and arm estimated from its logged predictions, without
    labels (docs/monitoring.md#estimated-performance): CBPE for binary classifiers, DLE for
    regressors."""

    arm = models.CharField(max_length=16)
    method = models.CharField(max_length=16)  # "cbpe" or "dle" (core.ml.estimation)
    n_predictions = models.PositiveIntegerField()
    # {metric: {"value", "lower", "upper", "method"}}; values null where undefined.
    estimated = models.JSONField(default=dict)
    # The version's validation figures the estimate is compared with.
    validation = models.JSONField(default=dict)

    class Meta(Report.Meta):
        indexes = [models.Index(fields=["model_version", "created_at"]),
                   models.Index(fields=["model_name", "created_at"])]

    def __str__(self) -> str:
        return f"estimated performance {self.model_name} {self.version} {self.arm}"


class SLOReport(Report):
    """Service level of one model over a window: p95 latency and error rate."""

    requests = models.PositiveIntegerField()
    errors = models.PositiveIntegerField()
    error_rate = models.FloatField(null=True, blank=True)
    latency_p50_ms = models.FloatField(null=True, blank=True)
    latency_p95_ms = models.FloatField(null=True, blank=True)
    # Which objectives were broken: a subset of ["latency", "error_rate"].
    breaches = models.JSONField(default=list)

    class Meta(Report.Meta):
        verbose_name = "SLO report"  # the admin would title-case it "Slo report"
        indexes = [models.Index(fields=["model_name", "created_at"])]

    def __str__(self) -> str:
        return f"SLO {self.model_name} {self.created_at:%Y-%m-%d %H:%M}"


class FairnessReport(VersionReport):
    """Live fairness audit of one version on logged predictions with outcomes."""

    n_labelled = models.PositiveIntegerField()
    report = models.JSONField(default=dict)  # same shape as the version's fairness_report
    passed = models.BooleanField(null=True, blank=True)  # null: nothing to judge

    class Meta(Report.Meta):
        indexes = [models.Index(fields=["model_version", "created_at"])]

    def __str__(self) -> str:
        return f"fairness {self.model_name} {self.version}"


class ABEvaluation(Report):
    """One evaluation of a running A/B test: per-arm figures, a significance test and a
    verdict; `action` records what the platform did about it (an automatic stop)."""

    class Verdict(models.TextChoices):
        CHAMPION_BETTER = "champion_better"
        CHALLENGER_BETTER = "challenger_better"
        INCONCLUSIVE = "inconclusive"
        # Too few clients gave the outcomes (docs/monitoring.md#independent-evidence).
        INSUFFICIENT_INDEPENDENT_EVIDENCE = "insufficient_independent_evidence"

    class Action(models.TextChoices):
        NONE = "none"
        STOPPED = "stopped"

    champion = models.ForeignKey("mlregistry.MLModelVersion", on_delete=models.PROTECT,
                                 related_name="+")
    challenger = models.ForeignKey("mlregistry.MLModelVersion", on_delete=models.PROTECT,
                                   related_name="+")
    # {"champion": {...}, "challenger": {...}}: n, n_labelled, n_counted, label_sources,
    # metric, latency_p95_ms, error_rate, requests (monitoring.ab.Arm)
    arms = models.JSONField(default=dict)
    metric = models.CharField(max_length=32)
    test = models.CharField(max_length=32)  # "welch_t" or "two_proportion_z"
    statistic = models.FloatField(null=True, blank=True)
    p_value = models.FloatField(null=True, blank=True)
    verdict = models.CharField(max_length=40, choices=Verdict.choices)
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.NONE)
    reason = models.TextField(blank=True)
    # The test's name as the deployer gave it (mlregistry MLModelVersion.experiment).
    experiment = models.CharField(max_length=64, blank=True, default="")

    class Meta(Report.Meta):
        indexes = [models.Index(fields=["model_name", "created_at"])]
        verbose_name = "A/B evaluation"

    def __str__(self) -> str:
        name = f" {self.experiment}" if self.experiment else ""
        return f"A/B {self.model_name}{name}: {self.verdict}"


class ShadowEvaluation(Report):
    """One evaluation of a running shadow test: the shadow's answers against the champion's
    to the same requests (docs/monitoring.md#shadow-tests), and a verdict."""

    class Verdict(models.TextChoices):
        CHAMPION_BETTER = "champion_better"
        SHADOW_BETTER = "shadow_better"
        INCONCLUSIVE = "inconclusive"

    champion = models.ForeignKey("mlregistry.MLModelVersion", on_delete=models.PROTECT,
                                 related_name="+")
    shadow = models.ForeignKey("mlregistry.MLModelVersion", on_delete=models.PROTECT,
                               related_name="+")
    pairs = models.PositiveIntegerField()  # requests both answered, instance by instance
    labelled = models.PositiveIntegerField()  # pairs with an outcome
    # Classification and anomaly detection: share of pairs with the same answer.
    agreement = models.FloatField(null=True, blank=True)
    # Regression: mean and 95th percentile of |shadow - champion|.
    mean_abs_difference = models.FloatField(null=True, blank=True)
    p95_abs_difference = models.FloatField(null=True, blank=True)
    metric = models.CharField(max_length=32, blank=True)  # "mae" or "accuracy"
    champion_metric = models.FloatField(null=True, blank=True)
    shadow_metric = models.FloatField(null=True, blank=True)
    test = models.CharField(max_length=32, blank=True)  # "mcnemar_exact" or "wilcoxon..."
    statistic = models.FloatField(null=True, blank=True)
    p_value = models.FloatField(null=True, blank=True)
    verdict = models.CharField(max_length=24, choices=Verdict.choices)
    reason = models.TextField(blank=True)

    class Meta(Report.Meta):
        indexes = [models.Index(fields=["model_name", "created_at"])]

    def __str__(self) -> str:
        return f"shadow {self.model_name}: {self.verdict}"


class CanaryCheck(Report):
    """One look of the canary guard at a running canary against the champion over the
    canary's time so far (docs/monitoring.md#canary-guard), and what it did."""

    class Decision(models.TextChoices):
        BAKING = "baking"  # healthy, bake time not over
        HELD = "held"  # bake time over, too few requests to judge: not promoted yet
        PROMOTED = "promoted"
        ROLLED_BACK = "rolled_back"
        ENDED = "ended"  # someone ended or changed the canary while it was judged

    canary = models.ForeignKey("mlregistry.MLModelVersion", on_delete=models.PROTECT,
                               related_name="+")
    champion = models.ForeignKey("mlregistry.MLModelVersion", on_delete=models.PROTECT,
                                 related_name="+")
    version = models.CharField(max_length=32)  # the canary's
    experiment = models.CharField(max_length=64, blank=True, default="")
    bake_until = models.DateTimeField()
    # {"canary": {...}, "champion": {...}}: requests, errors, error_rate, latency p50/p95
    # (monitoring.slo.ServingStats) and drift (n, judged, dataset_drift, drifted, critical,
    # prediction_drifted) over the same window.
    arms = models.JSONField(default=dict)
    breaches = models.JSONField(default=list)  # "slo_latency", "slo_error_rate", ...
    decision = models.CharField(max_length=16, choices=Decision.choices)
    reason = models.TextField()

    class Meta(Report.Meta):
        indexes = [models.Index(fields=["model_name", "created_at"])]

    def __str__(self) -> str:
        return f"canary {self.model_name} {self.version}: {self.decision}"


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
        CANARY = "canary"
        ESTIMATED_PERFORMANCE = "estimated_performance"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    model_name = models.CharField(max_length=100)
    version = models.CharField(max_length=32, blank=True)
    message = models.TextField()
    payload = models.JSONField(default=dict, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    count = models.PositiveIntegerField(default=1)
    # When the alert was last sent out; a repeat within ALERT_COOLDOWN_SECONDS is counted,
    # not sent again.
    notified_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                        on_delete=models.PROTECT, related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+")
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


class AlertDelivery(models.Model):
    """One sending of an alert through one channel (email or webhook), with its retries."""

    class Channel(models.TextChoices):
        EMAIL = "email"
        WEBHOOK = "webhook"

    class State(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"  # gave up after the last retry

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    target = models.CharField(max_length=500)  # the recipients or the webhook URL
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "alert deliveries"

    def __str__(self) -> str:
        return f"{self.channel} {self.state} for alert {self.alert_id}"


class ScheduleChange(models.Model):
    """One immutable audit row per change a person makes to the periodic tasks or their
    schedules (django-celery-beat's rows), chained and sealed like the registry's transitions
    (docs/monitoring.md#schedules): `row_sha256` is the HMAC-SHA256, under the audit key
    named by `key_id`, of the row's content, which includes the previous row's seal. Beat's
    own bookkeeping (last run, run count) is not a change and writes no row."""

    class Action(models.TextChoices):
        ADDED = "added"
        CHANGED = "changed"
        DELETED = "deleted"

    sequence = models.PositiveIntegerField(unique=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="+")
    created_at = models.DateTimeField()
    action = models.CharField(max_length=16, choices=Action.choices)
    object_type = models.CharField(max_length=64)  # the beat model's name: "periodictask"
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=255)
    # {field: [before, after]}; a field an addition sets or a deletion removes has null on
    # the other side.
    changes = models.JSONField(default=dict)
    previous_sha256 = models.CharField(max_length=64, blank=True)
    row_sha256 = models.CharField(max_length=64)
    key_id = models.CharField(max_length=64)

    class Meta:
        ordering = ["-sequence"]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} {self.object_type} {self.object_repr}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("ScheduleChange rows are immutable")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("ScheduleChange rows are immutable")


class RegistryEventDelivery(models.Model):
    """One sealed registry audit row sent as a signed event to REGISTRY_WEBHOOK_URL, with its
    retries (docs/api.md#registry-events). A model's events are sent in the order of its
    chain: one waits while an earlier one of the same model is pending."""

    class State(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"  # gave up after the last retry

    transition = models.OneToOneField("mlregistry.ModelTransition", on_delete=models.PROTECT,
                                      related_name="+")
    target = models.CharField(max_length=500)  # the webhook URL when it was created
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # The receiver's HTTP status at the last attempt; null when none answered.
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "registry event deliveries"
        indexes = [models.Index(fields=["state", "created_at"])]

    def __str__(self) -> str:
        return f"registry event {self.transition_id} {self.state}"
