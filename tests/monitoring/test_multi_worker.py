"""Two real Celery workers on one Redis broker and one PostgreSQL database (docs/deploy.md):
scheduled checks and retrains spread over both, nothing runs twice.

The workers (different hostnames, one pool process each) live for the whole module; each
test reads only what their logs gained during it. Which worker ran a task is read from its
own log ("Task NAME[ID] succeeded"); what beat published from beat's DEBUG log ("NAME sent.
id->ID"). Retrains are queued by `manage.py retrain_if_needed` in its own process,
publishing to the test's Redis as production processes do.
"""

import re
import subprocess
import sys
from collections import Counter

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from mlregistry import services as registry_services
from mlregistry.models import MLModel, MLModelVersion, Status
from monitoring import retraining
from tests.celery_processes import celery_beat, celery_worker, process_env, wait_for
from tests.monitoring.test_retraining import RECIPE, posts_csv, recipe_production
from training import services as training
from training.models import TrainingJob

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("groups_restored_after_module", "governance_groups")]

OTHER_RECIPE = "engagement-comments"
TRAINING_TASK = "mlregistry.tasks.training_job_run_task"
# Quick checks: on an empty registry each runs in milliseconds.
CHECK_TASKS = ("monitoring.tasks.slo_check_task", "monitoring.tasks.drift_check_task",
               "monitoring.tasks.ab_evaluate_task", "monitoring.tasks.performance_check_task")
SUCCEEDED = re.compile(r"Task ([\w.]+)\[([0-9a-f-]{36})\] succeeded")
SENT = re.compile(r"([\w.]+) sent\. id->([0-9a-f-]{36})")
WAIT = 90


@pytest.fixture(scope="module")
def shared_artifacts(tmp_path_factory):
    """One artifact folder for the module: the workers outlive each test's own folder."""
    return tmp_path_factory.mktemp("multi-worker") / "artifacts"


@pytest.fixture
def artifact_dir(shared_artifacts, settings):
    """This process stores artifacts where the module's workers read them."""
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                      "OPTIONS": {"location": str(shared_artifacts)}},
    }
    return shared_artifacts


@pytest.fixture(scope="module")
def workers(django_db_setup, redis_server, shared_artifacts):
    """Two workers, `alpha` and `beta`, consuming the same default queue."""
    with celery_worker(redis_server, shared_artifacts, name="alpha") as alpha, \
            celery_worker(redis_server, shared_artifacts, name="beta") as beta:
        yield {"alpha": alpha, "beta": beta}


class LogsSince:
    """What each worker logged from now on."""

    def __init__(self, workers: dict) -> None:
        self.workers = workers
        self.offsets = {name: len(worker.output()) for name, worker in workers.items()}

    def succeeded(self, task: str | None = None) -> dict[str, list[str]]:
        """Task ids that succeeded, per worker (of one task name, or any)."""
        found = {}
        for name, worker in self.workers.items():
            text = worker.output()[self.offsets[name]:]
            found[name] = [task_id for task_name, task_id in SUCCEEDED.findall(text)
                           if task is None or task_name == task]
        return found


def retrain_if_needed(redis_server, artifact_dir, *args: str) -> str:
    """`manage.py retrain_if_needed` in its own process; every model is due (age limit 0)."""
    result = subprocess.run(
        [sys.executable, "manage.py", "retrain_if_needed", *args],
        cwd=django_settings.BASE_DIR, capture_output=True, text=True, timeout=WAIT,
        check=False, env=process_env(redis_server.url, artifact_dir, RETRAIN_MAX_AGE_DAYS="0"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def retrainable(people, tmp_path, *recipes: str) -> None:
    """A production version per recipe that says the recipe trained it, and a dataset."""
    data = posts_csv(tmp_path)
    for recipe in recipes:
        recipe_production(people, name=recipe, recipe=recipe)
        training.dataset_register(model_name=recipe, path=data, user=people["user"])


def jobs_finished():
    active = [TrainingJob.State.QUEUED, TrainingJob.State.RUNNING]
    return TrainingJob.objects.exists() and not TrainingJob.objects.filter(
        state__in=active).exists()


def test_scheduled_checks_spread_over_both_workers_and_each_runs_once(
        workers, redis_server, artifact_dir):
    PeriodicTask.objects.all().delete()
    every_second, _ = IntervalSchedule.objects.get_or_create(
        every=1, period=IntervalSchedule.SECONDS)
    for task in CHECK_TASKS:
        PeriodicTask.objects.create(name=f"multi-worker {task}", task=task,
                                    interval=every_second)
    logs = LogsSince(workers)

    with celery_beat(redis_server, artifact_dir) as beat:
        wait_for(lambda: len(SENT.findall(beat.output())) >= 3 * len(CHECK_TASKS),
                 timeout=WAIT, what="three rounds of checks published by beat")
    sent = {task_id for task, task_id in SENT.findall(beat.output()) if task in CHECK_TASKS}

    def all_ran():
        ran = [task_id for ids in logs.succeeded().values() for task_id in ids]
        return ran if sent <= set(ran) else None

    ran = wait_for(all_ran, timeout=WAIT, what="every published check to run")
    assert max(Counter(ran).values()) == 1  # no task ran twice, on either worker
    by_worker = logs.succeeded()
    assert by_worker["alpha"] and by_worker["beta"]
    assert not set(by_worker["alpha"]) & set(by_worker["beta"])


def test_retrains_of_two_models_run_at_once_on_different_workers(
        workers, redis_server, artifact_dir, people, tmp_path):
    retrainable(people, tmp_path, RECIPE, OTHER_RECIPE)
    logs = LogsSince(workers)

    output = retrain_if_needed(redis_server, artifact_dir)
    wait_for(jobs_finished, timeout=WAIT, what="both retrains to finish")

    assert output.count("queued training job #") == 2
    jobs = TrainingJob.objects.order_by("recipe")
    assert [(job.recipe, job.state) for job in jobs] == [
        (OTHER_RECIPE, TrainingJob.State.SUCCEEDED), (RECIPE, TrainingJob.State.SUCCEEDED)]
    # Each worker ran one of the two trainings: they ran side by side. (A worker logs a
    # task's success after the job's row says so: wait for both lines.)
    wait_for(lambda: sum(map(len, logs.succeeded(TRAINING_TASK).values())) >= 2,
             timeout=WAIT, what="both training tasks' success lines")
    ran = logs.succeeded(TRAINING_TASK)
    assert (len(ran["alpha"]), len(ran["beta"])) == (1, 1)
    for job in jobs:
        candidates = MLModelVersion.objects.filter(model__name=job.recipe, status=Status.TESTING)
        assert list(candidates) == [job.version]


def test_second_retrain_request_for_a_model_is_refused_while_one_is_active(
        workers, redis_server, artifact_dir, people, tmp_path, settings):
    retrainable(people, tmp_path, RECIPE)
    settings.RETRAIN_MAX_AGE_DAYS = 0  # due here too, as in the command's process
    logs = LogsSince(workers)

    # A fit of this size takes well under a second: holding the model's row keeps the
    # worker waiting before it registers the version, so the job is surely still running
    # while the two requests below are made.
    with transaction.atomic():
        MLModel.objects.select_for_update().get(name=RECIPE)
        retrain_if_needed(redis_server, artifact_dir, "--model", RECIPE)
        job = wait_for(lambda: TrainingJob.objects.filter(stage="registering").first(),
                       timeout=WAIT, what="the worker to finish fitting")
        [check] = retraining.retraining_check(model_name=RECIPE)
        with pytest.raises(training.TrainingInProgressError):
            training.training_job_create(
                recipe_name=RECIPE, user=registry_services.system_user_get(), include_feedback=True)
    wait_for(jobs_finished, timeout=WAIT, what="the retrain to finish")

    assert (check.job, check.skipped) == (None, f"training job #{job.pk} is already running")
    job.refresh_from_db()
    assert TrainingJob.objects.get() == job and job.state == TrainingJob.State.SUCCEEDED
    versions = MLModelVersion.objects.filter(model__name=RECIPE)
    assert sorted(versions.values_list("status", flat=True)) == [Status.PRODUCTION, Status.TESTING]
    # The worker logs the task's success after the job's row says so: wait for the line.
    wait_for(lambda: any(logs.succeeded(TRAINING_TASK).values()), timeout=WAIT,
             what="the worker to log the training task's success")
    assert sum(len(ids) for ids in logs.succeeded(TRAINING_TASK).values()) == 1
