"""Shadow tests (docs/monitoring.md#shadow-tests): each running shadow's answers against the
champion's to the same requests, a verdict, and "promote shadow".

A shadow answers a copy of every request; its log rows share the request id, time and
feature hash of the row the client was answered with, so each champion row is paired with
the shadow's answer to the same instance (pinned and challenger answers are not the
champion's and are left out). Window: from the shadow's latest `shadow_started` audit row
to now. Outcomes posted for the champion's prediction reach the shadow's row too.

Figures: classification and anomaly detection, the agreement rate (same answer);
regression, the mean and 95th percentile of |shadow - champion|. Once pairs have
outcomes, a paired test (monitoring.significance): McNemar's exact test on correctness
(classification) or the Wilcoxon signed-rank test on absolute errors (regression), and the
live metric of each (accuracy, MAE). Verdict as for A/B tests: `inconclusive` while fewer
than AB_MIN_LABELLED pairs have outcomes or while p >= AB_SIGNIFICANCE_LEVEL; else the
better of the two. Anomaly detectors are unsupervised: agreement only, always
`inconclusive`. Nothing is stopped automatically: a shadow never answers a client.
"""

from collections import defaultdict
from datetime import datetime

import numpy
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils import timezone

from core.ml.kinds import ANOMALY, REGRESSION
from core.permissions import require_permission
from mlregistry import preconditions
from mlregistry import services as registry_services
from mlregistry.models import MLModelVersion, ModelTransition, Status
from mlregistry.preconditions import DEPLOY_PERMISSION
from monitoring import significance
from monitoring.ab import NoWinnerError
from monitoring.models import ShadowEvaluation
from predictions.models import PredictionLog

Verdict = ShadowEvaluation.Verdict
SHADOW_STARTED = "shadow_started"


def _started_at(shadow: MLModelVersion) -> datetime:
    started = (ModelTransition.objects.filter(version=shadow, reason=SHADOW_STARTED)
               .order_by("-sequence").values_list("created_at", flat=True).first())
    return started or shadow.created_at


def _answers(*, version_id: int, arm: str, start: datetime, end: datetime):
    return (PredictionLog.objects.filter(model_version_id=version_id, arm=arm,
                                         created_at__gte=start, created_at__lt=end)
            .order_by().values_list("request_id", "created_at", "features_sha256", "value",
                                    "actual")
            .iterator(chunk_size=settings.MONITORING_CHUNK_SIZE))


def answer_pairs(*, champion: MLModelVersion, shadow: MLModelVersion, start: datetime,
                 end: datetime) -> list[tuple]:
    """(champion value, shadow value, outcome or None) for every champion answer in
    [start, end) that the shadow answered too."""
    shadow_answers = defaultdict(list)
    for request_id, at, features, value, _ in _answers(
            version_id=shadow.pk, arm=PredictionLog.Arm.SHADOW, start=start, end=end):
        shadow_answers[(request_id, at, features)].append(value)
    pairs = []
    for request_id, at, features, value, actual in _answers(
            version_id=champion.pk, arm=PredictionLog.Arm.CHAMPION, start=start, end=end):
        waiting = shadow_answers.get((request_id, at, features))
        if waiting:
            # Equal instances of one request: each model answers them alike.
            pairs.append((value, waiting.pop(), actual))
    return pairs


def shadow_evaluate_one(*, champion: MLModelVersion, shadow: MLModelVersion,
                        now: datetime | None = None) -> ShadowEvaluation:
    """Evaluate one running shadow against the champion and store the evaluation."""
    now = now or timezone.now()
    task = champion.model.task
    start = _started_at(shadow)
    pairs = answer_pairs(champion=champion, shadow=shadow, start=start, end=now)
    labelled = [(mine, theirs, actual) for mine, theirs, actual in pairs if actual is not None]
    figures = {"pairs": len(pairs), "labelled": len(labelled)}
    if task == REGRESSION:
        differences = numpy.abs(numpy.array([theirs - mine for mine, theirs, _ in pairs],
                                            dtype=float))
        if len(differences):
            figures.update(mean_abs_difference=float(differences.mean()),
                           p95_abs_difference=float(numpy.percentile(differences, 95)))
    elif pairs:
        figures["agreement"] = sum(mine == theirs for mine, theirs, _ in pairs) / len(pairs)
    result, champion_metric, shadow_metric, metric = None, None, None, ""
    if labelled and task == REGRESSION:
        actual = numpy.array([a for _, _, a in labelled], dtype=float)
        champion_errors = numpy.abs(numpy.array([m for m, _, _ in labelled], dtype=float)
                                    - actual)
        shadow_errors = numpy.abs(numpy.array([s for _, s, _ in labelled], dtype=float) - actual)
        metric, champion_metric = "mae", float(champion_errors.mean())
        shadow_metric = float(shadow_errors.mean())
        result = significance.wilcoxon_signed_rank_test(champion_errors=champion_errors,
                                                        shadow_errors=shadow_errors)
    elif labelled and task != ANOMALY:
        champion_correct = [m == a for m, _, a in labelled]
        shadow_correct = [s == a for _, s, a in labelled]
        metric = "accuracy"
        champion_metric = sum(champion_correct) / len(labelled)
        shadow_metric = sum(shadow_correct) / len(labelled)
        result = significance.mcnemar_exact_test(champion_correct=champion_correct,
                                                 shadow_correct=shadow_correct)
    verdict, reason = Verdict.INCONCLUSIVE, ""
    if task == ANOMALY:
        reason = "an anomaly detector has no outcomes to judge by: agreement only"
    elif len(labelled) < settings.AB_MIN_LABELLED:
        reason = (f"{len(labelled)} answer pairs with outcomes, fewer than the "
                  f"{settings.AB_MIN_LABELLED} a verdict needs (AB_MIN_LABELLED)")
    elif result.p_value is None or result.p_value >= settings.AB_SIGNIFICANCE_LEVEL:
        reason = f"no significant difference ({result.test}, p = {result.p_value})"
    else:
        shadow_wins = (shadow_metric < champion_metric if task == REGRESSION
                       else shadow_metric > champion_metric)
        verdict = Verdict.SHADOW_BETTER if shadow_wins else Verdict.CHAMPION_BETTER
        reason = (f"{metric} shadow {shadow_metric:.4f} against champion "
                  f"{champion_metric:.4f} on {len(labelled)} answer pairs; {result.test} "
                  f"p = {result.p_value:.3g}")
    return ShadowEvaluation.objects.create(
        model_name=champion.model.name, window_start=start, window_end=now, created_at=now,
        champion=champion, shadow=shadow, metric=metric, champion_metric=champion_metric,
        shadow_metric=shadow_metric, test=result.test if result else "",
        statistic=result.statistic if result else None,
        p_value=result.p_value if result else None, verdict=verdict, reason=reason,
        **figures)


def _running(model_name: str) -> tuple[MLModelVersion | None, list[MLModelVersion]]:
    versions = list(MLModelVersion.objects.select_related("model").filter(
        Q(status=Status.PRODUCTION) | Q(status=Status.STAGING, is_shadow=True),
        model__name=model_name).order_by("pk"))
    champion = next((v for v in versions if v.status == Status.PRODUCTION), None)
    return champion, [v for v in versions if v.is_shadow]


def shadow_evaluate(*, model_name: str, now: datetime | None = None
                    ) -> list[ShadowEvaluation]:
    """One evaluation per running shadow of the model."""
    champion, shadows = _running(model_name)
    if champion is None:
        return []
    now = now or timezone.now()
    return [shadow_evaluate_one(champion=champion, shadow=shadow, now=now)
            for shadow in shadows]


def shadow_evaluate_all(*, now: datetime | None = None) -> list[ShadowEvaluation]:
    """shadow_evaluate for every model with a running shadow."""
    now = now or timezone.now()
    names = sorted(MLModelVersion.objects.filter(status=Status.STAGING, is_shadow=True)
                   .values_list("model__name", flat=True).distinct())
    return [evaluation for name in names
            for evaluation in shadow_evaluate(model_name=name, now=now)]


def shadow_promote_check(*, model_name: str, user: AbstractBaseUser,
                         shadow: MLModelVersion | None = None) -> ShadowEvaluation:
    """Precondition of "promote shadow", asked by the admin and enforced by the service:
    the user may deploy, and the latest evaluation of a running shadow (`shadow`, when
    given) against the current champion says the shadow is better. Returns it."""
    require_permission(user, DEPLOY_PERMISSION, "promote shadows")
    champion, shadows = _running(model_name)
    if shadow is not None:
        shadows = [running for running in shadows if running.pk == shadow.pk]
    latest = (ShadowEvaluation.objects.select_related("champion", "shadow")
              .filter(model_name=model_name, shadow__in=shadows, champion=champion)
              .first()) if champion and shadows else None
    if latest is None:
        tested = (f"{shadow} is not a running shadow" if shadow
                  else f"{model_name} has no shadow test")
        raise NoWinnerError(f"{tested} with an evaluation against the champion",
                            details={"model": model_name})
    if latest.verdict != Verdict.SHADOW_BETTER:
        raise NoWinnerError(
            f"the latest shadow evaluation of {model_name} ({latest.shadow.version} against "
            f"{latest.champion.version}) is {latest.verdict}: {latest.reason}",
            details={"model": model_name, "shadow_evaluation_id": latest.pk,
                     "verdict": latest.verdict})
    preconditions.separate_deployer_check(latest.shadow, user, "promote")
    return latest


def shadow_promote(*, model_name: str, user: AbstractBaseUser,
                   shadow: MLModelVersion | None = None) -> MLModelVersion:
    """Deploy the shadow that the latest evaluation found better as champion (the old
    champion is archived, as by any deploy); the audit row's notes cite the evaluation."""
    latest = shadow_promote_check(model_name=model_name, user=user, shadow=shadow)
    summary = (f"promoted as shadow winner: shadow evaluation #{latest.pk} at "
               f"{latest.created_at:%Y-%m-%d %H:%M}: {latest.reason}")
    return registry_services.model_version_deploy(version=latest.shadow, user=user,
                                                  notes=summary)
