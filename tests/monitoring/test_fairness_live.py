"""Live fairness audit on logged predictions with outcomes (monitoring.fairness)."""

from datetime import timedelta

import numpy
import pytest
from django.utils import timezone

from core.ml.fairness import fairness_report
from core.ml.schema import feature_spec
from monitoring.fairness import fairness_audit, fairness_audit_all
from monitoring.models import Alert, FairnessReport
from tests.factories import labelled_logs_create, register_deployed_classifier

pytestmark = pytest.mark.django_db

SCHEMA = {
    "target": "converted",
    "features": [
        feature_spec(name="followers", dtype="float"),
        feature_spec(name="hashtags", dtype="int"),
        feature_spec(name="region", dtype="category", categories=["apac", "emea"],
                     protected=True, input=False),
        feature_spec(name="email", dtype="category", pii=True, protected=True, input=False),
    ],
}


@pytest.fixture
def now():
    return timezone.now()


def log_groups(version, *, rates: dict[str, float], n: int, created_at, seed: int = 0):
    """`n` labelled predictions per region, predicted positive at the given rate."""
    rng = numpy.random.default_rng(seed)
    values, actuals, probabilities, features = [], [], [], []
    for region, rate in rates.items():
        for i in range(n):
            value = int(i < rate * n)
            values.append(value)
            actuals.append(int(rng.random() < 0.5))
            probabilities.append({"0": 0.3 if value else 0.7, "1": 0.7 if value else 0.3})
            features.append({"followers": 1.0, "hashtags": 1, "region": region})
    labelled_logs_create(version=version, values=values, actuals=actuals,
                         probabilities=probabilities, features=features, created_at=created_at)
    return values, actuals, features


def test_live_fairness_report_matches_the_validation_report_on_the_same_rows(people, now):
    version = register_deployed_classifier(**people, schema=SCHEMA)
    values, actuals, features = log_groups(version, rates={"apac": 0.5, "emea": 0.55}, n=30,
                                           created_at=now - timedelta(hours=1))

    audit = fairness_audit(version_id=version.pk, now=now)

    expected = fairness_report(task="binary_classification",
                               protected={"region": [f["region"] for f in features]},
                               y_true=actuals, y_pred=values, positive_label=1)
    assert audit.report == expected
    assert set(audit.report["attributes"]) == {"region"}  # the PII attribute is never logged
    assert audit.n_labelled == 60 and audit.passed is True
    assert FairnessReport.objects.get().pk == audit.pk
    assert not Alert.objects.exists()


def test_skewed_group_fails_the_gate_and_raises_fairness_alert(people, now):
    version = register_deployed_classifier(**people, schema=SCHEMA)
    log_groups(version, rates={"apac": 0.2, "emea": 0.8}, n=30,
               created_at=now - timedelta(hours=1))

    [audit] = fairness_audit_all(now=now)

    region = audit.report["attributes"]["region"]
    assert region["demographic_parity_ratio"] == pytest.approx(0.25)
    assert audit.passed is False
    alert = Alert.objects.get()
    assert (alert.kind, alert.model_name, alert.version) == (
        "fairness", version.model.name, version.version)
    assert "region (0.2500)" in alert.message
    assert alert.payload["fairness_report_id"] == audit.pk


def test_small_groups_are_not_judged(people, now):
    version = register_deployed_classifier(**people, schema=SCHEMA)
    log_groups(version, rates={"apac": 0.0, "emea": 1.0}, n=5,
               created_at=now - timedelta(hours=1))

    audit = fairness_audit(version_id=version.pk, now=now)

    assert audit.passed is None
    assert not Alert.objects.exists()


def test_version_without_protected_attributes_is_not_audited(champion, now):
    assert fairness_audit(version_id=champion.pk, now=now) is None
    assert fairness_audit_all(now=now) == []
    assert not FairnessReport.objects.exists()
