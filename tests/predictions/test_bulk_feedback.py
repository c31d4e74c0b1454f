"""POST /api/v1/feedback (docs/api.md#bulk-feedback): many outcomes in one call, each judged as
the single feedback endpoint judges one, written with their shadows' in one transaction."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from predictions import services as serving
from predictions.models import SCOPE_FEEDBACK, SCOPE_READ, PredictionLog
from tests.factories import labelled_logs_create

URL = "/api/v1/feedback"
NO_OUTCOMES = {"recorded": 0, "duplicate": 0, "conflict": 0, "not_found": 0, "invalid": 0}


def answered(version, n: int, *, client_id: str = "", probabilities=None, values=None
             ) -> list[PredictionLog]:
    """`n` logged answers of `version` (regression values 0, 1, ... unless given) without an
    outcome, one request each."""
    rows = labelled_logs_create(
        version=version, values=values if values is not None else [float(i) for i in range(n)],
        actuals=[None] * n, created_at=timezone.now(),
        probabilities=[probabilities] * n if probabilities else None)
    if client_id:
        PredictionLog.objects.filter(pk__in=[row.pk for row in rows]).update(client_id=client_id)
        for row in rows:
            row.client_id = client_id
    return rows


def shadows_of(rows: list[PredictionLog]) -> list[PredictionLog]:
    """A shadow answer beside each row: the same model, client, request and input."""
    return PredictionLog.objects.bulk_create([
        PredictionLog(model_version=row.model_version, model_name=row.model_name,
                      arm=PredictionLog.Arm.SHADOW, request_id=row.request_id,
                      routing_key_sha256=row.routing_key_sha256, client_id=row.client_id,
                      features=row.features, features_sha256=row.features_sha256,
                      value=row.value, probabilities=row.probabilities, latency_ms=1.0,
                      created_at=row.created_at)
        for row in rows])


def outcomes(rows, actual=lambda i: i + 0.5) -> dict:
    return {"outcomes": [{"prediction_id": str(row.prediction_id), "actual": actual(i)}
                         for i, row in enumerate(rows)]}


def stored(rows) -> list:
    by_id = dict(PredictionLog.objects.filter(pk__in=[row.pk for row in rows])
                 .values_list("prediction_id", "actual"))
    return [by_id[row.prediction_id] for row in rows]


def key_client(anonymous_client, *, client_id: str = "", scopes=(SCOPE_FEEDBACK,)):
    _, plain = serving.api_key_create(name=f"bulk {client_id or 'any'}", client_id=client_id,
                                      scopes=scopes)
    anonymous_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    return anonymous_client


def test_ten_thousand_outcomes_are_recorded_once_each(champion, api_client, api_key):
    rows = answered(champion, 10_000)

    first = api_client.post_json(URL, outcomes(rows))
    recorded = dict(PredictionLog.objects.values_list("prediction_id", "actual_at"))
    repeat = api_client.post_json(URL, outcomes(rows))

    assert first.status_code == 200, first.json()
    assert first.json()["counts"] == {**NO_OUTCOMES, "recorded": 10_000}
    assert [r["status"] for r in first.json()["results"]] == ["recorded"] * 10_000
    assert [r["prediction_id"] for r in first.json()["results"]] \
        == [str(row.prediction_id) for row in rows]
    assert repeat.status_code == 200
    assert repeat.json()["counts"] == {**NO_OUTCOMES, "duplicate": 10_000}
    assert stored(rows) == [i + 0.5 for i in range(10_000)]
    assert dict(PredictionLog.objects.values_list("prediction_id", "actual_at")) == recorded
    assert set(PredictionLog.objects.values_list("feedback_source", flat=True)) \
        == {api_key[0].feedback_source}


def test_ten_thousand_changed_outcomes_are_conflicts_that_change_nothing(champion, api_client):
    rows = answered(champion, 10_000)
    api_client.post_json(URL, outcomes(rows))
    before = list(PredictionLog.objects.order_by("pk").values_list("pk", "actual", "actual_at"))

    response = api_client.post_json(URL, outcomes(rows, actual=lambda i: i + 0.25))

    assert response.status_code == 200
    assert response.json()["counts"] == {**NO_OUTCOMES, "conflict": 10_000}
    assert response.json()["results"][7] == {
        "prediction_id": str(rows[7].prediction_id), "status": "conflict",
        "code": "feedback_exists", "stored": 7.5}
    assert list(PredictionLog.objects.order_by("pk").values_list("pk", "actual", "actual_at")) \
        == before


@pytest.fixture
def update_fails_at(db):
    """Make the database fail (53100 disk_full, an OperationalError) when the row with this
    prediction id is updated: a write that breaks off in the middle."""
    def install(prediction_id) -> None:
        with connection.cursor() as cursor:
            cursor.execute("CREATE FUNCTION test_update_fails() RETURNS trigger "
                           "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full' "
                           "USING ERRCODE = '53100'; END $$")
            cursor.execute("CREATE TRIGGER test_update_fails BEFORE UPDATE ON "
                           "predictions_predictionlog FOR EACH ROW WHEN "
                           f"(NEW.prediction_id = '{prediction_id}') "
                           "EXECUTE FUNCTION test_update_fails()")
    return install


def test_nothing_is_written_when_the_database_fails_mid_call(champion, api_client,
                                                             update_fails_at):
    rows = answered(champion, 10_000)
    shadows_of(rows[:10])
    update_fails_at(rows[5_000].prediction_id)

    response = api_client.post_json(URL, outcomes(rows))

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert not PredictionLog.objects.filter(actual_at__isnull=False).exists()
    assert not PredictionLog.objects.exclude(feedback_source="").exists()


def test_predictions_of_another_client_are_not_found(champion, anonymous_client):
    acme, globex = answered(champion, 1, client_id="acme"), answered(champion, 1,
                                                                     client_id="globex")
    client = key_client(anonymous_client, client_id="acme")
    made_up = str(uuid.uuid4())

    response = client.post_json(URL, {"outcomes": [
        {"prediction_id": str(globex[0].prediction_id), "actual": 1},
        {"prediction_id": str(acme[0].prediction_id), "actual": 2},
        {"prediction_id": made_up, "actual": 3}]})

    assert response.status_code == 200
    assert [(r["status"], r.get("code")) for r in response.json()["results"]] == [
        ("not_found", "prediction_not_found"), ("recorded", None),
        ("not_found", "prediction_not_found")]
    assert (stored(globex), stored(acme)) == ([None], [2.0])
    assert PredictionLog.objects.get(pk=acme[0].pk).feedback_source == "client:acme"


def test_a_shadow_prediction_id_is_not_found(champion, api_client):
    (shadow,) = shadows_of(answered(champion, 1))

    response = api_client.post_json(URL, outcomes([shadow]))

    assert response.json()["results"][0]["status"] == "not_found"
    assert stored([shadow]) == [None]


def test_shadows_of_the_same_request_receive_the_outcome(champion, api_client, api_key):
    rows = answered(champion, 2)
    shadows = shadows_of(rows)
    # Another client's request with the same (client-chosen) request id keeps no outcome.
    (elsewhere,) = shadows_of(answered(champion, 1, client_id="globex"))
    PredictionLog.objects.filter(pk=elsewhere.pk).update(request_id=rows[0].request_id)

    response = api_client.post_json(URL, outcomes(rows[:1]))

    assert response.json()["counts"]["recorded"] == 1
    assert stored(shadows) == [0.5, None]
    assert stored([elsewhere]) == [None]
    assert PredictionLog.objects.get(pk=shadows[0].pk).feedback_source \
        == api_key[0].feedback_source


def test_outcomes_the_model_cannot_take_are_invalid_and_the_others_recorded(champion,
                                                                             api_client):
    rows = answered(champion, 5)

    response = api_client.post_json(
        URL, raw='{"outcomes": ['
                 f'{{"prediction_id": "{rows[0].prediction_id}", "actual": "many"}}, '
                 f'{{"prediction_id": "{rows[1].prediction_id}", "actual": true}}, '
                 f'{{"prediction_id": "{rows[2].prediction_id}", "actual": null}}, '
                 f'{{"prediction_id": "{rows[3].prediction_id}", "actual": NaN}}, '
                 f'{{"prediction_id": "{rows[4].prediction_id}", "actual": 4}}]}}')

    assert response.status_code == 200
    assert [(r["status"], r.get("code")) for r in response.json()["results"]] == [
        ("invalid", "wrong_type"), ("invalid", "wrong_type"), ("invalid", "missing"),
        ("invalid", "not_finite"), ("recorded", None)]
    assert response.json()["counts"] == {**NO_OUTCOMES, "invalid": 4, "recorded": 1}
    assert stored(rows) == [None, None, None, None, 4.0]


def test_a_class_the_model_does_not_have_is_invalid(champion, api_client):
    rows = answered(champion, 2, values=[1, 0], probabilities={"0": 0.3, "1": 0.7})

    response = api_client.post_json(URL, {"outcomes": [
        {"prediction_id": str(rows[0].prediction_id), "actual": 7},
        {"prediction_id": str(rows[1].prediction_id), "actual": {"label": 1}}]})

    assert [r["code"] for r in response.json()["results"]] == ["unknown_category"] * 2
    assert stored(rows) == [None, None]


def test_an_outcome_posted_twice_in_one_batch_is_judged_against_the_first(champion,
                                                                          api_client):
    (row,) = answered(champion, 1)
    prediction_id = str(row.prediction_id)

    response = api_client.post_json(URL, {"outcomes": [
        {"prediction_id": prediction_id, "actual": 3},
        {"prediction_id": prediction_id, "actual": 3.0},
        {"prediction_id": prediction_id, "actual": 4}]})

    assert [r["status"] for r in response.json()["results"]] \
        == ["recorded", "duplicate", "conflict"]
    assert response.json()["results"][2]["stored"] == 3.0
    assert stored([row]) == [3.0]


def test_a_batch_over_the_limit_is_refused_whole(champion, api_client, settings):
    settings.FEEDBACK_MAX_BATCH = 3
    rows = answered(champion, 4)

    response = api_client.post_json(URL, outcomes(rows))

    assert response.status_code == 413
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("batch_too_large", {"limit": 3, "received": 4})
    assert stored(rows) == [None] * 4


@pytest.mark.parametrize(("body", "field", "code"), [
    pytest.param([], "outcomes", "wrong_type", id="not-an-object"),
    pytest.param({}, "outcomes", "missing", id="no-outcomes"),
    pytest.param({"outcomes": []}, "outcomes", "missing", id="empty"),
    pytest.param({"outcomes": {}}, "outcomes", "wrong_type", id="outcomes-not-an-array"),
    pytest.param({"outcomes": [], "note": 1}, "note", "unexpected_field", id="extra-field"),
])
def test_a_body_that_is_not_an_outcome_list_is_a_validation_error(api_client, body, field,
                                                                  code):
    response = api_client.post_json(URL, body)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [(d["field"], d["code"]) for d in error["details"]] == [(field, code)]


def test_every_malformed_outcome_is_listed_and_nothing_is_written(champion, api_client):
    (row,) = answered(champion, 1)
    valid = {"prediction_id": str(row.prediction_id), "actual": 1}

    response = api_client.post_json(URL, {"outcomes": [
        valid, {**valid, "label": 1}, {"actual": 1}, {"prediction_id": "lead-8812", "actual": 1},
        {"prediction_id": 42, "actual": 1}, "x", {"prediction_id": str(row.prediction_id)}]})

    assert response.status_code == 422
    assert [(d["index"], d["field"], d["code"]) for d in response.json()["error"]["details"]] == [
        (1, "label", "unexpected_field"), (2, "prediction_id", "missing"),
        (3, "prediction_id", "wrong_type"), (4, "prediction_id", "wrong_type"),
        (5, None, "wrong_type"), (6, "actual", "missing")]
    assert stored([row]) == [None]


def test_a_body_that_is_not_json_is_malformed(api_client):
    response = api_client.post_json(URL, raw='{"outcomes": [')

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_a_key_without_the_feedback_scope_is_refused(champion, anonymous_client):
    rows = answered(champion, 1)
    client = key_client(anonymous_client, scopes=(SCOPE_READ,))

    response = client.post_json(URL, outcomes(rows))

    assert response.status_code == 403
    assert response.json()["error"]["details"]["scope"] == SCOPE_FEEDBACK
    assert stored(rows) == [None]


def test_the_queries_of_a_batch_do_not_grow_with_its_size(champion, api_client):
    rows = answered(champion, 211)
    shadows_of(rows)
    api_client.post_json(URL, outcomes(rows[:1]))  # the key is verified and cached

    queries = []
    for batch in (rows[1:11], rows[11:211]):
        with CaptureQueriesContext(connection) as captured:
            response = api_client.post_json(URL, outcomes(batch))
        assert response.json()["counts"]["recorded"] == len(batch)
        queries.append(len(captured))

    assert queries[0] == queries[1]
    assert PredictionLog.objects.filter(arm="shadow", actual_at__isnull=False).count() == 211


def test_the_schema_documents_a_closed_outcome_list(anonymous_client):
    schema = anonymous_client.get("/api/schema/", {"format": "json"}).json()

    operation = schema["paths"]["/api/v1/feedback"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    outcome = body["properties"]["outcomes"]["items"]
    assert (body["additionalProperties"], outcome["additionalProperties"]) == (False, False)
    assert outcome["required"] == ["prediction_id", "actual"]
    assert body["properties"]["outcomes"]["maxItems"] == 10_000
    assert operation["x-api-key-scope"] == SCOPE_FEEDBACK
    assert "200" in operation["responses"]
