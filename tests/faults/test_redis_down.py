"""The Celery broker (Redis) down (issue 7, faults; docs/api.md#errors, docs/monitoring.md).

Serving never needs the broker: with Redis stopped, predictions and feedback are answered
and logged, and an integrity alert raised inside a predict request still gives the documented
503 at once, its delivery left pending. When Redis comes back on the same port, the same
worker and beat reconnect by themselves and the scheduled work that fell due meanwhile
runs: the periodic resend delivers what the outage held back.
"""

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from monitoring.models import Alert, AlertDelivery
from monitoring.schedules import schedules_install
from predictions import services as serving
from predictions.api import auth
from predictions.loader import model_cache
from predictions.models import SCOPES, PredictionLog
from pulselytics.celery import app as celery_app
from tests.celery_processes import celery_beat, celery_worker, wait_for
from tests.factories import artifact_tamper, register_deployed_version
from tests.servers import RedisServer, ServiceUnavailable

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("groups_restored_after_module", "governance_groups"),
              # The stand-in estimator is fitted on a bare array; serving passes a frame.
              pytest.mark.filterwarnings("ignore:X has feature names:UserWarning")]

INSTANCE = {"followers": 12.5, "hashtags": 3}
RESEND_TASK = "monitoring.tasks.alert_deliveries_resend_task"
ANSWER_LIMIT = 60  # a request still unanswered by then is a hang
WAIT = 90


@pytest.fixture
def redis():
    """A Redis of the test's own: it is stopped and started again."""
    try:
        server = RedisServer()
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture
def broker(redis, settings):
    """This process's Celery app publishes to `redis`, as a web process does (not eagerly);
    alerts are mailed, so each one has a delivery."""
    saved = {key: celery_app.conf[key] for key in ("broker_url", "task_always_eager")}
    celery_app.conf.update(broker_url=redis.url, task_always_eager=False)
    settings.ALERT_EMAIL_RECIPIENTS = ["ops@example.com"]
    settings.ALERT_WEBHOOK_URL = ""
    yield redis
    celery_app.conf.update(saved)


@pytest.fixture
def fresh_model_cache(settings):
    settings.REGISTRY_POLL_SECONDS = 0
    model_cache.clear()
    auth._verified.clear()
    yield
    model_cache.clear()
    auth._verified.clear()


@pytest.fixture
def api(db, fresh_model_cache):
    _, key = serving.api_key_create(name="redis-down", scopes=SCOPES)
    return Client(HTTP_AUTHORIZATION=f"Api-Key {key}")


def post(client: Client, path: str, body):
    """POST from a thread: a request that hangs fails the test instead of stalling it."""
    answers = []

    def send() -> None:
        try:
            answers.append(client.post(path, data=json.dumps(body),
                                       content_type="application/json"))
        finally:
            connection.close()  # the thread's own

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    thread.join(timeout=ANSWER_LIMIT)
    assert answers, f"POST {path} was not answered within {ANSWER_LIMIT} s"
    return answers[0]


def predict(client: Client, model: str):
    return post(client, f"/api/v1/models/{model}/predict", [INSTANCE])


def test_predictions_and_integrity_errors_are_answered_with_redis_down(people, broker, api,
                                                                      caplog):
    healthy = register_deployed_version(**people, name="broker-down-likes", slope=2.5)
    broken = register_deployed_version(**people, name="broker-down-broken", slope=4.0)
    artifact_tamper(broken)
    broker.stop_serving()

    answered = predict(api, healthy.model.name)
    outcome = post(api, f"/api/v1/predictions/"
                        f"{answered.json()['predictions'][0]['prediction_id']}/feedback",
                   {"actual": 30.0})
    refused = predict(api, broken.model.name)

    assert answered.status_code == 200
    assert outcome.status_code == 200
    log = PredictionLog.objects.get(model_name=healthy.model.name)
    assert str(log.prediction_id) == answered.json()["predictions"][0]["prediction_id"]
    assert log.actual == 30.0
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "model_integrity_error"
    alert = Alert.objects.get(kind="integrity", model_name=broken.model.name)
    delivery = AlertDelivery.objects.get(alert=alert)
    assert (delivery.channel, delivery.state, delivery.attempts) == ("email", "pending", 0)
    assert "deliveries not queued; left pending for the resend task" in caplog.messages


def test_work_that_fell_due_during_the_outage_runs_when_redis_returns(people, broker, api,
                                                                      artifact_dir):
    broken = register_deployed_version(**people, name="broker-back-broken", slope=4.0)
    artifact_tamper(broken)
    schedules_install(periodic_task_model=PeriodicTask, interval_model=IntervalSchedule)
    # Only the resend task is on, and it is not due yet.
    PeriodicTask.objects.exclude(task=RESEND_TASK).update(enabled=False)
    PeriodicTask.objects.filter(task=RESEND_TASK).update(last_run_at=timezone.now())

    with (celery_worker(broker, artifact_dir) as worker,
          celery_beat(broker, artifact_dir) as beat):
        broker.stop_serving()
        wait_for(lambda: "Connection to broker lost" in worker.output(), timeout=WAIT,
                 what="the worker to lose its broker connection")
        refused = predict(api, broken.model.name)
        delivery = AlertDelivery.objects.get(alert__model_name=broken.model.name)
        assert delivery.state == "pending"
        # Ten minutes of outage later: the delivery is overdue and the resend falls due.
        AlertDelivery.objects.filter(pk=delivery.pk).update(
            created_at=timezone.now() - timedelta(minutes=10))
        resend = PeriodicTask.objects.get(task=RESEND_TASK)
        resend.last_run_at = timezone.now() - timedelta(minutes=10)
        resend.save()  # through save(): beat is told the schedule changed
        wait_for(lambda: "beat: Connection error" in beat.output(), timeout=WAIT,
                 what="beat to try to send the due task to the stopped broker")

        broker.start()  # the same port, an empty Redis

        wait_for(lambda: AlertDelivery.objects.filter(pk=delivery.pk, state="sent").exists(),
                 timeout=WAIT, what="the scheduled resend to deliver the held-back alert")
        assert worker.process.poll() is None and beat.process.poll() is None

    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "model_integrity_error"
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert PeriodicTask.objects.get(task=RESEND_TASK).total_run_count == 1
