"""Retraining: triggers, the retrain job on dataset + feedback, review email, AUTO_DEPLOY,
and crash safety of the job (in-process; tests/monitoring/test_retrain_worker.py kills a
real worker)."""

from datetime import timedelta
from io import StringIO
from pathlib import Path

import numpy
import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from core.errors import PermissionDeniedError
from demo.data import demo_posts
from mlregistry import artifacts, registration, selectors
from mlregistry import services as registry
from mlregistry.models import MLModelVersion, ModelTransition, Status
from monitoring import alerts, retraining
from monitoring.models import Alert
from tests.factories import (
    answers_identical,
    labelled_logs_create,
    register_version,
    tiny_estimator,
)
from training import services as training
from training.models import TrainingJob

RECIPE = "engagement-likes"
INPUTS = ["platform", "media_type", "followers", "hour", "weekday", "caption_length",
          "hashtags", "mentions", "has_link", "sentiment", "recent_posting_rate",
          "avg_engagement_30d"]


def _native(value):
    return value.item() if isinstance(value, numpy.generic) else value


def posts_csv(folder: Path, *, n: int = 400) -> Path:
    path = folder / "posts.csv"
    demo_posts(n=n).to_csv(path, index=False)
    return path


def deploy(version: MLModelVersion, people: dict) -> MLModelVersion:
    failed = selectors.failed_gates(version)
    version = registry.model_version_approve(
        version=version, user=people["reviewer"], notes="approved in test",
        override_justification="small test sample" if failed else "")
    return registry.model_version_deploy(version=version, user=people["deployer"])


def trained_production(folder: Path, people: dict, *, n: int = 400) -> MLModelVersion:
    """engagement-likes trained by its recipe on `n` demo posts, approved and deployed."""
    version = training.model_train(recipe_name=RECIPE, user=people["user"],
                                   data_path=posts_csv(folder, n=n))
    return deploy(version, people)


def recipe_production(people: dict, *, name: str = RECIPE, client_id: str = "",
                      recipe: str | None = RECIPE) -> MLModelVersion:
    """A deployed version that says a recipe trained it, without training (triggers only)."""
    version = registration.model_version_register(
        name=name, task="regression", user=people["user"], estimator=tiny_estimator(),
        feature_schema={"target": "likes", "features": []}, training_dataset_sha256="0" * 64,
        training_samples=10, training_duration_seconds=0.0,
        hyperparameters={"recipe": recipe} if recipe else {"external": True},
        metrics={"r2": 0.5}, reference_profile={"features": {}}, client_id=client_id)
    return deploy(version, people)


def labelled_posts(version: MLModelVersion, n: int, *, seed: int = 7,
                   feedback_sources: list[str] | None = None) -> list:
    """`n` logged predictions of `version` on fresh demo posts, with their likes as outcome."""
    frame = demo_posts(n=400, seed=seed).head(n)
    features = [{key: _native(value) for key, value in row.items()}
                for row in frame[INPUTS].to_dict("records")]
    return labelled_logs_create(version=version, values=[1.0] * n,
                                actuals=[float(v) for v in frame["likes"]],
                                features=features, created_at=timezone.now(),
                                feedback_sources=feedback_sources)


def artifact_files(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def referenced_files() -> set[str]:
    paths = set()
    for version in MLModelVersion.objects.all():
        paths |= artifacts.manifest_paths(version.artifact_manifest)
        paths.add(artifacts.manifest_name(version.model_sha256))
    return paths


def run_check(capture, **kwargs) -> list[TrainingJob]:
    """The scheduled check, with the queued jobs run as the eager worker runs them."""
    with capture(execute=True):
        jobs = retraining.retraining_check_all(**kwargs)
    for job in jobs:
        job.refresh_from_db()
    return jobs


# --- the retrain ------------------------------------------------------------------------


def test_sixty_new_labels_retrain_a_testing_candidate_without_deploying(
        people, tmp_path, django_capture_on_commit_callbacks):
    production = trained_production(tmp_path, people)
    labelled_posts(production, 60)

    [job] = run_check(django_capture_on_commit_callbacks)

    assert job.state == TrainingJob.State.SUCCEEDED and job.include_feedback
    assert job.reason.startswith("retrain: labels: 60 new labelled predictions since 1.0.0")
    candidate = job.version
    assert (candidate.version, candidate.status) == ("1.1.0", Status.TESTING)
    assert candidate.created_by.username == "pulselytics-system"
    report = candidate.training_report
    assert (report["dataset_rows"], report["feedback_rows"], report["rows_read"]) == (400, 60, 460)
    assert set(candidate.gate_results) == {"validation", "fairness"}
    production.refresh_from_db()
    assert production.status == Status.PRODUCTION
    assert MLModelVersion.objects.filter(status=Status.PRODUCTION).get() == production
    [email] = mail.outbox
    assert email.to == [people["reviewer"].email]
    assert "engagement-likes 1.1.0" in email.subject and "review" in email.subject
    assert "validation: passed" in email.body or "validation: FAILED" in email.body
    assert "60 logged predictions with feedback" in email.body


def test_a_retrain_takes_no_more_than_its_share_of_feedback_from_one_client(
        people, tmp_path, django_capture_on_commit_callbacks):
    production = trained_production(tmp_path, people)
    labelled_posts(production, 60,
                   feedback_sources=["client:loud"] * 50 + ["client:quiet"] * 10)

    [job] = run_check(django_capture_on_commit_callbacks)

    report = job.version.training_report
    assert (report["feedback_rows"], report["feedback_rows_over_client_share"]) == (20, 40)
    assert report["rows_read"] == 420


def test_retrain_of_the_same_rows_gives_the_same_model(people, tmp_path,
                                                       django_capture_on_commit_callbacks):
    production = trained_production(tmp_path, people)
    labelled_posts(production, 60)
    [first] = run_check(django_capture_on_commit_callbacks)
    again = training.model_train(recipe_name=RECIPE, user=people["user"],
                                 include_feedback=True)

    assert answers_identical(again, first.version)
    assert again.training_report["feedback_sha256"] == \
        first.version.training_report["feedback_sha256"]


def test_shadow_copies_of_a_labelled_prediction_are_not_counted(people):
    production = recipe_production(people)
    labelled_posts(production, 30)
    labelled_logs_create(version=production, values=[1.0] * 30, actuals=[2.0] * 30,
                         created_at=timezone.now(), arm="shadow")

    assert retraining.retraining_triggers(model_name=RECIPE) == []


def test_failed_retrain_raises_a_retrain_failed_alert(people, django_capture_on_commit_callbacks):
    production = recipe_production(people)  # no dataset registered: the retrain fails
    labelled_posts(production, 50)

    [job] = run_check(django_capture_on_commit_callbacks)

    assert job.state == TrainingJob.State.FAILED
    alert = Alert.objects.get(kind=Alert.Kind.RETRAIN_FAILED)
    assert alert.model_name == RECIPE
    assert "no dataset is registered" in alert.message
    assert alert.payload["job_id"] == job.pk


# --- AUTO_DEPLOY ------------------------------------------------------------------------


def test_auto_deploy_deploys_a_candidate_that_passes_every_gate(
        people, tmp_path, settings, django_capture_on_commit_callbacks):
    production = trained_production(tmp_path, people)
    labelled_posts(production, 60)
    settings.AUTO_DEPLOY = True
    settings.VALIDATION_GATE_MARGIN = 10.0  # any candidate passes the validation gate

    [job] = run_check(django_capture_on_commit_callbacks)

    candidate = job.version
    candidate.refresh_from_db()
    production.refresh_from_db()
    assert (candidate.status, production.status) == (Status.PRODUCTION, Status.ARCHIVED)
    rows = ModelTransition.objects.filter(version=candidate).order_by("sequence")
    assert [(r.from_status, r.to_status, r.reason, r.actor.username) for r in rows][-2:] == [
        ("testing", "staging", "auto_approved", "pulselytics-system"),
        ("staging", "production", "auto_deployed", "pulselytics-system")]
    assert {r.notes for r in rows[2:]} == {"auto-deployed (AUTO_DEPLOY)"}
    [email] = mail.outbox
    assert "auto-deployed" in email.subject


def test_auto_deploy_leaves_a_candidate_with_a_failed_gate_in_testing(
        people, tmp_path, settings, django_capture_on_commit_callbacks):
    production = trained_production(tmp_path, people)
    labelled_posts(production, 60)
    settings.AUTO_DEPLOY = True
    settings.VALIDATION_GATE_MARGIN = -10.0  # no candidate passes the validation gate

    [job] = run_check(django_capture_on_commit_callbacks)

    job.version.refresh_from_db()
    production.refresh_from_db()
    assert (job.version.status, production.status) == (Status.TESTING, Status.PRODUCTION)
    assert "validation: FAILED" in mail.outbox[0].body


def test_auto_deploy_is_refused_to_people_and_when_off(people, settings):
    version = register_version(user=people["user"])
    settings.AUTO_DEPLOY = True
    with pytest.raises(PermissionDeniedError, match="only the system account"):
        registry.model_version_auto_deploy(version=version, user=people["user"])
    settings.AUTO_DEPLOY = False
    system = registry.system_user_get()
    with pytest.raises(PermissionDeniedError, match="AUTO_DEPLOY"):
        registry.model_version_auto_deploy(version=version, user=system)
    version.refresh_from_db()
    assert version.status == Status.TESTING


# --- triggers ---------------------------------------------------------------------------


def test_age_triggers_a_retrain_after_the_limit(people):
    recipe_production(people)
    later = timezone.now() + timedelta(days=7, minutes=1)

    assert retraining.retraining_triggers(model_name=RECIPE, now=later - timedelta(days=1)) == []
    [reason] = retraining.retraining_triggers(model_name=RECIPE, now=later)
    assert reason.startswith("age: last trained 7.0 days ago (1.0.0; limit 7)")


def test_new_labels_trigger_from_the_threshold_on(people):
    production = recipe_production(people)
    labelled_posts(production, 49)
    assert retraining.retraining_triggers(model_name=RECIPE) == []

    labelled_posts(production, 1, seed=8)

    assert retraining.retraining_triggers(model_name=RECIPE) == [
        "labels: 50 new labelled predictions since 1.0.0 (at least 50)"]


def test_labels_before_the_newest_version_do_not_trigger_again(people):
    production = recipe_production(people)
    labelled_posts(production, 60)

    recipe_production(people)  # the retrain that used them

    assert retraining.retraining_triggers(model_name=RECIPE) == []


def test_open_drift_or_performance_alert_triggers_a_retrain(people):
    recipe_production(people)
    alerts.alert_raise(kind="drift", severity="critical", model_name=RECIPE, version="1.0.0",
                       message="drift")
    alerts.alert_raise(kind="slo", severity="critical", model_name=RECIPE, message="slow")

    [reason] = retraining.retraining_triggers(model_name=RECIPE)

    assert reason.startswith("alert: open drift alert (critical) on 1.0.0 since ")


def test_resolved_alert_does_not_trigger(people):
    recipe_production(people)
    alert = alerts.alert_raise(kind="performance", severity="warning", model_name=RECIPE,
                               message="worse")
    Alert.objects.filter(pk=alert.pk).update(resolved_at=timezone.now())

    assert retraining.retraining_triggers(model_name=RECIPE) == []


def test_no_trigger_queues_nothing(people):
    recipe_production(people)

    [check] = retraining.retraining_check()

    assert (check.triggers, check.skipped, check.job) == ([], "no trigger fired", None)
    assert not TrainingJob.objects.exists()


def test_second_check_while_a_job_is_active_queues_nothing(people,
                                                           django_capture_on_commit_callbacks):
    production = recipe_production(people)
    labelled_posts(production, 50)
    with django_capture_on_commit_callbacks(execute=False):
        [job] = retraining.retraining_check_all()
        [check] = retraining.retraining_check()

    assert check.job is None and check.skipped == f"training job #{job.pk} is already queued"
    assert TrainingJob.objects.get() == job


def test_external_model_is_skipped(people, django_capture_on_commit_callbacks):
    recipe_production(people, name="lead-scoring", recipe=None)
    later = timezone.now() + timedelta(days=30)

    with django_capture_on_commit_callbacks(execute=False):
        [check] = retraining.retraining_check(now=later)

    assert check.triggers and check.job is None
    assert check.skipped == "registered from outside (no recipe): cannot be retrained here"
    assert not TrainingJob.objects.exists()


def test_client_model_retrains_its_recipe_for_its_client(people,
                                                         django_capture_on_commit_callbacks):
    recipe_production(people, name=f"{RECIPE}--acme-outdoor", client_id="acme-outdoor")

    with django_capture_on_commit_callbacks(execute=False):
        [job] = retraining.retraining_check_all(now=timezone.now() + timedelta(days=8))

    assert (job.recipe, job.client_id, job.include_feedback) == (RECIPE, "acme-outdoor", True)
    assert job.requested_by.username == "pulselytics-system"


# --- crash safety -----------------------------------------------------------------------


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: nothing after it runs, not even `except Exception`."""


def _fail_registration(monkeypatch, error: BaseException) -> None:
    """Make registration fail after the artifacts are written, before the version commits."""
    def boom(*args, **kwargs):
        raise error
    monkeypatch.setattr(registration, "next_version", boom)


def test_registration_failing_after_the_artifacts_leaves_no_version_and_no_files(
        people, tmp_path, artifact_dir, monkeypatch, django_capture_on_commit_callbacks):
    production = trained_production(tmp_path, people)
    labelled_posts(production, 60)
    before = artifact_files(artifact_dir)
    _fail_registration(monkeypatch, RuntimeError("disk full"))

    [job] = run_check(django_capture_on_commit_callbacks)

    assert (job.state, job.error) == (TrainingJob.State.FAILED, "disk full")
    assert MLModelVersion.objects.count() == 1
    assert artifact_files(artifact_dir) == before
    assert Alert.objects.filter(kind=Alert.Kind.RETRAIN_FAILED, model_name=RECIPE).exists()


def _retrain_killed_after_its_artifacts(people, tmp_path, artifact_dir, monkeypatch,
                                        capture) -> tuple[TrainingJob, set]:
    """A retrain whose worker "died" between storing the artifacts and the version's
    commit, silent for an hour since; returns the job and the files there before it."""
    production = trained_production(tmp_path, people)
    labelled_posts(production, 60)
    before = artifact_files(artifact_dir)
    with monkeypatch.context() as patch:
        _fail_registration(patch, WorkerKilled())
        with capture(execute=False):
            [dead] = retraining.retraining_check_all()
        with pytest.raises(WorkerKilled):
            training.training_job_run(job_id=dead.pk)
    dead.refresh_from_db()
    assert dead.state == TrainingJob.State.RUNNING
    assert artifact_files(artifact_dir) - before == set(dead.artifact_paths) != set()
    TrainingJob.objects.filter(pk=dead.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1))
    return dead, before


def test_worker_dying_after_the_artifacts_is_recovered_and_the_rerun_succeeds(
        people, tmp_path, artifact_dir, monkeypatch, django_capture_on_commit_callbacks):
    dead, before = _retrain_killed_after_its_artifacts(
        people, tmp_path, artifact_dir, monkeypatch, django_capture_on_commit_callbacks)

    [job] = run_check(django_capture_on_commit_callbacks)

    dead.refresh_from_db()
    assert dead.state == TrainingJob.State.FAILED and dead.error.startswith("worker lost")
    assert job.state == TrainingJob.State.SUCCEEDED
    assert job.version.status == Status.TESTING
    assert MLModelVersion.objects.count() == 2
    assert artifact_files(artifact_dir) == referenced_files() | before


def test_recovery_removes_the_dead_jobs_files_before_anything_else_runs(
        people, tmp_path, artifact_dir, monkeypatch, django_capture_on_commit_callbacks):
    dead, before = _retrain_killed_after_its_artifacts(
        people, tmp_path, artifact_dir, monkeypatch, django_capture_on_commit_callbacks)

    [recovered] = training.training_job_recover_stale()

    assert recovered.pk == dead.pk and recovered.state == TrainingJob.State.FAILED
    assert artifact_files(artifact_dir) == before
    assert Alert.objects.get(kind=Alert.Kind.RETRAIN_FAILED).payload["job_id"] == dead.pk


# --- the command ------------------------------------------------------------------------


def test_retrain_if_needed_dry_run_prints_triggers_and_queues_nothing(people):
    production = recipe_production(people)
    labelled_posts(production, 50)
    out = StringIO()

    call_command("retrain_if_needed", "--model", RECIPE, "--dry-run", stdout=out)

    assert out.getvalue().splitlines() == [
        f"{RECIPE}: labels: 50 new labelled predictions since 1.0.0 (at least 50)",
        "  would queue a retrain (dry run)"]
    assert not TrainingJob.objects.exists()


def test_retrain_if_needed_queues_a_job(people, django_capture_on_commit_callbacks):
    production = recipe_production(people)
    labelled_posts(production, 50)
    out = StringIO()

    with django_capture_on_commit_callbacks(execute=False):
        call_command("retrain_if_needed", stdout=out)

    job = TrainingJob.objects.get()
    assert out.getvalue().splitlines()[-1] == f"  queued training job #{job.pk}"
