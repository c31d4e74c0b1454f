"""The prediction log rows of one request, encoded column by column and written in one
statement (docs/api.md#prediction-log).

A request's rows share most of their columns (version, model, arm, request id, routing
key, client, latency, time): each group of rows (the answering version, then each
shadow) formats those once, and a row adds only its id, features, their hash and the
model's outputs. On PostgreSQL the rows are one `COPY ... FROM STDIN` whose text payload is
built here (handing psycopg one value at a time, write_row, and json.dumps per JSON value
cost most of a 2000-row request, bench/RESULTS.md), or for a few rows one INSERT.
Elsewhere (SQLite) one bulk_create.

`features_sha256` is the SHA256 of the logged features' canonical JSON: UTF-8, keys
sorted, no whitespace, as orjson writes it with OPT_SORT_KEYS (an instance orjson cannot
write, one holding an integer beyond 64 bits, as json.dumps writes it with sort_keys and
compact separators, ensure_ascii off). The same bytes are the stored `features`.
"""

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime

import numpy
import orjson
from django.db import connection

from predictions.loader import Outputs
from predictions.models import PredictionLog


def canonical_json(instance: dict) -> bytes:
    """The canonical JSON of a logged instance (sorted keys, compact, UTF-8)."""
    try:
        return orjson.dumps(instance, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits, which orjson does not write
        return json.dumps(instance, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode()


def features_sha256(canonical: list[bytes]) -> list[str]:
    return [hashlib.sha256(document).hexdigest() for document in canonical]


def uuid4_texts(n: int) -> list[str]:
    """`n` random (version 4, RFC 9562) UUIDs as text, as uuid.uuid4() would make them,
    from one read of the system's random source instead of one per id."""
    raw = bytearray(os.urandom(16 * n))
    octets = numpy.frombuffer(raw, dtype=numpy.uint8).reshape(n, 16)
    octets[:, 6] = (octets[:, 6] & 0x0F) | 0x40  # version 4
    octets[:, 8] = (octets[:, 8] & 0x3F) | 0x80  # RFC variant
    text = raw.hex()
    return [f"{text[i:i + 8]}-{text[i + 8:i + 12]}-{text[i + 12:i + 16]}-"
            f"{text[i + 16:i + 20]}-{text[i + 20:i + 32]}" for i in range(0, 32 * n, 32)]


@dataclass(frozen=True)
class LogGroup:
    """One version's answers to a request: the log rows it adds."""

    version_id: int
    model_name: str
    arm: str
    latency_ms: float
    prediction_ids: list[str]
    logged: list[dict]  # per instance, what may be logged (predictions.validation)
    canonical: list[bytes]  # canonical_json of each of `logged`
    hashes: list[str]  # features_sha256 of each instance
    outputs: Outputs


# Up to this many rows an INSERT: one round trip to the server, where a COPY takes two (the
# server answers the COPY statement before the rows go).
INSERT_MAX_ROWS = 20
# COPY's text format: a tab between fields, a newline after each row, \N for NULL, and a
# backslash before a backslash or a raw tab, newline or carriage return.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"
_ROW_COLUMNS = ("prediction_id", "features", "features_sha256", "value", "probabilities",
                "anomaly_score")
_GROUP_COLUMNS = ("model_version_id", "model_name", "arm", "request_id",
                  "routing_key_sha256", "client_id", "latency_ms", "created_at")


def _text(value: str) -> str:
    return value.translate(_COPY_ESCAPES)


def _json_texts(values: list) -> list[str]:
    # orjson escapes every control character, so only its backslashes need escaping.
    return [orjson.dumps(value).decode().replace("\\", "\\\\") for value in values]


def _copy_payload(groups: list[LogGroup], *, request_id: str, routing_hash: str,
                  client_id: str, now: datetime) -> str:
    lines = []
    for group in groups:
        shared = "\t".join((str(group.version_id), _text(group.model_name), group.arm,
                            _text(request_id), routing_hash, _text(client_id),
                            repr(float(group.latency_ms)), now.isoformat()))
        n = len(group.prediction_ids)
        outputs = group.outputs
        probabilities = (_json_texts(outputs.probabilities) if outputs.probabilities
                         else [_NULL] * n)
        scores = (list(map(repr, outputs.anomaly_scores)) if outputs.anomaly_scores
                  else [_NULL] * n)
        features = [document.decode().replace("\\", "\\\\") for document in group.canonical]
        lines += [f"{prediction_id}\t{feature}\t{digest}\t{value}\t{probability}\t{score}\t"
                  f"{shared}\n"
                  for prediction_id, feature, digest, value, probability, score
                  in zip(group.prediction_ids, features, group.hashes,
                         _json_texts(outputs.values), probabilities, scores, strict=True)]
    return "".join(lines)


def _models(groups: list[LogGroup], *, request_id: str, routing_hash: str, client_id: str,
            now: datetime) -> list[PredictionLog]:
    rows = []
    for group in groups:
        n = len(group.prediction_ids)
        outputs = group.outputs
        rows += [
            PredictionLog(
                prediction_id=uuid.UUID(prediction_id), model_version_id=group.version_id,
                model_name=group.model_name, arm=group.arm, request_id=request_id,
                routing_key_sha256=routing_hash, client_id=client_id, features=features,
                features_sha256=digest, value=value, probabilities=probability,
                anomaly_score=score, latency_ms=group.latency_ms, created_at=now)
            for prediction_id, features, digest, value, probability, score in zip(
                group.prediction_ids, group.logged, group.hashes, outputs.values,
                outputs.probabilities or [None] * n, outputs.anomaly_scores or [None] * n,
                strict=True)]
    return rows


def _insert_params(groups: list[LogGroup], *, request_id: str, routing_hash: str,
                   client_id: str, now: datetime) -> list:
    params = []
    for group in groups:
        n = len(group.prediction_ids)
        outputs = group.outputs
        probabilities = ([orjson.dumps(p).decode() for p in outputs.probabilities]
                         if outputs.probabilities else [None] * n)
        shared = [group.version_id, group.model_name, group.arm, request_id, routing_hash,
                  client_id, group.latency_ms, now]
        for row in zip(group.prediction_ids, group.canonical, group.hashes, outputs.values,
                       probabilities, outputs.anomaly_scores or [None] * n, strict=True):
            prediction_id, document, digest, value, probability, score = row
            params += [prediction_id, document.decode(), digest, orjson.dumps(value).decode(),
                       probability, score, *shared]
    return params


def log_rows_insert(groups: list[LogGroup], *, request_id: str, routing_hash: str,
                    client_id: str, now: datetime) -> None:
    """Insert the request's log rows, all or none, in one statement."""
    shared = {"request_id": request_id, "routing_hash": routing_hash, "client_id": client_id,
              "now": now}
    if connection.vendor != "postgresql":
        PredictionLog.objects.bulk_create(_models(groups, **shared))
        return
    quote = connection.ops.quote_name
    names = (*_ROW_COLUMNS, *_GROUP_COLUMNS)
    table = quote(PredictionLog._meta.db_table)
    columns = ", ".join(quote(PredictionLog._meta.get_field(name).column) for name in names)
    rows = sum(len(group.prediction_ids) for group in groups)
    if rows <= INSERT_MAX_ROWS:
        values = ", ".join(["(" + ", ".join(["%s"] * len(names)) + ")"] * rows)
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values}",
                           _insert_params(groups, **shared))
        return
    sql = f"COPY {table} ({columns}) FROM STDIN"
    payload = _copy_payload(groups, **shared)
    # psycopg's copy() is not behind Django's error translation: wrapped, a lost connection
    # is a django.db.OperationalError (503 database_unavailable) and the connection is
    # marked for replacement, as with any other query.
    with (connection.cursor() as cursor, connection.wrap_database_errors,
          cursor.copy(sql) as copy):
        copy.write(payload)
