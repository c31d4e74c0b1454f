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
