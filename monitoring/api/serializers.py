"""The documented shape of the drift endpoint (docs/api.md#drift), for drf-spectacular."""

from rest_framework import serializers


class DriftFiguresSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["numeric", "categorical"])
    psi = serializers.FloatField(allow_null=True)
    ks_statistic = serializers.FloatField(allow_null=True, help_text="numeric only")
    ks_pvalue = serializers.FloatField(allow_null=True, help_text="numeric only")
    chi2_statistic = serializers.FloatField(allow_null=True, help_text="categorical only")
    chi2_pvalue = serializers.FloatField(allow_null=True, help_text="categorical only")
    js_distance = serializers.FloatField(allow_null=True)
    drifted = serializers.BooleanField()
    severity = serializers.ChoiceField(choices=["none", "warn", "critical"])
    n_current = serializers.IntegerField(help_text="values in the window the figures are "
                                                   "computed on")
    missing = serializers.IntegerField(help_text="values left out: absent, null, NaN or inf")
    current_counts = serializers.JSONField(
        help_text="the window's counts: a list per reference bin (numeric), an object per "
                  "category (categorical)")
    new_categories = serializers.ListField(
        child=serializers.CharField(), allow_null=True,
        help_text="categories the reference never saw (categorical; null for numeric)")


class DriftReportSerializer(serializers.Serializer):
    version = serializers.CharField()
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    n_reference = serializers.IntegerField()
    n_current = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["ok", "insufficient_data"])
    dataset_drift = serializers.BooleanField()
    features = serializers.DictField(child=DriftFiguresSerializer(),
                                     help_text="per input feature; empty for insufficient_data")
    prediction = DriftFiguresSerializer(allow_null=True, help_text="the model's output")


class DriftResponseSerializer(serializers.Serializer):
    model = serializers.CharField()
    reports = DriftReportSerializer(many=True)


# --- performance (docs/api.md#performance) ------------------------------------------------


class EstimateSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="null where undefined (precision "
                                                              "with no predicted positive)")
    lower = serializers.FloatField(allow_null=True, help_text="value - 3 sigma, in range")
    upper = serializers.FloatField(allow_null=True, help_text="value + 3 sigma, in range")
    method = serializers.ChoiceField(choices=["cbpe", "dle"])


class OutcomeDriftSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text='"numeric" (regression) or "categorical" (labels)')
    n_current = serializers.IntegerField(help_text="outcomes compared")
    psi = serializers.FloatField(allow_null=True)
    drifted = serializers.BooleanField(help_text="false below DRIFT_MIN_SAMPLES outcomes")
    severity = serializers.CharField(allow_null=True)


class RealizedSerializer(serializers.Serializer):
    n_labelled = serializers.IntegerField(help_text="predictions with an outcome in the window")
    metrics = serializers.DictField(child=serializers.FloatField(allow_null=True))
    outcome_drift = OutcomeDriftSerializer(
        allow_null=True, help_text="the outcomes against the training target's profile "
                                   "(docs/monitoring.md#outcome-drift); null for a version "
                                   "trained before targets were profiled")


class ArmPerformanceSerializer(serializers.Serializer):
    arm = serializers.CharField(help_text="champion, challenger or shadow")
    checked_at = serializers.DateTimeField()
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    realized = RealizedSerializer(allow_null=True, help_text="null before any outcome")
    n_predictions = serializers.IntegerField(
        allow_null=True, help_text="predictions the estimate is computed on (null: none)")
    estimated = serializers.DictField(
        child=EstimateSerializer(), allow_null=True,
        help_text="metric -> estimate, without labels; null when not estimated")


class VersionPerformanceSerializer(serializers.Serializer):
    version = serializers.CharField()
    role = serializers.ChoiceField(choices=["champion", "challenger", "shadow"])
    estimation_unavailable = serializers.CharField(
        allow_null=True, help_text="why the version has no estimated performance; null when "
                                   "it has")
    arms = ArmPerformanceSerializer(many=True, help_text="the latest check, per arm; empty "
                                                         "before the first")


class PerformanceResponseSerializer(serializers.Serializer):
    model = serializers.CharField()
    versions = VersionPerformanceSerializer(many=True)
