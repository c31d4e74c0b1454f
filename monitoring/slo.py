"""Service level objectives per model (docs/monitoring.md#slos): p95 latency and error rate over a
window.

A request is one answer however many instances it carried. The prediction log holds one
row per instance, every row of a request with the same request id, time and latency, so
the answered requests are the (request_id, created_at) groups of champion and challenger
rows; shadow rows answer nobody. The time is part of the key because a client may reuse its
own X-Request-ID. Failed requests are PredictionFailure rows (5xx answers, recorded by the
API). Latency percentiles are numpy's linear ones over one figure per answered request.

A breach raises one `slo` alert per model (the open alert of a condition is unique per
model and version, and SLOs are per model): `critical` when the error rate is broken,
since clients are being refused; `warning` when only latency is, since they are served.
"""

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from mlregistry import selectors as registry
from mlregistry.models import MLModelVersion
from monitoring.alerts import alert_raise
from monitoring.models import Alert, SLOReport
from predictions.models import PredictionFailure, PredictionLog

LATENCY = "latency"
ERROR_RATE = "error_rate"


@dataclass(frozen=True)
class ServingStats:
    requests: int
    errors: int
    error_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None


def _request_latencies(*, model_name: str, start: datetime, end: datetime,
                       version_id: int | None) -> QuerySet:
    """One row per answered request in [start, end) with its latency as `latency`."""
    rows = PredictionLog.objects.filter(
        model_name=model_name, created_at__gte=start, created_at__lt=end,
        arm__in=[PredictionLog.Arm.CHAMPION, PredictionLog.Arm.CHALLENGER],
    )
    if version_id is not None:
        rows = rows.filter(model_version_id=version_id)
    return rows.order_by().values("request_id", "created_at").annotate(latency=Max("latency_ms"))


def _percentile(latencies: QuerySet, *, n: int, q: float) -> float:
    """numpy.percentile(values, q) (method "linear") of the n values, sorted by the database:
    only the two order statistics around the rank are read, so memory does not grow with
    the window, and SQLite and PostgreSQL answer alike."""
    rank = (n - 1) * q / 100
    low = math.floor(rank)
    around = list(latencies.order_by("latency").values_list("latency", flat=True)[low:low + 2])
    if len(around) == 1:
        return float(around[0])
    return float(around[0] + (around[1] - around[0]) * (rank - low))


def serving_stats(*, model_name: str, start: datetime, end: datetime,
                  version_id: int | None = None) -> ServingStats:
    """Requests, failed requests, error rate and latency p50/p95 of a model in [start, end),
    or of one of its versions (`version_id`)."""
    failures = PredictionFailure.objects.filter(model_name=model_name, created_at__gte=start,
                                                created_at__lt=end)
    if version_id is not None:
        version = (MLModelVersion.objects.filter(pk=version_id)
                   .values_list("version", flat=True).first())
        failures = failures.filter(version=version) if version else failures.none()
    latencies = _request_latencies(model_name=model_name, start=start, end=end,
                                   version_id=version_id)
    answered = latencies.count()
    errors = failures.count()
    requests = answered + errors
    return ServingStats(
        requests=requests, errors=errors,
        error_rate=errors / requests if requests else None,
        latency_p50_ms=_percentile(latencies, n=answered, q=50) if answered else None,
        latency_p95_ms=_percentile(latencies, n=answered, q=95) if answered else None,
    )


def slo_breaches(stats: ServingStats) -> list[str]:
    """The objectives `stats` break; none are judged below SLO_MIN_REQUESTS requests."""
    if stats.requests < settings.SLO_MIN_REQUESTS:
        return []
    breaches = []
    if stats.latency_p95_ms is not None and stats.latency_p95_ms > settings.SLO_P95_LATENCY_MS:
        breaches.append(LATENCY)
    if stats.error_rate is not None and stats.error_rate > settings.SLO_MAX_ERROR_RATE:
        breaches.append(ERROR_RATE)
    return breaches


def _breach_message(*, model_name: str, stats: ServingStats, breaches: list[str]) -> str:
    broken = []
    if LATENCY in breaches:
        broken.append(f"p95 latency {stats.latency_p95_ms:.1f} ms "
                      f"(objective {settings.SLO_P95_LATENCY_MS:g} ms)")
    if ERROR_RATE in breaches:
        broken.append(f"error rate {stats.error_rate:.2%} "
                      f"(objective {settings.SLO_MAX_ERROR_RATE:.2%})")
    return (f"{model_name} breaks its SLO over the last {settings.SLO_WINDOW_MINUTES:g} min: "
            f"{'; '.join(broken)}; {stats.errors} failed of {stats.requests} requests")


def slo_check(*, model_name: str, now: datetime | None = None) -> SLOReport:
    """Judge a model's SLOs over [now - SLO_WINDOW_MINUTES, now): store an SLOReport and
    raise an `slo` alert when an objective is broken."""
    now = now or timezone.now()
    start = now - timedelta(minutes=settings.SLO_WINDOW_MINUTES)
    stats = serving_stats(model_name=model_name, start=start, end=now)
    breaches = slo_breaches(stats)
    with transaction.atomic():
        report = SLOReport.objects.create(
            model_name=model_name, window_start=start, window_end=now,
            requests=stats.requests, errors=stats.errors, error_rate=stats.error_rate,
            latency_p50_ms=stats.latency_p50_ms, latency_p95_ms=stats.latency_p95_ms,
            breaches=breaches, created_at=now,
        )
        if breaches:
            alert_raise(
                kind=Alert.Kind.SLO, model_name=model_name, version="",
                severity=(Alert.Severity.CRITICAL if ERROR_RATE in breaches
                          else Alert.Severity.WARNING),
                message=_breach_message(model_name=model_name, stats=stats, breaches=breaches),
                payload={**asdict(stats), "breaches": breaches, "slo_report_id": report.pk,
                         "window_start": start.isoformat(), "window_end": now.isoformat(),
                         "objectives": {"latency_p95_ms": settings.SLO_P95_LATENCY_MS,
                                        "error_rate": settings.SLO_MAX_ERROR_RATE,
                                        "min_requests": settings.SLO_MIN_REQUESTS}},
            )
    return report


def slo_check_all(*, now: datetime | None = None) -> list[SLOReport]:
    """slo_check for every model with a live version (champion, challenger or shadow)."""
    now = now or timezone.now()
    names = sorted({live.model_name for live in registry.live_versions_all()})
    return [slo_check(model_name=name, now=now) for name in names]
