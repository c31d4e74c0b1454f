"""A real Celery worker killed in the middle of a retrain (docs/monitoring.md#retraining: a crashed
retrain leaves no half-made version, and the next run succeeds).

The first worker runs with tests/monitoring/retrain_worker_settings.py, whose lifecycle
hook holds the training in `before_train`; the test kills that worker's process group
(SIGKILL: nothing is acknowledged or cleaned up), waits until the job's heartbeat is
stale, and runs `retrain_if_needed` again beside a normal worker. The command runs as its
own process too, publishing to the test's Redis as production processes do.
"""

import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from mlregistry.models import MLModelVersion, Status
from tests.celery_processes import celery_worker, process_env, wait_for
from tests.monitoring.test_retraining import (
    RECIPE,
    artifact_files,
    labelled_posts,
    referenced_files,
    trained_production,
)
from training.models import TrainingJob

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("groups_restored_after_module", "governance_groups")]

STALE_SECONDS = 2
WAIT = 120


def retrain_if_needed(redis_server, artifact_dir) -> str:
    """`manage.py retrain_if_needed` in its own process, on the test's database and broker."""
    result = subprocess.run(
        [sys.executable, "manage.py", "retrain_if_needed", "--model", RECIPE],
        cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=WAIT, check=False,
        env=process_env(redis_server.url, artifact_dir,
                        TRAINING_JOB_STALE_SECONDS=str(STALE_SECONDS)),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_killing_the_worker_mid_retrain_leaves_nothing_and_the_rerun_succeeds(
        people, redis_server, artifact_dir, tmp_path):
    production = trained_production(tmp_path, people)
    labelled_posts(production, 60)
    before = artifact_files(artifact_dir)
    marker = tmp_path / "training-blocked"

    with celery_worker(redis_server, artifact_dir, name="doomed",
                       DJANGO_SETTINGS_MODULE="tests.monitoring.retrain_worker_settings",
                       PULSELYTICS_TEST_BLOCKED_MARKER=str(marker),
                       TRAINING_JOB_STALE_SECONDS=str(STALE_SECONDS)) as doomed:
        assert "queued training job #" in retrain_if_needed(redis_server, artifact_dir)
        wait_for(marker.exists, timeout=WAIT, what="the worker to be training")
        dead = TrainingJob.objects.get()
        assert dead.state == TrainingJob.State.RUNNING
        # The worker reports while it is busy fitting: a slow training is not a dead one.
        wait_for(lambda: TrainingJob.objects.filter(pk=dead.pk,
                                                    heartbeat_at__gt=dead.heartbeat_at).exists(),
                 timeout=WAIT, what="a heartbeat during the fit")
        doomed.kill()

    assert MLModelVersion.objects.count() == 1
    assert artifact_files(artifact_dir) == before
    wait_for(lambda: TrainingJob.objects.filter(
        pk=dead.pk, heartbeat_at__lt=timezone.now() - timedelta(seconds=STALE_SECONDS)
    ).exists(), timeout=WAIT, what="the dead job's heartbeat to go stale")

    with celery_worker(redis_server, artifact_dir, name="rerun",
                       TRAINING_JOB_STALE_SECONDS=str(STALE_SECONDS)):
        output = retrain_if_needed(redis_server, artifact_dir)
        job = wait_for(lambda: TrainingJob.objects.exclude(pk=dead.pk).filter(
            state__in=[TrainingJob.State.SUCCEEDED, TrainingJob.State.FAILED]).first(),
            timeout=WAIT, what="the rerun to finish")

    assert output.splitlines()[-1] == f"  queued training job #{job.pk}"
    dead.refresh_from_db()
    assert dead.state == TrainingJob.State.FAILED and dead.error.startswith("worker lost")
    assert (job.state, job.error) == (TrainingJob.State.SUCCEEDED, "")
    candidate = MLModelVersion.objects.exclude(pk=production.pk).get()
    assert (candidate.version, candidate.status) == ("1.1.0", Status.TESTING)
    assert candidate.training_report["feedback_rows"] == 60
    assert artifact_files(artifact_dir) == before | referenced_files()
