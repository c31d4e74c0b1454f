"""Anomaly spikes (docs/monitoring.md#anomaly-spikes alert kind `anomaly_spike`): an anomaly
detector that flags far more of its live traffic than it flagged on its validation data (its
`contamination` metric) is seeing a different world, or is being fed one.

A spike needs both: a flagged share at least ANOMALY_SPIKE_FACTOR times the expected one,
and a one-sided binomial test (scipy.stats.binomtest) rejecting "the expected share" at
ANOMALY_SPIKE_P_VALUE. The first keeps tiny excesses on huge windows quiet; the second
keeps a few unlucky rows on small windows quiet.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone
from scipy import stats

from core.ml.kinds import ANOMALY
from mlregistry import selectors as registry
from mlregistry.models import MLModelVersion
from monitoring.alerts import alert_raise
from predictions.models import PredictionLog

# An expected share of zero would make any flag a spike; no detector is that sure.
MIN_EXPECTED_SHARE = 0.001


@dataclass(frozen=True)
class AnomalyRate:
    model_name: str
    version: str
    n: int
    flagged: int
    expected: float
    p_value: float | None  # None: too few rows to judge
    spike: bool

    @property
    def share(self) -> float | None:
        return self.flagged / self.n if self.n else None


def anomaly_spike_test(*, n: int, flagged: int, expected: float) -> tuple[float, bool]:
    """(p-value of "no more flags than expected", whether this is a spike). Pure."""
    expected = max(float(expected), MIN_EXPECTED_SHARE)
    p_value = float(stats.binomtest(flagged, n, expected, alternative="greater").pvalue)
    spike = (flagged / n >= settings.ANOMALY_SPIKE_FACTOR * expected
             and p_value < settings.ANOMALY_SPIKE_P_VALUE)
    return p_value, spike


def anomaly_rate_check(*, version_id: int, now: datetime | None = None) -> AnomalyRate:
    """Flagged share of one anomaly version's answers over the drift window; alerts on a
    spike."""
    now = now or timezone.now()
    version = MLModelVersion.objects.select_related("model").get(pk=version_id)
    counts = PredictionLog.objects.filter(
        model_version_id=version_id,
        created_at__gt=now - timedelta(hours=settings.DRIFT_WINDOW_HOURS),
        created_at__lte=now,
    ).exclude(arm=PredictionLog.Arm.PINNED).aggregate(
        n=Count("pk"), flagged=Count("pk", filter=Q(value=True)))
    expected = float((version.metrics or {}).get("contamination") or 0.0)
    n, flagged = counts["n"], counts["flagged"]
    p_value, spike = (None, False)
    if n >= settings.DRIFT_MIN_SAMPLES:
        p_value, spike = anomaly_spike_test(n=n, flagged=flagged, expected=expected)
    rate = AnomalyRate(model_name=version.model.name, version=version.version, n=n,
                       flagged=flagged, expected=expected, p_value=p_value, spike=spike)
    if spike:
        alert_raise(
            kind="anomaly_spike", severity="warning", model_name=rate.model_name,
            version=rate.version,
            message=(f"{rate.model_name} {rate.version} flagged {flagged} of {n} predictions "
                     f"as anomalies ({rate.share:.1%}) against {expected:.1%} on validation "
                     f"data (binomial p={p_value:.2g})"),
            payload={"n": n, "flagged": flagged, "share": rate.share, "expected": expected,
                     "p_value": p_value},
        )
    return rate


def anomaly_rate_check_all(*, now: datetime | None = None) -> list[AnomalyRate]:
    """Every live anomaly version (champion, challenger or shadow)."""
    return [anomaly_rate_check(version_id=live.version_id, now=now)
            for live in registry.live_versions_all() if live.task == ANOMALY]
