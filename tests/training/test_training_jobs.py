"""Training jobs after a crash (takeover, recovery) and training rows from feedback."""

from datetime import timedelta

import numpy
import pandas
from django.utils import timezone

from core.ml.recipes import recipe_get
from demo.data import demo_leads
from mlregistry import artifacts
from mlregistry.models import MLModelVersion
from tests.training.conftest import tiny_frame
from training import services as training_services
from training import trainer
from training.models import TrainingJob


def _native(value):
    return value.item() if isinstance(value, numpy.generic) else value


def queued_job(user, capture) -> TrainingJob:
    with capture(execute=False):
        return training_services.training_job_create(recipe_name="tiny-likes", user=user)


def make_running(job: TrainingJob, *, attempts: int = 1, silent_for: timedelta) -> None:
    TrainingJob.objects.filter(pk=job.pk).update(
        state=TrainingJob.State.RUNNING, attempts=attempts, started_at=timezone.now(),
        heartbeat_at=timezone.now() - silent_for)


def test_redelivered_message_takes_over_a_job_whose_worker_died(
        tiny_recipe, tiny_csv, data_scientist, django_capture_on_commit_callbacks):
    training_services.dataset_register(model_name="tiny-likes", path=tiny_csv, user=data_scientist)
    job = queued_job(data_scientist, django_capture_on_commit_callbacks)
    make_running(job, silent_for=timedelta(hours=1))

    job = training_services.training_job_run(job_id=job.pk)

    assert (job.state, job.attempts) == (TrainingJob.State.SUCCEEDED, 2)
    assert job.version is not None


def test_redelivered_message_leaves_a_job_with_a_live_worker_alone(
        tiny_recipe, data_scientist, django_capture_on_commit_callbacks):
    job = queued_job(data_scientist, django_capture_on_commit_callbacks)
    make_running(job, silent_for=timedelta(seconds=1))

    job = training_services.training_job_run(job_id=job.pk)

    assert (job.state, job.attempts) == (TrainingJob.State.RUNNING, 1)
    assert not MLModelVersion.objects.exists()


def test_job_whose_worker_died_too_often_is_failed(tiny_recipe, data_scientist,
                                                   django_capture_on_commit_callbacks):
    job = queued_job(data_scientist, django_capture_on_commit_callbacks)
    make_running(job, attempts=training_services.MAX_ATTEMPTS, silent_for=timedelta(hours=1))

    job = training_services.training_job_run(job_id=job.pk)

    assert job.state == TrainingJob.State.FAILED
    assert job.error == f"worker lost {training_services.MAX_ATTEMPTS} times; not retried"


def test_new_job_replaces_one_whose_worker_died(tiny_recipe, data_scientist,
                                                django_capture_on_commit_callbacks):
    dead = queued_job(data_scientist, django_capture_on_commit_callbacks)
    make_running(dead, silent_for=timedelta(hours=1))

    job = queued_job(data_scientist, django_capture_on_commit_callbacks)

    dead.refresh_from_db()
    assert dead.state == TrainingJob.State.FAILED and dead.error.startswith("worker lost")
    assert job.state == TrainingJob.State.QUEUED


def test_job_queued_too_long_is_published_again_and_runs(
        tiny_recipe, tiny_csv, data_scientist, django_capture_on_commit_callbacks, settings):
    training_services.dataset_register(model_name="tiny-likes", path=tiny_csv, user=data_scientist)
    job = queued_job(data_scientist, django_capture_on_commit_callbacks)  # message "lost"
    TrainingJob.objects.filter(pk=job.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.TRAINING_JOB_STALE_SECONDS + 1))

    training_services.training_job_recover_stale()  # eager Celery in tests: runs it now

    job.refresh_from_db()
    assert job.state == TrainingJob.State.SUCCEEDED
    assert job.version is not None


def test_recently_queued_job_is_not_published_again(tiny_recipe, data_scientist,
                                                    django_capture_on_commit_callbacks):
    job = queued_job(data_scientist, django_capture_on_commit_callbacks)

    training_services.training_job_recover_stale()

    job.refresh_from_db()
    assert job.state == TrainingJob.State.QUEUED


def test_recorded_artifact_paths_are_the_files_registration_writes(tiny_recipe, tiny_csv,
                                                                    data_scientist):
    recorded = []

    version = training_services.model_train(recipe_name="tiny-likes", user=data_scientist,
                                            data_path=tiny_csv, before_store=recorded.append)

    assert recorded == [artifacts.manifest_paths(version.artifact_manifest)
                        | {artifacts.manifest_name(version.model_sha256)}]


def test_feedback_rows_take_the_outcome_as_target_and_leave_missing_features_empty(tiny_recipe):
    chunks = [[({"followers": 500.0, "has_link": True, "platform": "tiktok"}, 1560.0, "acme",
                "client:acme")],
              [({"followers": 200.0, "has_link": False, "platform": "instagram",
                 "region": "north"}, 600.0, "", "key:k1")]]

    rows = trainer.feedback_rows(recipe=tiny_recipe, chunks=chunks)

    assert rows.frame["region"].isna().tolist() == [True, False]
    assert rows.frame.drop(columns="region").to_dict("records") == [
        {"followers": 500.0, "has_link": True, "platform": "tiktok", "likes": 1560.0,
         "client_id": "acme"},
        {"followers": 200.0, "has_link": False, "platform": "instagram", "likes": 600.0,
         "client_id": ""}]
    assert rows.skipped == 0
    assert rows.sha256 == trainer.feedback_rows(recipe=tiny_recipe, chunks=chunks).sha256


def test_feedback_rows_take_no_more_than_the_share_of_one_source(tiny_recipe):
    def row(followers: float, source: str) -> tuple:
        return ({"followers": followers, "has_link": True, "platform": "tiktok"},
                3.0 * followers, "", source)
    chunks = [[row(100.0 + i, "client:loud") for i in range(30)]
              + [row(500.0 + i, "key:quiet") for i in range(5)]]

    rows = trainer.feedback_rows(recipe=tiny_recipe, chunks=chunks, max_source_share=0.5)

    assert rows.frame["followers"].tolist() == [100.0, 101.0, 102.0, 103.0, 104.0,
                                                500.0, 501.0, 502.0, 503.0, 504.0]
    assert rows.not_counted == 25


def test_feedback_rows_of_a_single_source_count_for_nothing_under_a_share_below_one(
        tiny_recipe):
    chunks = [[({"followers": 1.0, "has_link": True, "platform": "tiktok"}, 3.0, "",
                "client:only")] * 10]

    rows = trainer.feedback_rows(recipe=tiny_recipe, chunks=chunks, max_source_share=0.5)

    assert rows.frame.empty and rows.not_counted == 10


def test_anomaly_recipe_learns_only_from_outcomes_that_were_not_anomalies():
    features = {"followers": 100, "avg_engagement_30d": 5.0, "likes": 4, "comments": 1}
    chunks = [[(features, False, "", "key:k1"), (features, True, "", "key:k1"),
               (features, False, "", "key:k2")]]

    rows = trainer.feedback_rows(recipe=recipe_get("engagement-anomaly"), chunks=chunks)

    assert len(rows.frame) == 2 and rows.skipped == 1
    assert "anomaly" not in rows.frame.columns


def test_dataset_plus_feedback_without_a_non_input_feature_trains(tiny_recipe):
    chunks = [[({"followers": 100.0 + i, "has_link": bool(i % 2), "platform": "tiktok"},
                3.0 * (100 + i) + 60.0, "", f"key:k{i % 2}") for i in range(30)]]
    feedback = trainer.feedback_rows(recipe=tiny_recipe, chunks=chunks)
    frame = pandas.concat([tiny_frame(), feedback.frame], ignore_index=True)

    trained = trainer.train_recipe(recipe=tiny_recipe, frame=frame, seed=0)

    assert trained.training_report["rows_used"] == 230
    assert trained.metrics["r2"] > 0.99
    groups = trained.fairness_report["attributes"]["region"]["groups"]
    assert groups["(missing)"]["n"] > 0


def test_classifier_feedback_labels_keep_their_type_and_train():
    recipe = recipe_get("lead-conversion")
    leads = demo_leads(n=200)
    inputs = [feature.name for feature in recipe.features]
    chunks = [[({name: _native(value) for name, value in row.items()}, int(label), "",
                f"key:k{i % 2}")
               for i, (row, label) in enumerate(zip(leads[inputs].head(60).to_dict("records"),
                                                    leads["converted"].head(60), strict=True))]]
    feedback = trainer.feedback_rows(recipe=recipe, chunks=chunks)
    frame = pandas.concat([leads, feedback.frame], ignore_index=True)

    trained = trainer.train_recipe(recipe=recipe, frame=frame, seed=0)

    assert frame["converted"].dtype == leads["converted"].dtype
    assert trained.training_report["rows_used"] == 260
    assert trained.metrics["roc_auc"] > 0.5
