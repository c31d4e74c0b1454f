"""Serving writes: predictions (logged in the request), explanations, outcome feedback."""

import logging
import math
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core import prometheus as metrics
from core.errors import (
    BatchTooLargeError,
    DatabaseUnavailableError,
    FeedbackExistsError,
    PredictionNotFoundError,
    ValidationError,
)
from core.logging import exception_outline
from core.ml.outputs import class_label
from core.ml.recipes import lifecycle_hooks, recipes_all
from core.ml.recipes.base import LifecycleHooks
from mlregistry.selectors import LiveVersion
from predictions.loader import LiveModel, Outputs, ServedVersion, model_cache
from predictions.log_rows import (
    LogGroup,
    canonical_json,
    features_sha256,
    log_rows_insert,
    uuid4_texts,
)
from predictions.models import (
    DEFAULT_SCOPES,
    SCOPES,
    ClientAPIKey,
    PredictionFailure,
    PredictionLog,
)
from predictions.parsers import NON_FINITE
from predictions.routing import Challenger, challenger_for, routing_key_sha256
from predictions.validation import ValidatedBatch, instances_validate

logger = logging.getLogger("pulselytics.predictions")


def api_key_scopes_clean(scopes: Iterable[str] | None) -> list[str]:
    """The scopes a key gets: those named (each one of SCOPES), else DEFAULT_SCOPES."""
    if scopes is None:
        return list(DEFAULT_SCOPES)
    named = set(scopes)
    unknown = sorted(named - set(SCOPES))
    if unknown or not named:
        raise ValidationError(
            f"API key scopes are some of {', '.join(SCOPES)}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "; none given"),
            details={"field": "scopes"})
    return [scope for scope in SCOPES if scope in named]


def api_key_create(*, name: str, client_id: str = "",
                   scopes: Iterable[str] | None = None) -> tuple[ClientAPIKey, str]:
    """Create a revocable API key; the plain key is returned once and only its hash is kept.
    Without `scopes` it may predict, explain and read (DEFAULT_SCOPES), not post outcomes."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("an API key needs a name")
    return ClientAPIKey.objects.create_key(name=name, client_id=client_id.strip(),
                                           scopes=api_key_scopes_clean(scopes))


def api_key_replace(*, name: str, client_id: str = "",
                    scopes: Iterable[str] | None = None) -> tuple[ClientAPIKey, str]:
    """Revoke every active key of this name and create a new one, in one transaction."""
    with transaction.atomic():
        ClientAPIKey.objects.filter(name=name, revoked=False).update(revoked=True)
        return api_key_create(name=name, client_id=client_id, scopes=scopes)


@dataclass(frozen=True)
class Routed:
    live_model: LiveModel
    scope: str
    version: LiveVersion
    arm: str


@dataclass(frozen=True)
class PredictionResult:
    model: str
    served_by: str
    scope: str
    predictions: list[dict]


@dataclass(frozen=True)
class ExplanationResult:
    model: str
    served_by: str
    scope: str
    explanations: list[dict]


def _route(*, model_name: str, client_id: str, routing_key: str) -> Routed:
    live_model, scope = model_cache.live_model(model_name=model_name, client_id=client_id)
    challenger_id = challenger_for(
        routing_key=routing_key, model_name=live_model.model_name,
        challengers=[Challenger(version_id=c.version_id, traffic_percentage=c.traffic_percentage)
                     for c in live_model.challengers],
    )
    if challenger_id is None:
        return Routed(live_model, scope, live_model.champion, PredictionLog.Arm.CHAMPION)
    version = next(c for c in live_model.challengers if c.version_id == challenger_id)
    return Routed(live_model, scope, version, PredictionLog.Arm.CHALLENGER)


def _acts_on_predictions(hook: LifecycleHooks) -> bool:
    kind = type(hook)
    return (kind.before_predict is not LifecycleHooks.before_predict
            or kind.after_predict is not LifecycleHooks.after_predict)


@lru_cache(maxsize=64)
def _hooks(recipe_name: str, hook_paths: tuple[str, ...], recipe_paths: tuple[str, ...]
           ) -> tuple[LifecycleHooks, ...]:
    """Hooks around a version's predictions, cached per recipe and settings: those that
    define before_predict or after_predict (the others' are no-ops, and calling any needs
    the batch as a DataFrame, which the compiled path does without)."""
    return tuple(hook for hook in lifecycle_hooks(recipes_all().get(recipe_name))
                 if _acts_on_predictions(hook))


def version_hooks(*, recipe_name: str) -> tuple[LifecycleHooks, ...]:
    """The lifecycle hooks that act around the predictions of a version of this recipe."""
    return _hooks(recipe_name, tuple(settings.PULSELYTICS_LIFECYCLE_HOOKS),
                  tuple(settings.PULSELYTICS_RECIPES))


def _predict(served: ServedVersion, batch: ValidatedBatch) -> Outputs:
    hooks = version_hooks(recipe_name=served.live.recipe)
    name, version = served.live.model_name, served.live.version
    for hook in hooks:
        hook.before_predict(model_name=name, version=version, features=batch.frame)
    outputs = served.predict(batch)
    for hook in hooks:
        hook.after_predict(model_name=name, version=version, features=batch.frame,
                           outputs=outputs)
    return outputs


def _check_batch(instances: list, limit: int) -> None:
    if not isinstance(instances, list):
        raise ValidationError("instances must be a JSON array of objects",
                              details=[{"index": None, "field": "instances", "code": "wrong_type",
                                        "message": "expected an array"}])
    if not instances:
        raise ValidationError("instances must not be empty",
                              details=[{"index": None, "field": "instances", "code": "missing",
                                        "message": "at least one instance is required"}])
    if len(instances) > limit:
        raise BatchTooLargeError(f"{len(instances)} instances; at most {limit} per request",
                                 details={"limit": limit, "received": len(instances)})


def prediction_make(*, model_name: str, instances: list, request_id: str,
                    routing_key: str | None = None, client_id: str = "") -> PredictionResult:
    """Route, validate, predict, and log every answer (one insert) before returning it.

    A request that fails validation logs nothing; a shadow that fails never affects the
    answer.
    """
    started = time.perf_counter()
    _check_batch(instances, settings.PREDICT_MAX_BATCH)
    routing_key = routing_key or request_id
    routed = _route(model_name=model_name, client_id=client_id, routing_key=routing_key)
    served = model_cache.served(routed.version)
    batch = instances_validate(schema=served.live.feature_schema, instances=instances)
    outputs = _predict(served, batch)
    # Hash what is logged: an unsalted hash of a PII value could be reversed.
    canonical = [canonical_json(row) for row in batch.logged]
    hashes = features_sha256(canonical)
    prediction_ids = uuid4_texts(len(instances))
    latency_ms = (time.perf_counter() - started) * 1000
    groups = [LogGroup(version_id=served.live.version_id, model_name=served.live.model_name,
                       arm=routed.arm, latency_ms=latency_ms, prediction_ids=prediction_ids,
                       logged=batch.logged, canonical=canonical, hashes=hashes,
                       outputs=outputs)]
    for shadow in routed.live_model.shadows:
        group = _shadow_group(shadow=shadow, instances=instances, hashes=hashes)
        if group is not None:
            groups.append(group)
    log_rows_insert(groups, request_id=request_id, routing_hash=routing_key_sha256(routing_key),
                    client_id=client_id, now=timezone.now())
    metrics.PREDICTIONS.labels(model=served.live.model_name, version=served.live.version,
                               arm=routed.arm).inc(len(instances))
    logger.info("predicted", extra={"model": served.live.model_name,
                                    "version": served.live.version, "arm": routed.arm,
                                    "instances": len(instances),
                                    "latency_ms": round(latency_ms, 3)})
    shared = {"version": served.live.version, "model_sha256": served.live.model_sha256,
              "arm": routed.arm}
    predictions = [{"prediction_id": prediction_id, **shared, "value": value}
                   for prediction_id, value in zip(prediction_ids, outputs.values, strict=True)]
    if outputs.probabilities:
        for answer, probabilities in zip(predictions, outputs.probabilities, strict=True):
            answer["probabilities"] = probabilities
    if outputs.anomaly_scores:
        for answer, score in zip(predictions, outputs.anomaly_scores, strict=True):
            answer["anomaly_score"] = score
    return PredictionResult(model=model_name, served_by=served.live.model_name,
                            scope=routed.scope, predictions=predictions)


def _shadow_group(*, shadow: LiveVersion, instances: list, hashes: list[str]
                  ) -> LogGroup | None:
    """A shadow's answers to the request's instances, as log rows under the answering
    version's feature hashes; None (and a warning) when the shadow fails."""
    started = time.perf_counter()
    try:
        served = model_cache.served(shadow)
        batch = instances_validate(schema=shadow.feature_schema, instances=instances)
        outputs = _predict(served, batch)
    except Exception as exc:  # noqa: BLE001 - a shadow never affects the answer; it is logged
        logger.warning("shadow prediction failed",
                       extra={"model": shadow.model_name, "version": shadow.version,
                              "exception": exception_outline(exc)})
        return None
    return LogGroup(version_id=shadow.version_id, model_name=shadow.model_name,
                    arm=PredictionLog.Arm.SHADOW,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    prediction_ids=uuid4_texts(len(instances)), logged=batch.logged,
                    canonical=[canonical_json(row) for row in batch.logged], hashes=hashes,
                    outputs=outputs)


def explanation_make(*, model_name: str, instances: list, request_id: str,
                     routing_key: str | None = None, client_id: str = "") -> ExplanationResult:
    """SHAP contributions for the version that would answer these instances."""
    _check_batch(instances, settings.EXPLAIN_MAX_INSTANCES)
    routed = _route(model_name=model_name, client_id=client_id,
                    routing_key=routing_key or request_id)
    served = model_cache.served(routed.version)
    batch = instances_validate(schema=served.live.feature_schema, instances=instances)
    explainer = served.explainer
    explanations = [{"version": served.live.version, **row} for row in explainer.explain(
        batch.columns if explainer.takes_columns else batch.frame)]
    return ExplanationResult(model=model_name, served_by=served.live.model_name,
                             scope=routed.scope, explanations=explanations)


def _actual_for(log: PredictionLog, actual):
    """The outcome in the model's terms, or a validation error naming what is wrong."""
    def refuse(code: str, message: str):
        raise ValidationError(f"invalid actual: {message}",
                              details=[{"index": None, "field": "actual", "code": code,
                                        "message": message}])

    if actual is None:
        refuse("missing", "actual is required")
    if actual is NON_FINITE:
        refuse("not_finite", "expected a finite value")
    if log.probabilities is not None:  # a classifier: one of its classes
        if isinstance(actual, dict | list) or str(actual) not in log.probabilities:
            refuse("unknown_category", f"expected one of {sorted(log.probabilities)}")
        return class_label(str(actual), log.value)
    if log.anomaly_score is not None:
        if not isinstance(actual, bool):
            refuse("wrong_type", "expected true (anomaly) or false")
        return actual
    if isinstance(actual, bool) or not isinstance(actual, int | float):
        refuse("wrong_type", "expected a number")
    try:
        number = float(actual)
    except OverflowError:  # an integer literal beyond the float range (10**400)
        number = math.inf
    if not math.isfinite(number):
        refuse("not_finite", "expected a finite number")
    return number


def feedback_record(*, prediction_id: str, actual, api_key: ClientAPIKey) -> PredictionLog:
    """Record the observed outcome of an answered prediction, once, as vouched for by
    `api_key` (its feedback_source, docs/monitoring.md#independent-evidence).

    A client-bound key finds only its client's predictions: another client's prediction
    id is as unknown as a made-up one.
    """
    try:
        key = uuid.UUID(str(prediction_id))
    except ValueError:
        raise PredictionNotFoundError(f"no prediction {prediction_id!r}") from None
    with transaction.atomic():
        log = (PredictionLog.objects.select_for_update()
               .exclude(arm=PredictionLog.Arm.SHADOW).filter(prediction_id=key).first())
        if log is None or (api_key.client_id and log.client_id != api_key.client_id):
            raise PredictionNotFoundError(f"no prediction {prediction_id}",
                                          details={"prediction_id": str(prediction_id)})
        if log.actual_at is not None:
            raise FeedbackExistsError(f"prediction {prediction_id} already has feedback",
                                      details={"actual_at": log.actual_at.isoformat()})
        log.actual, log.actual_at = _actual_for(log, actual), timezone.now()
        log.feedback_source = api_key.feedback_source
        log.save(update_fields=["actual", "actual_at", "feedback_source"])
        # The shadows of the same request saw the same input: the outcome is theirs too.
        # Request ids come from clients, so the model and client must match as well.
        PredictionLog.objects.filter(
            arm=PredictionLog.Arm.SHADOW, model_name=log.model_name, client_id=log.client_id,
            request_id=log.request_id, features_sha256=log.features_sha256,
            actual_at__isnull=True,
        ).update(actual=log.actual, actual_at=log.actual_at,
                 feedback_source=log.feedback_source)
    return log


def prediction_log_purge(*, now=None) -> int:
    """Delete prediction log rows (and recorded failures) older than
    PREDICTION_LOG_RETENTION_DAYS; returns how many log rows went.

    Batches of MONITORING_CHUNK_SIZE rows, each its own short transaction, so a large purge
    never holds one long transaction or lock against the requests writing the log. Safe to
    run concurrently: a batch another run already deleted deletes nothing here.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.PREDICTION_LOG_RETENTION_DAYS)
    deleted = 0
    for model in (PredictionLog, PredictionFailure):
        expired = model.objects.filter(created_at__lt=cutoff).order_by()
        while True:
            count, _ = model.objects.filter(
                pk__in=expired.values("pk")[:settings.MONITORING_CHUNK_SIZE]).delete()
            if not count:
                break
            if model is PredictionLog:
                deleted += count
    logger.info("prediction log purged", extra={"deleted": deleted, "cutoff": cutoff.isoformat()})
    return deleted


def _failed_route(*, model_name: str, client_id: str, routing_key: str) -> tuple[str, str, str]:
    """(model, version, arm) that answered the failed request, or (the requested name, "",
    "") when it failed before a version was chosen. Routing is sticky (the same key gets
    the same arm), so routing the request again names the version it failed on."""
    try:
        routed = _route(model_name=model_name, client_id=client_id, routing_key=routing_key)
    except Exception:  # noqa: BLE001 - the failure came from routing itself
        return model_name, "", ""
    return routed.live_model.model_name, routed.version.version, routed.arm


def prediction_failure_record(*, model_name: str, endpoint: str, request_id: str, code: str,
                              status_code: int, routing_key: str | None = None,
                              client_id: str = "") -> PredictionFailure | None:
    """Record a predict or explain request answered with a 5xx, for the error-rate SLO.

    Holds no input values. Called by the API once the failed service call has unwound, so
    the row is not part of any transaction the request rolled back (requests are not
    wrapped in one: ATOMIC_REQUESTS is off). Never raises: a failure to record is logged
    and the request's own error answer goes out unchanged.
    """
    if code == DatabaseUnavailableError.code:
        # The row could not be written either; the outage is in the web server's warnings.
        return None
    try:
        model, version, arm = _failed_route(model_name=model_name, client_id=client_id,
                                            routing_key=routing_key or request_id)
        with transaction.atomic():
            return PredictionFailure.objects.create(
                model_name=model[:100], version=version, arm=arm, endpoint=endpoint,
                request_id=request_id, code=code, status_code=status_code,
                created_at=timezone.now())
    except Exception:  # recording must never change the error answer
        logger.exception("could not record a failed request",
                         extra={"model": model_name, "code": code, "status": status_code})
        return None
