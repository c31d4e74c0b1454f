"""Anomaly spikes (docs/monitoring.md#anomaly-spikes alert kind `anomaly_spike`)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from scipy import stats

from mlregistry.models import MLModelVersion
from monitoring import anomaly
from monitoring.models import Alert
from monitoring.tasks import performance_check_task
from tests.factories import drift_frame, prediction_logs_create, register_profiled_version


@pytest.fixture
def detector(data_scientist, reviewer, deployer):
    """A live anomaly model that flagged 2 % of its validation rows."""
    version = register_profiled_version(user=data_scientist, reviewer=reviewer,
                                        deployer=deployer, name="post-anomalies",
                                        task="anomaly_detection", rows=200)
    MLModelVersion.objects.filter(pk=version.pk).update(metrics={"contamination": 0.02})
    return version


def _log(version, *, n: int, flagged: int) -> None:
    prediction_logs_create(version=version, frame=drift_frame(n=n, seed=1),
                           values=[True] * flagged + [False] * (n - flagged),
                           anomaly_scores=[0.0] * n,
                           created_at=timezone.now() - timedelta(minutes=5))


def test_spike_test_matches_scipy_binomial_test(settings):
    p_value, spike = anomaly.anomaly_spike_test(n=400, flagged=40, expected=0.02)

    assert p_value == pytest.approx(
        stats.binomtest(40, 400, 0.02, alternative="greater").pvalue, abs=1e-12)
    assert spike


def test_a_few_extra_flags_are_not_a_spike():
    _, spike = anomaly.anomaly_spike_test(n=400, flagged=12, expected=0.02)  # 3 %, not 3x

    assert not spike


@pytest.mark.django_db
def test_flagging_ten_times_the_validation_share_raises_an_anomaly_spike_alert(detector):
    _log(detector, n=300, flagged=60)

    rate = anomaly.anomaly_rate_check(version_id=detector.pk)

    assert (rate.n, rate.flagged, rate.spike) == (300, 60, True)
    alert = Alert.objects.get(kind="anomaly_spike")
    assert (alert.model_name, alert.version) == ("post-anomalies", detector.version)
    assert alert.payload["flagged"] == 60


@pytest.mark.django_db
def test_the_validation_share_raises_nothing(detector):
    _log(detector, n=300, flagged=6)

    assert not anomaly.anomaly_rate_check(version_id=detector.pk).spike
    assert not Alert.objects.filter(kind="anomaly_spike").exists()


@pytest.mark.django_db
def test_too_few_rows_are_not_judged(detector, settings):
    settings.DRIFT_MIN_SAMPLES = 100
    _log(detector, n=50, flagged=50)

    rate = anomaly.anomaly_rate_check(version_id=detector.pk)

    assert (rate.p_value, rate.spike) == (None, False)


@pytest.mark.django_db
def test_the_hourly_performance_task_checks_anomaly_models(detector):
    _log(detector, n=300, flagged=60)

    performance_check_task()

    assert Alert.objects.filter(kind="anomaly_spike", version=detector.version).exists()
