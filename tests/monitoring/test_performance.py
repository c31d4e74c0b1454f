"""Live performance from feedback (monitoring.performance): metrics per version and arm,
reports, and the degradation alert."""

from datetime import timedelta

import numpy
import pytest
from django.utils import timezone
from sklearn import metrics as skm

from monitoring import selectors
from monitoring.models import Alert, PerformanceReport
from monitoring.performance import (
    Outcomes,
    live_metrics,
    performance_evaluate,
    performance_evaluate_all,
)
from tests.factories import labelled_logs_create, register_deployed_classifier

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now()


def regression_rows(version, *, arm, n, seed, noise, created_at):
    rng = numpy.random.default_rng(seed)
    actual = rng.normal(100.0, 20.0, n)
    predicted = actual + rng.normal(0.0, noise, n)
    labelled_logs_create(version=version, arm=arm, values=predicted.tolist(),
                         actuals=actual.tolist(), created_at=created_at)
    return actual, predicted


def test_live_metrics_match_sklearn_per_arm_for_regression(champion, now, settings):
    settings.MONITORING_CHUNK_SIZE = 7  # several chunks
    at = now - timedelta(hours=1)
    champ = regression_rows(champion, arm="champion", n=25, seed=1, noise=5.0, created_at=at)
    chall = regression_rows(champion, arm="challenger", n=15, seed=2, noise=15.0, created_at=at)
    # Neither unlabelled rows nor rows outside the window count.
    labelled_logs_create(version=champion, values=[1.0] * 3, actuals=[None] * 3, created_at=at)
    labelled_logs_create(version=champion, values=[1.0] * 3, actuals=[900.0] * 3,
                         created_at=now - timedelta(days=30))

    for arm, (actual, predicted) in {"champion": champ, "challenger": chall}.items():
        live = live_metrics(version_id=champion.pk, start=now - timedelta(days=1), end=now,
                            arm=arm)
        assert live.n_labelled == len(actual)
        assert live.metrics["mae"] == pytest.approx(skm.mean_absolute_error(actual, predicted),
                                                    abs=1e-9)
        assert live.metrics["r2"] == pytest.approx(skm.r2_score(actual, predicted), abs=1e-9)
        assert live.metrics["rmse"] == pytest.approx(
            skm.root_mean_squared_error(actual, predicted), abs=1e-9)


def test_live_metrics_match_sklearn_for_binary_classification(people, now):
    version = register_deployed_classifier(**people)
    rng = numpy.random.default_rng(4)
    probability = rng.random(40)
    predicted = (probability > 0.5).astype(int)
    actual = (rng.random(40) < probability).astype(int)
    labelled_logs_create(
        version=version, values=predicted.tolist(), actuals=actual.tolist(),
        probabilities=[{"0": 1 - p, "1": p} for p in probability.tolist()],
        created_at=now - timedelta(hours=1))

    live = live_metrics(version_id=version.pk, start=now - timedelta(days=1), end=now)

    assert live.n_labelled == 40
    assert live.metrics["accuracy"] == pytest.approx(skm.accuracy_score(actual, predicted),
                                                     abs=1e-9)
    assert live.metrics["f1"] == pytest.approx(skm.f1_score(actual, predicted), abs=1e-9)
    assert live.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(actual, probability),
                                                    abs=1e-9)
    assert live.metrics["brier"] == pytest.approx(skm.brier_score_loss(actual, probability),
                                                  abs=1e-9)


def test_performance_evaluate_writes_one_report_per_labelled_arm(champion, now):
    at = now - timedelta(hours=1)
    regression_rows(champion, arm="champion", n=5, seed=1, noise=1.0, created_at=at)
    regression_rows(champion, arm="shadow", n=4, seed=2, noise=1.0, created_at=at)

    reports = performance_evaluate(version_id=champion.pk, now=now)

    assert [(r.arm, r.n_labelled) for r in reports] == [("champion", 5), ("shadow", 4)]
    stored = PerformanceReport.objects.get(arm="champion")
    assert stored.model_version_id == champion.pk and set(stored.metrics) == {"mae", "rmse", "r2"}
    assert stored.window_end == now and stored.window_start == now - timedelta(hours=168)
    assert [r.pk for r in selectors.performance_trend(
        model_name=champion.model.name, since=now - timedelta(days=1))] == [r.pk for r in reports]
    assert not Alert.objects.exists()  # too few labels to judge


def test_degraded_live_metric_raises_performance_alert(champion, now, settings):
    settings.PERFORMANCE_MIN_LABELLED = 30
    # Validation r2 is 0.9 (tests.factories); live predictions are mostly noise.
    regression_rows(champion, arm="champion", n=40, seed=5, noise=30.0,
                    created_at=now - timedelta(hours=1))

    performance_evaluate_all(now=now)

    alert = Alert.objects.get()
    report = PerformanceReport.objects.get()
    assert (alert.kind, alert.severity, alert.model_name, alert.version) == (
        "performance", "warning", champion.model.name, champion.version)
    assert alert.payload["metric"] == "r2" and alert.payload["validation"] == 0.9
    assert alert.payload["live"] == report.metrics["r2"] < 0.9 * (1 - 0.2)
    assert "live r2" in alert.message


def test_healthy_live_metric_raises_no_alert(champion, now):
    regression_rows(champion, arm="champion", n=40, seed=5, noise=1.0,
                    created_at=now - timedelta(hours=1))

    performance_evaluate(version_id=champion.pk, now=now)

    assert PerformanceReport.objects.get().metrics["r2"] > 0.9
    assert not Alert.objects.exists()


def test_multiclass_metrics_match_sklearn():
    rng = numpy.random.default_rng(6)
    probabilities = rng.dirichlet([1.0, 1.0, 1.0], 30)
    classes = ["a", "b", "c"]
    predicted = numpy.array(classes)[probabilities.argmax(axis=1)]
    actual = rng.choice(classes, 30)

    figures = Outcomes(task="multiclass_classification", actual=actual, predicted=predicted,
                       probabilities=probabilities, classes=classes).metrics()

    assert figures["accuracy"] == pytest.approx(skm.accuracy_score(actual, predicted), abs=1e-9)
    assert figures["f1"] == pytest.approx(skm.f1_score(actual, predicted, average="macro"),
                                          abs=1e-9)
    assert figures["brier"] == pytest.approx(
        skm.brier_score_loss(actual, probabilities, labels=classes), abs=1e-9)
