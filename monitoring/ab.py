"""A/B evaluation (docs/monitoring.md#ab-tests): each running challenger against the champion, an
automatic stop of a challenger that breaks the SLO or clearly loses, and "promote winner".

Window: from the challenger's latest `ab_test_started` audit row to now. Per arm (the
champion's `champion` rows and the challenger's `challenger` rows): answered predictions,
labelled ones, the live metric (MAE for regression, accuracy for classification),
latency p95 and error rate (monitoring.slo.serving_stats of that version).

Independent evidence (docs/monitoring.md#independent-evidence): no client's outcomes count
for more than AB_MAX_CLIENT_SHARE of an arm's (core.ml.evidence), and each arm needs
outcomes from at least AB_MIN_CLIENTS clients; the metric and the significance test use
the outcomes that count. Significance (monitoring.significance): Welch's t-test on absolute
errors, or the two-proportion z-test on accuracy. Verdict: `inconclusive` while an arm has
fewer than AB_MIN_LABELLED labelled predictions; `insufficient_independent_evidence` while
an arm's outcomes come from too few clients or fewer than AB_MIN_LABELLED of them count;
`inconclusive` while p >= AB_SIGNIFICANCE_LEVEL; else the arm with the better metric.
Anomaly detectors have no live metric: their tests are judged on the SLO alone.

Automatic stop, through mlregistry.services.model_version_test_stop (the system acts, the
audit row's notes say why with the figures), with an alert naming the challenger:
- the challenger breaks the SLO (monitoring.slo.slo_breaches: p95 latency or error rate,
  with at least SLO_MIN_REQUESTS requests): alert kind `slo`;
- the verdict is `champion_better` and the challenger's metric is worse than the
  champion's by more than AB_MAX_DEGRADATION of it: alert kind `performance`.
"""

from dataclasses import asdict, dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core.errors import ConflictError, IllegalTransitionError
from core.ml.kinds import ANOMALY, REGRESSION, task_kind
from core.permissions import require_permission
from mlregistry import preconditions
from mlregistry import selectors as registry
from mlregistry import services as registry_services
from mlregistry.models import MLModelVersion, Status
from mlregistry.preconditions import DEPLOY_PERMISSION
from monitoring import significance
from monitoring.alerts import alert_raise
from monitoring.models import ABEvaluation, Alert
from monitoring.performance import Outcomes, outcomes_by_arm
from monitoring.slo import ServingStats, serving_stats, slo_breaches
from predictions.models import PredictionLog

CHAMPION, CHALLENGER = PredictionLog.Arm.CHAMPION, PredictionLog.Arm.CHALLENGER
Verdict, Action = ABEvaluation.Verdict, ABEvaluation.Action


class NoWinnerError(ConflictError):
    """No running A/B test has a significant winner to act on."""

    code = "no_winner"


@dataclass(frozen=True)
class Arm:
    """One arm's figures, as stored in ABEvaluation.arms."""

    version: str
    n: int
    n_labelled: int
    metric: float | None  # over the outcomes that count
    latency_p95_ms: float | None
    error_rate: float | None
    requests: int
    n_counted: int  # labelled predictions whose outcome counts (no client over its share)
    label_sources: int  # distinct clients (or keys without one) that gave the outcomes


def _arm(*, version: MLModelVersion, arm: str, task: str, start: datetime, end: datetime
         ) -> tuple[Arm, Outcomes | None, ServingStats]:
    labelled = outcomes_by_arm(version_id=version.pk, start=start, end=end, arm=arm).get(arm)
    outcomes = labelled.counted(settings.AB_MAX_CLIENT_SHARE) if labelled else None
    n = PredictionLog.objects.filter(model_version_id=version.pk, arm=arm, created_at__gte=start,
                                     created_at__lt=end).count()
    stats = serving_stats(model_name=version.model.name, start=start, end=end,
                          version_id=version.pk)
    metric = None
    if outcomes is not None and outcomes.n and task != ANOMALY:
        metric = (float(outcomes.absolute_errors().mean()) if task == REGRESSION
                  else outcomes.correct() / outcomes.n)
    figures = Arm(version=version.version, n=n, n_labelled=labelled.n if labelled else 0,
                  metric=metric, latency_p95_ms=stats.latency_p95_ms,
                  error_rate=stats.error_rate, requests=stats.requests,
                  n_counted=outcomes.n if outcomes else 0,
                  label_sources=labelled.source_count() if labelled else 0)
    return figures, outcomes, stats


def _significance(task: str, champion: Outcomes | None, challenger: Outcomes | None
                  ) -> significance.SignificanceResult | None:
    if task == ANOMALY:
        return None
    if task == REGRESSION:
        return significance.welch_t_test(
            champion_errors=champion.absolute_errors() if champion else (),
            challenger_errors=challenger.absolute_errors() if challenger else ())
    return significance.two_proportion_z_test(
        champion_correct=champion.correct() if champion else 0,
        champion_n=champion.n if champion else 0,
        challenger_correct=challenger.correct() if challenger else 0,
        challenger_n=challenger.n if challenger else 0)


def _dependence(*, champion: Arm, challenger: Arm) -> str:
    """Why the arms' outcomes are not independent enough to judge by, or "" when they are."""
    shortfalls = []
    for name, arm in ((CHAMPION, champion), (CHALLENGER, challenger)):
        if arm.label_sources < settings.AB_MIN_CLIENTS:
            shortfalls.append(
                f"the {name}'s {arm.n_labelled} outcomes come from {arm.label_sources} "
                f"client(s), fewer than the {settings.AB_MIN_CLIENTS} required")
        elif arm.n_counted < settings.AB_MIN_LABELLED:
            shortfalls.append(
                f"of the {name}'s {arm.n_labelled} outcomes only {arm.n_counted} count "
                f"(no client may give more than {settings.AB_MAX_CLIENT_SHARE:.0%} of "
                f"them), fewer than the {settings.AB_MIN_LABELLED} required")
    if not shortfalls:
        return ""
    return ("insufficient independent evidence: " + "; ".join(shortfalls)
            + ". Nothing is stopped or promoted on these outcomes.")


def _verdict(*, task: str, champion: Arm, challenger: Arm,
             result: significance.SignificanceResult | None) -> str:
    if (result is None
            or min(champion.n_labelled, challenger.n_labelled) < settings.AB_MIN_LABELLED):
        return Verdict.INCONCLUSIVE
    if _dependence(champion=champion, challenger=challenger):
        return Verdict.INSUFFICIENT_INDEPENDENT_EVIDENCE
    if result.p_value is None or result.p_value >= settings.AB_SIGNIFICANCE_LEVEL:
        return Verdict.INCONCLUSIVE
    challenger_wins = ((challenger.metric > champion.metric)
                       if task_kind(task).live_higher_is_better
                       else (challenger.metric < champion.metric))
    return Verdict.CHALLENGER_BETTER if challenger_wins else Verdict.CHAMPION_BETTER


def _relative_loss(*, task: str, champion: Arm, challenger: Arm) -> float | None:
    """How much worse the challenger's metric is, as a share of the champion's."""
    if champion.metric is None or challenger.metric is None or champion.metric == 0:
        return None
    worse_by = (champion.metric - challenger.metric if task_kind(task).live_higher_is_better
                else challenger.metric - champion.metric)
    return worse_by / abs(champion.metric)


def _stop_reason(*, task: str, metric: str, verdict: str, champion: Arm, challenger: Arm,
                 stats: ServingStats, result) -> tuple[str, str]:
    """(alert kind, the human-readable why with figures), or ("", "") to keep the test."""
    breaches = slo_breaches(stats)
    if breaches:
        broken = []
        if "latency" in breaches:
            broken.append(f"p95 latency {stats.latency_p95_ms:.1f} ms > "
                          f"{settings.SLO_P95_LATENCY_MS:g} ms")
        if "error_rate" in breaches:
            broken.append(f"error rate {stats.error_rate:.2%} > {settings.SLO_MAX_ERROR_RATE:.2%}")
        return Alert.Kind.SLO, (
            f"challenger {challenger.version} breaks the SLO: {'; '.join(broken)} "
            f"over {stats.requests} requests ({stats.errors} failed)")
    loss = _relative_loss(task=task, champion=champion, challenger=challenger)
    clearly_worse = loss is not None and loss > settings.AB_MAX_DEGRADATION
    if verdict == Verdict.CHAMPION_BETTER and clearly_worse:
        return Alert.Kind.PERFORMANCE, (
            f"challenger {challenger.version} is significantly worse than champion "
            f"{champion.version}: live {metric} {challenger.metric:.4f} against "
            f"{champion.metric:.4f} ({loss:.1%} worse, more than the "
            f"{settings.AB_MAX_DEGRADATION:.0%} allowed) on {challenger.n_labelled} and "
            f"{champion.n_labelled} labelled predictions; {result.test} statistic "
            f"{result.statistic:.3f}, p = {result.p_value:.3g}")
    return "", ""


def ab_evaluate_challenger(*, champion: MLModelVersion, challenger: MLModelVersion,
                           now: datetime | None = None) -> ABEvaluation:
    """Evaluate one running challenger against the champion; stop it when it must stop."""
    now = now or timezone.now()
    task = champion.model.task
    # Every test starts with an `ab_test_started` audit row; creation bounds it regardless.
    start = registry.ab_test_started_at(version=challenger) or challenger.created_at
    champion_arm, champion_outcomes, _ = _arm(version=champion, arm=CHAMPION, task=task,
                                              start=start, end=now)
    challenger_arm, challenger_outcomes, stats = _arm(version=challenger, arm=CHALLENGER,
                                                      task=task, start=start, end=now)
    result = _significance(task, champion_outcomes, challenger_outcomes)
    verdict = _verdict(task=task, champion=champion_arm, challenger=challenger_arm, result=result)
    metric = task_kind(task).live_metric or ""
    kind, why = _stop_reason(task=task, metric=metric, verdict=verdict, champion=champion_arm,
                             challenger=challenger_arm, stats=stats, result=result)
    action, reason = Action.NONE, why
    with transaction.atomic():
        if why:
            try:
                registry_services.model_version_test_stop(version=challenger, reason=why)
                action = Action.STOPPED
            except IllegalTransitionError:
                # Someone ended the test while it was evaluated: nothing left to stop.
                reason = f"not stopped, the test had already ended: {why}"
        elif verdict == Verdict.INSUFFICIENT_INDEPENDENT_EVIDENCE:
            reason = _dependence(champion=champion_arm, challenger=challenger_arm)
        evaluation = ABEvaluation.objects.create(
            model_name=champion.model.name, champion=champion, challenger=challenger,
            window_start=start, window_end=now,
            arms={CHAMPION: asdict(champion_arm), CHALLENGER: asdict(challenger_arm)},
            metric=metric, test=result.test if result else "",
            statistic=result.statistic if result else None,
            p_value=result.p_value if result else None,
            verdict=verdict, action=action, reason=reason, created_at=now,
            experiment=challenger.experiment,
        )
        if action == Action.STOPPED:
            alert_raise(
                kind=kind, severity=Alert.Severity.WARNING, model_name=champion.model.name,
                version=challenger.version,
                message=(f"{champion.model.name}: A/B test"
                         f"{f' {evaluation.experiment}' if evaluation.experiment else ''} "
                         f"stopped automatically: {why}"),
                payload={"ab_evaluation_id": evaluation.pk, "challenger": challenger.version,
                         "experiment": evaluation.experiment,
                         "champion": champion.version, "arms": evaluation.arms,
                         "verdict": verdict, "p_value": evaluation.p_value},
            )
    return evaluation


def _running(model_name: str) -> tuple[MLModelVersion | None, list[MLModelVersion]]:
    versions = list(MLModelVersion.objects.select_related("model").filter(
        model__name=model_name, status__in=[Status.PRODUCTION, Status.STAGING])
        .exclude(status=Status.STAGING, traffic_percentage=0).order_by("pk"))
    champion = next((v for v in versions if v.status == Status.PRODUCTION), None)
    return champion, [v for v in versions if v.status == Status.STAGING]


def ab_evaluate(*, model_name: str, now: datetime | None = None) -> list[ABEvaluation]:
    """One evaluation per running challenger (traffic > 0) of the model."""
    champion, challengers = _running(model_name)
    if champion is None:
        return []
    now = now or timezone.now()
    return [ab_evaluate_challenger(champion=champion, challenger=challenger, now=now)
            for challenger in challengers]


def ab_evaluate_all(*, now: datetime | None = None) -> list[ABEvaluation]:
    """ab_evaluate for every model with a running challenger."""
    now = now or timezone.now()
    names = sorted({live.model_name for live in registry.live_versions_all()
                    if live.status == Status.STAGING and live.traffic_percentage > 0})
    return [evaluation for name in names for evaluation in ab_evaluate(model_name=name, now=now)]


def ab_promote_check(*, model_name: str, user: AbstractBaseUser,
                     challenger: MLModelVersion | None = None) -> ABEvaluation:
    """Precondition of "promote winner", asked by the admin and enforced by the service:
    the user may deploy, and the latest evaluation of a running test (of `challenger`,
    when given) against the current champion has a winner. Returns that evaluation."""
    require_permission(user, DEPLOY_PERMISSION, "promote A/B winners")
    champion, challengers = _running(model_name)
    if challenger is not None:
        challengers = [running for running in challengers if running.pk == challenger.pk]
    latest = (ABEvaluation.objects.select_related("champion", "challenger")
              .filter(model_name=model_name, challenger__in=challengers, champion=champion)
              .first()) if champion and challengers else None
    if latest is None:
        tested = (f"{challenger} is not a challenger" if challenger
                  else f"{model_name} has no A/B test")
        raise NoWinnerError(f"{tested} with an evaluation against the champion",
                            details={"model": model_name})
    if latest.verdict in (Verdict.INCONCLUSIVE, Verdict.INSUFFICIENT_INDEPENDENT_EVIDENCE):
        why = ("is inconclusive: there is no winner yet" if latest.verdict == Verdict.INCONCLUSIVE
               else f"has no winner: {latest.reason}")
        raise NoWinnerError(
            f"the latest A/B evaluation of {model_name} ({latest.challenger.version} against "
            f"{latest.champion.version}) {why}",
            details={"model": model_name, "ab_evaluation_id": latest.pk,
                     "verdict": latest.verdict})
    if latest.verdict == Verdict.CHALLENGER_BETTER:
        preconditions.separate_deployer_check(latest.challenger, user, "promote")
    return latest


def ab_promote_winner(*, model_name: str, user: AbstractBaseUser,
                      challenger: MLModelVersion | None = None) -> MLModelVersion:
    """Act on the latest evaluation of a running test (of `challenger`, when given): a
    better challenger is deployed as champion, a worse one has its test ended; returns the
    winner."""
    latest = ab_promote_check(model_name=model_name, user=user, challenger=challenger)
    figures = latest.arms
    summary = (f"A/B evaluation #{latest.pk} at {latest.created_at:%Y-%m-%d %H:%M}: "
               f"{latest.metric} champion {figures[CHAMPION]['metric']} against challenger "
               f"{figures[CHALLENGER]['metric']}, {latest.test} p = {latest.p_value}")
    if latest.verdict == Verdict.CHALLENGER_BETTER:
        return registry_services.model_version_deploy(
            version=latest.challenger, user=user, notes=f"promoted as A/B winner: {summary}")
    registry_services.model_version_end_test(
        version=latest.challenger, user=user, notes=f"champion won the A/B test: {summary}")
    return MLModelVersion.objects.get(pk=latest.champion_id)
