"""The canary guard (docs/monitoring.md#canary-guard): every running canary against the
champion over the same time, promoted after its bake time if it stayed healthy, rolled back
at the first breach.

A canary is a challenger that a deployer started with a traffic share and a bake time
(mlregistry.services.model_version_deploy, `canary=P, bake_minutes=M`); its routing is the
challenger's (sticky per routing key). The window is from the canary's `canary_started`
audit row to now, the same for both versions, so the champion serves the same clients at
the same time. Guards, each judged once the canary has served SLO_MIN_REQUESTS requests:

- SLO: the canary's p95 latency or error rate breaks the objectives (monitoring.slo);
- error rate against the champion: the canary's exceeds the champion's by more than
  CANARY_MAX_ERROR_RATE_INCREASE (an absolute difference of shares);
- drift: the canary's inputs or outputs drift from its reference profile (dataset drift, a
  critical feature, or drifted predictions; monitoring.drift's statistics) while the
  champion's, over the same window, do not; judged once both have DRIFT_MIN_SAMPLES rows.
  Drift of the traffic itself shows in both and is the drift check's alert, not the
  canary's fault.

A breach rolls the canary back at once (mlregistry.services.model_version_canary_roll_back:
the system acts, the audit row says why with the figures) and raises a `canary` alert.
Healthy at the end of its bake time with at least SLO_MIN_REQUESTS requests, it is promoted
to champion by the system (model_version_canary_promote; the sealed rows carry the figures);
with fewer it is held, still baking, until it has them. Every look is stored as a
CanaryCheck.
"""

from dataclasses import asdict
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import IllegalTransitionError
from mlregistry import selectors as registry
from mlregistry import services as registry_services
from mlregistry.models import MLModelVersion, Status
from monitoring.alerts import alert_raise
from monitoring.drift import DriftFigures, drift_figures
from monitoring.models import Alert, CanaryCheck
from monitoring.slo import ERROR_RATE, LATENCY, ServingStats, serving_stats, slo_breaches
from predictions.models import PredictionLog

Decision = CanaryCheck.Decision
SLO_LATENCY, SLO_ERROR_RATE = f"slo_{LATENCY}", f"slo_{ERROR_RATE}"
ERROR_RATE_INCREASE, DRIFT = "error_rate_increase", "drift"
LIVE_ARMS = [PredictionLog.Arm.CHAMPION, PredictionLog.Arm.CHALLENGER]


def _drift_summary(figures: DriftFigures) -> dict:
    prediction_drifted = bool(figures.prediction and figures.prediction.get("drifted"))
    return {"n": figures.n_current, "judged": figures.sufficient,
            "dataset_drift": figures.dataset_drift, "critical": figures.critical,
            "drifted": figures.drifted_features, "prediction_drifted": prediction_drifted,
            "alarming": figures.dataset_drift or figures.critical or prediction_drifted}


def _arm_figures(*, version: MLModelVersion, start: datetime, end: datetime) -> dict:
    stats = serving_stats(model_name=version.model.name, start=start, end=end,
                          version_id=version.pk)
    drift = drift_figures(version=version, window_start=start, window_end=end, arms=LIVE_ARMS)
    return {"version": version.version, **asdict(stats), "drift": _drift_summary(drift)}


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.2%}"


def _breaches(canary: dict, champion: dict) -> list[tuple[str, str]]:
    """(code, why with the figures) for each guard the canary breaks."""
    stats = ServingStats(**{field: canary[field] for field in ServingStats.__dataclass_fields__})
    found = []
    broken = slo_breaches(stats)
    if LATENCY in broken:
        found.append((SLO_LATENCY, f"p95 latency {stats.latency_p95_ms:.1f} ms > "
                                   f"{settings.SLO_P95_LATENCY_MS:g} ms (SLO)"))
    if ERROR_RATE in broken:
        found.append((SLO_ERROR_RATE, f"error rate {_percent(stats.error_rate)} > "
                                      f"{_percent(settings.SLO_MAX_ERROR_RATE)} (SLO)"))
    if stats.requests >= settings.SLO_MIN_REQUESTS and stats.error_rate is not None:
        baseline = champion["error_rate"] or 0.0
        if stats.error_rate - baseline > settings.CANARY_MAX_ERROR_RATE_INCREASE:
            found.append((ERROR_RATE_INCREASE, (
                f"error rate {_percent(stats.error_rate)} against the champion's "
                f"{_percent(champion['error_rate'])}, more than "
                f"{settings.CANARY_MAX_ERROR_RATE_INCREASE:.2%} above it")))
    drift, champion_drift = canary["drift"], champion["drift"]
    if (drift["judged"] and champion_drift["judged"] and drift["alarming"]
            and not champion_drift["alarming"]):
        what = ([f"drifted features {', '.join(drift['drifted'])}"] if drift["drifted"] else [])
        what += ["drifted predictions"] if drift["prediction_drifted"] else []
        found.append((DRIFT, f"drift from its reference ({'; '.join(what) or 'dataset drift'})"
                             f" over {drift['n']} predictions while the champion's "
                             f"{champion_drift['n']} show none"))
    return found


def _figures_line(arm: dict) -> str:
    drift = arm["drift"]
    drift_text = ("drift not judged (fewer than "
                  f"{settings.DRIFT_MIN_SAMPLES} predictions)" if not drift["judged"]
                  else "drift: " + ("yes" if drift["alarming"] else "none"))
    latency = ("n/a" if arm["latency_p95_ms"] is None else f"{arm['latency_p95_ms']:.1f} ms")
    return (f"{arm['version']}: {arm['requests']} requests, {arm['errors']} failed "
            f"(error rate {_percent(arm['error_rate'])}), p95 latency {latency}, {drift_text}")


def canary_check(*, canary: MLModelVersion, now: datetime | None = None) -> CanaryCheck | None:
    """Judge one running canary at `now`: roll it back on a breach, promote it when its bake
    time is over and it stayed healthy. None when it has no champion to be judged against."""
    now = now or timezone.now()
    champion = (MLModelVersion.objects.select_related("model")
                .filter(model_id=canary.model_id, status=Status.PRODUCTION).first())
    if champion is None:
        return None
    start = registry.ab_test_started_at(version=canary) or canary.created_at
    arms = {"canary": _arm_figures(version=canary, start=start, end=now),
            "champion": _arm_figures(version=champion, start=start, end=now)}
    breaches = _breaches(arms["canary"], arms["champion"])
    named = f" (experiment {canary.experiment})" if canary.experiment else ""
    figures = (f"canary {_figures_line(arms['canary'])}; champion "
               f"{_figures_line(arms['champion'])}; since {start:%Y-%m-%d %H:%M} UTC")
    decision = Decision.BAKING
    reason = f"healthy so far, baking until {canary.canary_until:%Y-%m-%d %H:%M} UTC: {figures}"
    if breaches:
        decision = Decision.ROLLED_BACK
        reason = (f"canary {canary.version}{named} rolled back: "
                  f"{'; '.join(why for _, why in breaches)}. Figures: {figures}")
    elif now >= canary.canary_until:
        if arms["canary"]["requests"] >= settings.SLO_MIN_REQUESTS:
            decision = Decision.PROMOTED
            reason = (f"canary {canary.version}{named} promoted after a healthy bake: "
                      f"{figures}")
        else:
            decision = Decision.HELD
            reason = (f"bake time over but only {arms['canary']['requests']} requests, fewer "
                      f"than the {settings.SLO_MIN_REQUESTS} needed to judge (SLO_MIN_REQUESTS)"
                      f": not promoted yet. Figures: {figures}")
    with transaction.atomic():
        try:
            if decision == Decision.ROLLED_BACK:
                registry_services.model_version_canary_roll_back(version=canary, reason=reason)
            elif decision == Decision.PROMOTED:
                registry_services.model_version_canary_promote(version=canary, summary=reason)
        except IllegalTransitionError:
            # Someone ended, promoted or rolled back the canary while it was judged.
            decision, reason = Decision.ENDED, f"not acted on, no longer a canary: {reason}"
        check = CanaryCheck.objects.create(
            model_name=canary.model.name, window_start=start, window_end=now, created_at=now,
            canary=canary, champion=champion, version=canary.version,
            experiment=canary.experiment, bake_until=canary.canary_until, arms=arms,
            breaches=[code for code, _ in breaches], decision=decision, reason=reason)
        if decision == Decision.ROLLED_BACK:
            refused = any(code in (SLO_ERROR_RATE, ERROR_RATE_INCREASE) for code, _ in breaches)
            alert_raise(
                kind=Alert.Kind.CANARY, model_name=canary.model.name, version=canary.version,
                severity=Alert.Severity.CRITICAL if refused else Alert.Severity.WARNING,
                message=f"{canary.model.name}: {reason}",
                payload={"canary_check_id": check.pk, "canary": canary.version,
                         "champion": champion.version, "experiment": canary.experiment,
                         "breaches": check.breaches, "arms": arms})
    return check


def canaries_running(*, model_name: str | None = None) -> list[MLModelVersion]:
    canaries = MLModelVersion.objects.select_related("model").filter(
        canary_until__isnull=False).order_by("model__name", "pk")
    return list(canaries.filter(model__name=model_name) if model_name else canaries)


def canary_check_all(*, now: datetime | None = None,
                     model_name: str | None = None) -> list[CanaryCheck]:
    """canary_check for every running canary (of one model, when named)."""
    if model_name is not None:
        registry.model_get(name=model_name)  # an unknown name is an error, not "no canary"
    now = now or timezone.now()
    checks = [canary_check(canary=canary, now=now)
              for canary in canaries_running(model_name=model_name)]
    return [check for check in checks if check is not None]
