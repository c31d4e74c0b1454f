"""The prediction log rows a request writes (predictions.log_rows): one INSERT or COPY on
PostgreSQL that stores exactly what the ORM would."""

import hashlib
import json
import uuid

import pytest

from predictions import log_rows
from predictions.loader import Outputs
from predictions.log_rows import (
    LogGroup,
    _models,
    canonical_json,
    features_sha256,
    log_rows_insert,
    uuid4_texts,
)
from predictions.models import PredictionLog

pytestmark = pytest.mark.postgres

# Text COPY must escape: backslashes, tabs, newlines, carriage returns; and JSON's own
# escapes (quotes, control characters) hold backslashes too.
AWKWARD = 'tab\t new\nline cr\r back\\slash "quoted" \u2028 é€😀 \x01'
LOGGED = [
    {"followers": 1e-07, "hashtags": 3, "caption": AWKWARD, "zero": -0.0, "flag": True},
    {"followers": 1.5e300, "hashtags": 2**70, "caption": "", "zero": None, "flag": False},
]


def group(version, *, arm="champion", outputs=None) -> LogGroup:
    canonical = [canonical_json(row) for row in LOGGED]
    return LogGroup(
        version_id=version.pk, model_name=version.model.name, arm=arm, latency_ms=1.25,
        prediction_ids=uuid4_texts(len(LOGGED)), logged=LOGGED, canonical=canonical,
        hashes=features_sha256(canonical),
        outputs=outputs or Outputs(values=["yes", "no\\\t"],
                                   probabilities=[{"no\\\t": 0.25, "yes": 0.75},
                                                  {"no\\\t": 0.5, "yes": 0.5}],
                                   anomaly_scores=[-0.125, 3e-9]))


FIELDS = ["prediction_id", "model_version_id", "model_name", "arm", "request_id",
          "routing_key_sha256", "client_id", "features", "features_sha256", "value",
          "probabilities", "anomaly_score", "latency_ms", "created_at", "actual", "actual_at",
          "feedback_source"]


def stored(prediction_ids: list[str]) -> list[dict]:
    rows = PredictionLog.objects.filter(prediction_id__in=prediction_ids).values(*FIELDS)
    by_id = {str(row["prediction_id"]): row for row in rows}
    return [by_id[prediction_id] for prediction_id in prediction_ids]


@pytest.fixture(params=["insert", "copy"])
def statement(request, monkeypatch):
    """A few rows go in one INSERT, more in one COPY: each test runs with both."""
    monkeypatch.setattr(log_rows, "INSERT_MAX_ROWS", 100 if request.param == "insert" else 0)
    return request.param


def test_the_statement_stores_what_the_orm_would_store_awkward_text_included(champion,
                                                                           statement):
    groups = [group(champion)]
    shared = {"request_id": "req-1", "routing_hash": "a" * 64, "client_id": "cl\\i\tent\n",
              "now": champion.created_at}
    log_rows_insert(groups, **shared)
    copied = stored(groups[0].prediction_ids)
    PredictionLog.objects.filter(prediction_id__in=groups[0].prediction_ids).delete()

    PredictionLog.objects.bulk_create(_models(groups, **shared))  # the SQLite path's rows

    assert copied == stored(groups[0].prediction_ids)
    assert copied[0]["features"]["caption"] == AWKWARD
    assert copied[1]["features"]["hashtags"] == 2**70
    assert copied[0]["client_id"] == "cl\\i\tent\n"
    assert copied[1]["value"] == "no\\\t"


def test_every_group_of_the_request_is_written_in_the_same_statement(champion, statement):
    champion_rows = group(champion)
    shadow_rows = group(champion, arm="shadow", outputs=Outputs(values=[1.5, -2.0]))

    log_rows_insert([champion_rows, shadow_rows], request_id="req-2", routing_hash="b" * 64,
                    client_id="", now=champion.created_at)

    arms = dict(PredictionLog.objects.filter(request_id="req-2")
                .values_list("prediction_id", "arm"))
    assert sorted(arms.values()) == ["champion", "champion", "shadow", "shadow"]
    assert [row["value"] for row in stored(shadow_rows.prediction_ids)] == [1.5, -2.0]


def test_features_sha256_hashes_the_canonical_json_of_the_logged_features():
    row = {"b": 1, "a": "é", "c": [1.5, None]}

    assert canonical_json(row) == '{"a":"é","b":1,"c":[1.5,null]}'.encode()
    assert features_sha256([canonical_json(row)]) == [
        hashlib.sha256(canonical_json(row)).hexdigest()]


def test_an_integer_beyond_64_bits_has_a_canonical_json_too():
    assert json.loads(canonical_json({"n": 2**70, "a": 1})) == {"a": 1, "n": 2**70}
    assert canonical_json({"n": 2**70, "a": 1}) == b'{"a":1,"n":1180591620717411303424}'


def test_prediction_ids_are_distinct_random_version_4_uuids():
    texts = uuid4_texts(1000)

    ids = [uuid.UUID(text) for text in texts]

    assert [str(value) for value in ids] == texts
    assert {(value.version, value.variant) for value in ids} == {(4, uuid.RFC_4122)}
    assert len(set(texts)) == 1000


def test_the_log_keeps_its_foreign_key_and_one_index_by_version(db):
    from django.db import connection

    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(
            cursor, PredictionLog._meta.db_table).values()

    by_version = [c for c in constraints if c["columns"][:1] == ["model_version_id"]]
    assert [c["columns"] for c in by_version if c["index"]] == [
        ["model_version_id", "created_at"]]
    assert [c["foreign_key"] for c in by_version if c["foreign_key"]] == [
        ("mlregistry_mlmodelversion", "id")]
