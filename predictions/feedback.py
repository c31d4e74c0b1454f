"""Outcomes posted in bulk (docs/api.md#bulk-feedback): many predictions' observed outcomes in
one call, each checked as the single feedback endpoint checks it (`services.feedback_record`,
whose `_actual_for` this reuses), all written in one transaction or none.

A batch is checked and classified first (one locking read of its predictions, one of their
unlabelled shadows), then its new outcomes and their shadows' are written with one UPDATE: the
queries a batch costs do not grow with its size.
"""

import json
import logging
import uuid
from collections import Counter
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.errors import BatchTooLargeError, ValidationError
from predictions import services
from predictions.models import ClientAPIKey, PredictionLog
from predictions.validation import MAX_ERROR_DETAILS, field_echo

logger = logging.getLogger("pulselytics.predictions")

RECORDED, DUPLICATE, CONFLICT, NOT_FOUND, INVALID = (
    "recorded", "duplicate", "conflict", "not_found", "invalid")
STATUSES = (RECORDED, DUPLICATE, CONFLICT, NOT_FOUND, INVALID)
OUTCOME_FIELDS = ("prediction_id", "actual")
# What a shadow answer shares with the prediction whose outcome it takes (feedback_record's rule).
SHADOW_MATCH_FIELDS = ("model_name", "client_id", "request_id", "features_sha256")
# What the classification reads of a prediction: its answer (to check the outcome against),
# its outcome so far, and what its shadows share with it.
_READ_FIELDS = ("prediction_id", "model_name", "client_id", "request_id", "features_sha256",
                "value", "probabilities", "anomaly_score", "actual", "actual_at")


@dataclass(frozen=True)
class OutcomeResult:
    prediction_id: str
    status: str
    code: str | None = None
    stored: object = None

    def as_dict(self) -> dict:
        answer = {"prediction_id": self.prediction_id, "status": self.status}
        if self.code is not None:
            answer["code"] = self.code
        if self.status == CONFLICT:
            answer["stored"] = self.stored
        return answer


@dataclass(frozen=True)
class FeedbackBatchResult:
    results: list[OutcomeResult]
    counts: dict[str, int]


def _outcomes_check(outcomes) -> list[tuple[uuid.UUID, object]]:
    """(prediction id, actual) per outcome, or one ValidationError listing every outcome that
    is not `{"prediction_id": "<uuid>", "actual": ...}`: the body's shape, refused whole."""
    if not isinstance(outcomes, list) or not outcomes:
        raise ValidationError("outcomes must be a non-empty array",
                              details=[{"index": None, "field": "outcomes",
                                        "code": "missing" if outcomes == [] else "wrong_type",
                                        "message": "expected an array of outcomes"}])
    limit = settings.FEEDBACK_MAX_BATCH
    if len(outcomes) > limit:
        raise BatchTooLargeError(f"{len(outcomes)} outcomes; at most {limit} per request",
                                 details={"limit": limit, "received": len(outcomes)})
    checked, errors = [], []
    for index, outcome in enumerate(outcomes):
        if not isinstance(outcome, dict):
            errors.append({"index": index, "field": None, "code": "wrong_type",
                           "message": "expected {\"prediction_id\": ..., \"actual\": ...}"})
            continue
        errors += [{"index": index, "field": field_echo(key), "code": "unexpected_field",
                    "message": f"unexpected field {field_echo(key)!r}"}
                   for key in outcome if key not in OUTCOME_FIELDS]
        errors += [{"index": index, "field": name, "code": "missing",
                    "message": f"{name} is required"}
                   for name in OUTCOME_FIELDS if name not in outcome]
        prediction_id = outcome.get("prediction_id")
        try:
            key = uuid.UUID(prediction_id) if isinstance(prediction_id, str) else None
        except ValueError:
            key = None
        if key is None and "prediction_id" in outcome:
            errors.append({"index": index, "field": "prediction_id", "code": "wrong_type",
                           "message": "expected a prediction id (a UUID string)"})
        checked.append((key, outcome.get("actual")))
    if errors:
        message = f"{len(errors)} invalid field(s) in the outcomes"
        if len(errors) > MAX_ERROR_DETAILS:
            message += f"; the first {MAX_ERROR_DETAILS} are listed"
        raise ValidationError(message, details=errors[:MAX_ERROR_DETAILS])
    return checked


def _classify(checked: list[tuple[uuid.UUID, object]], outcomes: list[dict],
              found: dict[uuid.UUID, PredictionLog]
              ) -> tuple[list[OutcomeResult], dict[uuid.UUID, object]]:
    """Each outcome's result in request order, and the new outcomes to write. An outcome
    posted twice in one batch is judged against the first, as against a stored one."""
    results, new = [], {}
    for (key, actual), outcome in zip(checked, outcomes, strict=True):
        echo = outcome["prediction_id"]
        log = found.get(key)
        if log is None:
            results.append(OutcomeResult(echo, NOT_FOUND, code="prediction_not_found"))
            continue
        try:
            value = services._actual_for(log, actual)
        except ValidationError as refusal:
            results.append(OutcomeResult(echo, INVALID, code=refusal.details[0]["code"]))
            continue
        if log.actual_at is None and key not in new:
            new[key] = value
            results.append(OutcomeResult(echo, RECORDED))
            continue
        stored = log.actual if log.actual_at is not None else new[key]
        results.append(OutcomeResult(echo, DUPLICATE) if stored == value
                       else OutcomeResult(echo, CONFLICT, code="feedback_exists",
                                          stored=stored))
    return results, new


def _shadows_of(answered: list[PredictionLog]) -> list[tuple[PredictionLog, PredictionLog]]:
    """(shadow, the answered prediction whose outcome it takes) for the unlabelled shadows of
    the same requests, matched as feedback_record matches them: the same model, client,
    request id and input (request ids come from clients, so they alone do not identify a
    request). Locked, in a fixed order, like the predictions."""
    by_match = {}
    for log in answered:
        by_match.setdefault(tuple(getattr(log, name) for name in SHADOW_MATCH_FIELDS), log)
    shadows = (PredictionLog.objects.select_for_update()
               .filter(arm=PredictionLog.Arm.SHADOW, actual_at__isnull=True,
                       request_id__in={log.request_id for log in answered},
                       model_name__in={log.model_name for log in answered})
               .only("prediction_id", *SHADOW_MATCH_FIELDS).order_by("prediction_id"))
    matched = []
    for shadow in shadows:
        log = by_match.get(tuple(getattr(shadow, name) for name in SHADOW_MATCH_FIELDS))
        if log is not None:
            matched.append((shadow, log))
    return matched


def _rows_update(rows: list[PredictionLog], *, source: str, now) -> None:
    """Store each row's `actual`, with `now` and `source`, in one UPDATE.

    On PostgreSQL the outcomes are joined in as arrays; bulk_update's CASE, with one branch
    per row tried for every row, takes tens of seconds for 10,000 rows there. Elsewhere
    (SQLite, in development) bulk_update, in the batches its variable limit allows.
    """
    if connection.vendor != "postgresql":
        for row in rows:
            row.actual_at, row.feedback_source = now, source
        PredictionLog.objects.bulk_update(rows, ["actual", "actual_at", "feedback_source"])
        return
    quote = connection.ops.quote_name
    column = {name: quote(PredictionLog._meta.get_field(name).column)
              for name in ("prediction_id", "actual", "actual_at", "feedback_source")}
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(PredictionLog._meta.db_table)} AS log "
            f"SET {column['actual']} = outcome.actual, {column['actual_at']} = %s, "
            f"{column['feedback_source']} = %s "
            "FROM unnest(%s::uuid[], %s::jsonb[]) AS outcome(prediction_id, actual) "
            f"WHERE log.{column['prediction_id']} = outcome.prediction_id",
            [now, source, [row.prediction_id for row in rows],
             [json.dumps(row.actual) for row in rows]])


def _outcomes_write(answered: list[PredictionLog], *, source: str, now) -> int:
    """Write the new outcomes (already set on `answered`) and give them to their shadows;
    returns how many shadows took one."""
    matched = _shadows_of(answered)
    for shadow, log in matched:
        shadow.actual = log.actual
    _rows_update(answered + [shadow for shadow, _ in matched], source=source, now=now)
    return len(matched)


def feedback_batch_record(*, outcomes: list, api_key: ClientAPIKey) -> FeedbackBatchResult:
    """Record many predictions' observed outcomes at once, as vouched for by `api_key`.

    Each outcome is judged as `feedback_record` judges one (the same checks of the actual,
    the same client binding: another client's prediction is `not_found`), but a prediction
    that already has this outcome is `duplicate` and one with another outcome is `conflict`
    (with the `stored` one; nothing changes), not an error. The new outcomes are written,
    with their shadows', in one transaction: all of them or, if the database fails, none.
    A body that is not a list of `{"prediction_id", "actual"}` objects, or holds more than
    FEEDBACK_MAX_BATCH, is refused whole before anything is read.
    """
    checked = _outcomes_check(outcomes)
    keys = {key for key, _ in checked}
    with transaction.atomic():
        candidates = (PredictionLog.objects.select_for_update()
                      .exclude(arm=PredictionLog.Arm.SHADOW).filter(prediction_id__in=keys))
        if api_key.client_id:
            candidates = candidates.filter(client_id=api_key.client_id)
        found = {log.prediction_id: log
                 for log in candidates.only(*_READ_FIELDS).order_by("prediction_id")}
        results, new = _classify(checked, outcomes, found)
        shadows = 0
        if new:
            answered = []
            for key, value in new.items():
                found[key].actual = value
                answered.append(found[key])
            shadows = _outcomes_write(answered, source=api_key.feedback_source,
                                      now=timezone.now())
    counts = Counter(result.status for result in results)
    counts = {status: counts.get(status, 0) for status in STATUSES}
    logger.info("feedback batch recorded", extra={**counts, "shadows": shadows})
    return FeedbackBatchResult(results=results, counts=counts)
