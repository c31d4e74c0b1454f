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
    NotFoundError,
    PermissionDeniedError,
    PredictionNotFoundError,
    ValidationError,
    VersionNotServableError,
    VersionUnavailableError,
)
from core.logging import exception_outline
from core.ml.explain.base import ExplanationUnsupportedError, explanation_bounded
from core.ml.outputs import class_label
from core.ml.recipes import lifecycle_hooks, recipes_all
from core.ml.recipes.base import LifecycleHooks
from mlregistry.models import Status
from mlregistry.selectors import LiveVersion
from predictions import idempotency, selectors
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
from predictions.routing import PINNED_ARM, Challenger, challenger_for, routing_key_sha256
from predictions.validation import ValidatedBatch, instances_validate

logger = logging.getLogger("pulselytics.predictions")

# What a pinned request may name: an approved version that is not retired.
SERVABLE_STATUSES = (Status.STAGING, Status.PRODUCTION)


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


def api_key_revoke(*, name_or_prefix: str) -> list[ClientAPIKey]:
    """Revoke the active key with this prefix (the part of a key before its dot), else every
    active key with this name. Serving refuses them within API_KEY_CACHE_SECONDS; a revoked
    key is never valid again."""
    active = ClientAPIKey.objects.select_for_update().filter(revoked=False).order_by("created")
    with transaction.atomic():
        keys = list(active.filter(prefix=name_or_prefix)) or list(active.filter(
            name=name_or_prefix))
        if not keys:
            raise NotFoundError(f"no active API key named or prefixed {name_or_prefix!r}",
                                details={"api_key": name_or_prefix})
        ClientAPIKey.objects.filter(pk__in=[key.pk for key in keys]).update(revoked=True)
    for key in keys:
        key.revoked = True
    return keys


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
    predictions = _predictions_logged(
        served=model_cache.served(routed.version), arm=routed.arm,
        shadows=routed.live_model.shadows, instances=instances, request_id=request_id,
        routing_key=routing_key, client_id=client_id, started=started)
    return PredictionResult(model=model_name, served_by=routed.live_model.model_name,
                            scope=routed.scope, predictions=predictions)


def _predictions_logged(*, served: ServedVersion, arm: str, shadows: list[LiveVersion],
                        instances: list, request_id: str, routing_key: str, client_id: str,
                        started: float) -> list[dict]:
    """Validate, predict with `served`, and log its answers and the shadows' in one insert;
    the answers as the API returns them."""
    batch = instances_validate(schema=served.live.feature_schema, instances=instances)
    outputs = _predict(served, batch)
    # Hash what is logged: an unsalted hash of a PII value could be reversed.
    canonical = [canonical_json(row) for row in batch.logged]
    hashes = features_sha256(canonical)
    prediction_ids = uuid4_texts(len(instances))
    latency_ms = (time.perf_counter() - started) * 1000
    groups = [LogGroup(version_id=served.live.version_id, model_name=served.live.model_name,
                       arm=arm, latency_ms=latency_ms, prediction_ids=prediction_ids,
                       logged=batch.logged, canonical=canonical, hashes=hashes,
                       outputs=outputs)]
    for shadow in shadows:
        group = _shadow_group(shadow=shadow, instances=instances, hashes=hashes)
        if group is not None:
            groups.append(group)
    log_rows_insert(groups, request_id=request_id, routing_hash=routing_key_sha256(routing_key),
                    client_id=client_id, now=timezone.now())
    metrics.PREDICTIONS.labels(model=served.live.model_name, version=served.live.version,
                               arm=arm).inc(len(instances))
    logger.info("predicted", extra={"model": served.live.model_name,
                                    "version": served.live.version, "arm": arm,
                                    "instances": len(instances),
                                    "latency_ms": round(latency_ms, 3)})
    shared = {"version": served.live.version, "model_sha256": served.live.model_sha256,
              "arm": arm}
    predictions = [{"prediction_id": prediction_id, **shared, "value": value}
                   for prediction_id, value in zip(prediction_ids, outputs.values, strict=True)]
    if outputs.probabilities:
        for answer, probabilities in zip(predictions, outputs.probabilities, strict=True):
            answer["probabilities"] = probabilities
    if outputs.anomaly_scores:
        for answer, score in zip(predictions, outputs.anomaly_scores, strict=True):
            answer["anomaly_score"] = score
    return predictions


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
    return ExplanationResult(model=model_name, served_by=served.live.model_name,
                             scope=routed.scope, explanations=_explained(served, instances))


def _explained(served: ServedVersion, instances: list) -> list[dict]:
    """SHAP contributions of `served` for the instances, each naming the version; a value
    raised to the version's bound says so (docs/api.md#explain)."""
    batch = instances_validate(schema=served.live.feature_schema, instances=instances)
    explainer = served.explainer
    return [{"version": served.live.version, **explanation_bounded(row, lower=served.output_lower)}
            for row in explainer.explain(batch.columns if explainer.takes_columns
                                         else batch.frame)]


def _pinned(*, model_name: str, version: str, client_id: str) -> LiveVersion:
    """The version a pinned request names, if it may answer: approved and not retired
    (staging or production). A request acting for one client never gets another's model."""
    pinned = selectors.model_version_named(name=model_name, version=version)
    if pinned.client_id and client_id and pinned.client_id != client_id:
        raise PermissionDeniedError(f"model {model_name!r} belongs to another client",
                                    details={"model": model_name})
    if pinned.status not in SERVABLE_STATUSES:
        raise VersionNotServableError(
            f"{model_name} {version} is {pinned.status}: only a version in "
            f"{' or '.join(SERVABLE_STATUSES)} answers a pinned request",
            details={"model": model_name, "version": version, "status": pinned.status})
    return pinned


def _pinned_scope(pinned: LiveVersion) -> str:
    return "client" if pinned.client_id else "global"


def prediction_make_pinned(*, model_name: str, version: str, instances: list,
                           request_id: str, routing_key: str | None = None,
                           client_id: str = "") -> PredictionResult:
    """Answer with the named version (docs/api.md#version-pinning) and log the answers with
    the arm PINNED_ARM before returning them. Backtests and reports ask for a version:
    nothing is routed and no shadow sees the request, so no live figure counts it."""
    started = time.perf_counter()
    _check_batch(instances, settings.PREDICT_MAX_BATCH)
    pinned = _pinned(model_name=model_name, version=version, client_id=client_id)
    predictions = _predictions_logged(
        served=model_cache.served_any(pinned), arm=PINNED_ARM, shadows=[],
        instances=instances, request_id=request_id, routing_key=routing_key or request_id,
        client_id=client_id, started=started)
    return PredictionResult(model=model_name, served_by=pinned.model_name,
                            scope=_pinned_scope(pinned), predictions=predictions)


def explanation_make_pinned(*, model_name: str, version: str, instances: list,
                            client_id: str = "") -> ExplanationResult:
    """SHAP contributions of the named version (docs/api.md#version-pinning)."""
    _check_batch(instances, settings.EXPLAIN_MAX_INSTANCES)
    pinned = _pinned(model_name=model_name, version=version, client_id=client_id)
    return ExplanationResult(
        model=model_name, served_by=pinned.model_name, scope=_pinned_scope(pinned),
        explanations=_explained(model_cache.served_any(pinned), instances))


def prediction_explanation_make(*, prediction_id: str, client_id: str = "") -> dict:
    """The explanation of a logged prediction's inputs by the version that answered it,
    live or not (docs/api.md#prediction-records), after the artifact verification of any
    load. Its `value` is the logged answer (in the explanation's output space).

    410 `version_unavailable` when clean-up removed that version's artifacts; 422
    `explanation_unsupported` when the version takes a personal input, which is never
    logged and so cannot be given back to it.
    """
    log = selectors.prediction_get(prediction_id=prediction_id, client_id=client_id)
    row = log.model_version
    if row.artifacts_deleted_at is not None:
        raise VersionUnavailableError(
            f"{log.model_name} {row.version}, which answered prediction {log.prediction_id}, "
            f"had its artifacts removed by clean-up at {row.artifacts_deleted_at.isoformat()}",
            details={"model": log.model_name, "version": row.version,
                     "artifacts_deleted_at": row.artifacts_deleted_at.isoformat()})
    personal_inputs = sorted(
        feature["name"] for feature in row.feature_schema.get("features", [])
        if feature.get("pii") and feature.get("input", True))
    if personal_inputs:
        raise ExplanationUnsupportedError(
            f"{log.model_name} {row.version} takes personal inputs, which are never logged: "
            "its logged predictions cannot be explained", details={"features": personal_inputs})
    served = model_cache.served_any(selectors.live_version_of(row))
    (explanation,) = _explained(served, [log.features])
    return {"prediction_id": str(log.prediction_id), "model": log.model_name,
            "version": row.version, "model_sha256": row.model_sha256,
            "explanation": explanation}


def _actual_for(log: PredictionLog, actual):
    """The outcome in the model's terms, or a validation error naming what is wrong."""
    def refuse(code: str, message: str):
        raise ValidationError(f"invalid actual: {message}",
                              details=[{"index": None, "field": "actual", "code": code,
                                        "message": message}])

    def truth(label) -> bool | None:
        """How a binary label reads as false/true, if it does: false/true, 0/1, "0"/"1",
        "false"/"true"."""
        if isinstance(label, bool):
            return label
        if isinstance(label, int | float) and label in (0, 1):
            return label == 1
        if isinstance(label, str) and label.lower() in ("0", "1", "false", "true"):
            return label.lower() in ("1", "true")
        return None

    if actual is None:
        refuse("missing", "actual is required")
    if actual is NON_FINITE:
        refuse("not_finite", "expected a finite value")
    if log.probabilities is not None:  # a classifier: one of its classes
        if isinstance(actual, dict | list):
            refuse("unknown_category", f"expected one of {sorted(log.probabilities)}")
        if str(actual) in log.probabilities:
            return class_label(str(actual), log.value)
        # Clients send a binary label in whichever form their language gives it (`true`
        # for a model that answered `1`): each of the two classes has one reading.
        readings = {truth(class_label(key, log.value)): key for key in log.probabilities}
        if set(readings) == {False, True} and truth(actual) is not None:
            return class_label(readings[truth(actual)], log.value)
        refuse("unknown_category", f"expected one of {sorted(log.probabilities)}")
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
                                      details={"actual_at": log.actual_at.isoformat(),
                                               "stored": log.actual})
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
    PREDICTION_LOG_RETENTION_DAYS, and the answers kept for idempotent retries older than
    IDEMPOTENCY_WINDOW_SECONDS; returns how many log rows went.

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
    answers = idempotency.idempotent_requests_purge(now=now)
    logger.info("prediction log purged", extra={"deleted": deleted, "cutoff": cutoff.isoformat(),
                                                "idempotent_answers_deleted": answers})
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
