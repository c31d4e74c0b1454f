"""Idempotent retries of predict (docs/api.md#idempotent-retries): a retry with the same
`Idempotency-Key` and body gets the first answer back and logs nothing new; the key with
another body is 409 `idempotency_key_reused`; concurrent retries never both log."""

import json
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from predictions import idempotency
from predictions import services as serving
from predictions.models import SCOPES, IdempotentRequest, PredictionLog
from predictions.services import prediction_log_purge
from tests.factories import register_approved_version, register_deployed_version

from .conftest import JSONClient

MODEL = "engagement-likes"
PREDICT = f"/api/v1/models/{MODEL}/predict"
BODY = {"instances": [{"followers": 12.5, "hashtags": 4}, {"followers": 8.0, "hashtags": 1}],
        "routing_key": "lead-8812"}


@pytest.fixture
def champion(people):
    return register_deployed_version(**people, slope=1.0)


def predict(client, body=BODY, key: str | None = "order-8812", path: str = PREDICT, **extra):
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post_json(path, body, **extra)


def logged() -> int:
    return PredictionLog.objects.count()


def test_retry_with_the_same_key_gets_the_first_answer_and_logs_nothing(champion, api_client):
    first = predict(api_client)
    rows = logged()

    retry = predict(api_client)

    assert first.status_code == retry.status_code == 200
    assert retry.content == first.content
    assert retry["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    ids = [p["prediction_id"] for p in json.loads(retry.content)["predictions"]]
    assert set(PredictionLog.objects.values_list("prediction_id", flat=True)) == {
        uuid.UUID(i) for i in ids}
    assert logged() == rows == 2


def test_retry_with_the_body_written_another_way_is_the_same_request(champion, api_client):
    first = predict(api_client)
    reordered = json.dumps({"routing_key": "lead-8812", "instances": [
        {"hashtags": 4, "followers": 12.5}, {"hashtags": 1, "followers": 8.0}]}, indent=2)

    retry = api_client.post_json(PREDICT, raw=reordered, HTTP_IDEMPOTENCY_KEY="order-8812")

    assert retry.status_code == 200 and retry.content == first.content
    assert logged() == 2


def test_same_key_with_another_body_is_a_conflict(champion, api_client):
    predict(api_client)

    other = predict(api_client, body={**BODY, "routing_key": "lead-9999"})

    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert other.json()["error"]["details"]["key"] == "order-8812"
    assert logged() == 2


def test_same_key_and_body_for_another_version_is_a_conflict(champion, people, api_client):
    predict(api_client)
    staging = register_approved_version(**people, slope=3.0)

    other = predict(api_client, path=f"/api/v1/models/{MODEL}/versions/{staging.version}/predict")

    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"


def test_pinned_predict_retry_gets_the_first_answer(champion, api_client):
    path = f"/api/v1/models/{MODEL}/versions/{champion.version}/predict"
    first = predict(api_client, path=path)

    retry = predict(api_client, path=path)

    assert first.status_code == 200 and retry.content == first.content
    assert set(PredictionLog.objects.values_list("arm", flat=True)) == {"pinned"}
    assert logged() == 2


def test_keys_are_per_api_key(champion, api_client):
    first = predict(api_client)
    _, other_key = serving.api_key_create(name="another integrator", scopes=SCOPES)

    other = predict(JSONClient(HTTP_AUTHORIZATION=f"Api-Key {other_key}"))

    assert other.status_code == 200 and other.content != first.content
    assert logged() == 4


def test_requests_without_a_key_are_answered_each_time(champion, api_client):
    predict(api_client, key=None)
    predict(api_client, key=None)

    assert logged() == 4
    assert not IdempotentRequest.objects.exists()


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "caf\u00e9"])
def test_a_key_that_is_not_1_to_255_printable_ascii_is_refused(champion, api_client, key):
    response = predict(api_client, key=key)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert logged() == 0


def test_a_key_of_255_printable_characters_is_taken(champion, api_client):
    assert predict(api_client, key="k " + "x" * 253).status_code == 200


def test_a_refused_request_releases_its_key(champion, api_client):
    refused = predict(api_client, body={"instances": [{"followers": "many", "hashtags": 4}]})
    assert refused.status_code == 422
    assert not IdempotentRequest.objects.exists()

    answered = predict(api_client)

    assert answered.status_code == 200 and logged() == 2


def test_a_request_still_being_answered_makes_its_retry_wait(champion, api_client, api_key):
    idempotency.idempotent_request_claim(
        api_key=api_key[0], key="order-8812",
        request_sha256=idempotency.idempotency_request_sha256(method="POST", path=PREDICT,
                                                              body=BODY))

    retry = predict(api_client)

    assert retry.status_code == 409
    assert retry.json()["error"]["code"] == "idempotency_key_in_progress"
    assert logged() == 0


def test_a_claim_left_by_a_dead_process_is_taken_over(champion, api_client, api_key):
    sha = idempotency.idempotency_request_sha256(method="POST", path=PREDICT, body=BODY)
    idempotency.idempotent_request_claim(
        api_key=api_key[0], key="order-8812", request_sha256=sha,
        now=timezone.now() - timedelta(seconds=idempotency.CLAIM_STALE_SECONDS + 1))

    retry = predict(api_client)

    assert retry.status_code == 200 and logged() == 2


def test_after_the_window_the_key_is_a_new_request(champion, api_client, settings):
    first = predict(api_client, body={**BODY, "routing_key": "old"})
    IdempotentRequest.objects.update(
        created_at=timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_WINDOW_SECONDS + 1))

    again = predict(api_client)

    assert again.status_code == 200 and again.content != first.content
    assert logged() == 4
    assert IdempotentRequest.objects.get().request_sha256 == idempotency.idempotency_request_sha256(
        method="POST", path=PREDICT, body=BODY)


def test_the_purge_deletes_answers_older_than_the_window(champion, api_client, settings):
    settings.MONITORING_CHUNK_SIZE = 1
    for key in ("a", "b", "c"):
        predict(api_client, key=key)
    now = timezone.now()
    window = timedelta(seconds=settings.IDEMPOTENCY_WINDOW_SECONDS)
    IdempotentRequest.objects.filter(key__in=["a", "b"]).update(
        created_at=now - window - timedelta(seconds=1))

    prediction_log_purge(now=now)

    assert list(IdempotentRequest.objects.values_list("key", flat=True)) == ["c"]
    assert logged() == 6  # the log keeps its own retention


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("groups_restored_after_module", "governance_groups")
def test_concurrent_retries_never_both_log(people, api_key):
    register_deployed_version(**people, slope=1.0)
    plain_key = api_key[1]
    predict(JSONClient(HTTP_AUTHORIZATION=f"Api-Key {plain_key}"), key=None)  # warm the model
    before = logged()
    threads, start, answers = 8, threading.Barrier(8), []

    def retry():
        client = JSONClient(HTTP_AUTHORIZATION=f"Api-Key {plain_key}")
        try:
            start.wait()
            response = predict(client)
            answers.append((response.status_code, response.content,
                            response.get("Idempotent-Replayed")))
        finally:
            connection.close()

    workers = [threading.Thread(target=retry) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert len(answers) == threads
    originals = [content for status, content, replayed in answers
                 if status == 200 and not replayed]
    replays = [content for status, content, replayed in answers if replayed]
    waits = [json.loads(content)["error"]["code"] for status, content, _ in answers
             if status == 409]
    assert len(originals) == 1
    assert all(content == originals[0] for content in replays)
    assert set(waits) <= {"idempotency_key_in_progress"}
    assert len(replays) + len(waits) == threads - 1
    assert logged() - before == len(BODY["instances"])
