"""Training writes: datasets, training runs and training jobs.

Each training ends in `mlregistry.registration.model_version_register`, so a trained version
enters the registry like any other: artifacts, then one transaction with its audit rows.
A training job records the artifact files it is about to write before writing them; a
job that fails, or whose worker dies (no heartbeat for TRAINING_JOB_STALE_SECONDS), has
the files no version references removed, so it leaves no half-made version behind.
"""

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import ApplicationError, ConflictError, ValidationError
from core.logging import exception_outline
from core.ml import gates as validation
from core.ml.recipes import recipe_get
from core.permissions import require_permission
from mlregistry import artifacts, registration
from mlregistry.models import MLModel, MLModelVersion, Status
from mlregistry.preconditions import REGISTER_PERMISSION
from training import datasets, feedback, signals
from training.models import TrainingDataset, TrainingJob

if TYPE_CHECKING:  # the trainer brings scikit-learn: imported only to train
    from training import trainer

logger = logging.getLogger("pulselytics.training")

Progress = Callable[[float, str], None]


class TrainingInProgressError(ConflictError):
    code = "training_in_progress"


def client_model_name(recipe_name: str, client_id: str) -> str:
    return f"{recipe_name}--{client_id}" if client_id else recipe_name


def dataset_register(*, model_name: str, path: str | Path, user: AbstractBaseUser,
                     loaded: datasets.Dataset | None = None) -> TrainingDataset:
    """Store a training file under its content hash; the same bytes register once."""
    dataset = loaded or datasets.dataset_load(path)
    existing = TrainingDataset.objects.filter(model_name=model_name, sha256=dataset.sha256).first()
    if existing is not None:
        return existing
    storage_path = artifacts.dataset_store(path=Path(path), sha256=dataset.sha256,
                                           suffix=Path(path).suffix.lower())
    try:
        with transaction.atomic():
            return TrainingDataset.objects.create(
                model_name=model_name, sha256=dataset.sha256, storage_path=storage_path,
                format=dataset.format, original_name=Path(path).name, rows=len(dataset.frame),
                columns=[str(c) for c in dataset.frame.columns], uploaded_by=user,
            )
    except IntegrityError:  # registered concurrently: same content, same row
        return TrainingDataset.objects.get(model_name=model_name, sha256=dataset.sha256)


def dataset_latest(*, model_name: str) -> TrainingDataset:
    dataset = (TrainingDataset.objects.filter(model_name=model_name)
               .order_by("-created_at", "-pk").first())
    if dataset is None:
        raise ValidationError(
            f"no dataset is registered for {model_name}; train once with --data FILE",
            details={"model": model_name},
        )
    return dataset


def _global_model(recipe) -> MLModel:
    """The global model a per-client model specialises (made on a client's first run)."""
    model, _ = MLModel.objects.get_or_create(
        name=recipe.name, defaults={"task": recipe.task, "description": recipe.description,
                                    "feature_schema": recipe.feature_schema()},
    )
    return model


def model_train(
    *, recipe_name: str, user: AbstractBaseUser, data_path: str | Path | None = None,
    dataset: TrainingDataset | None = None, client_id: str = "", seed: int | None = None,
    progress: Progress | None = None, include_feedback: bool = False,
    before_store: Callable[[set[str]], None] | None = None,
) -> MLModelVersion:
    """Train a recipe (globally, or on one client's rows) and register it in `testing`.

    Trains on the file at `data_path` (registered as the recipe's newest dataset in the same
    transaction as the version), on `dataset`, or on the latest registered dataset; with
    `include_feedback`, plus every logged prediction of the model that has an outcome
    (docs/training.md#training-jobs retraining). `before_store` is given the artifact files about to
    be written. The gates compare the candidate with the model's current production version. Any
    failure leaves the registry and the dataset list as they were.
    """
    # The trainer brings scikit-learn, pandas and the explainers: imported only to train.
    import pandas  # noqa: PLC0415

    from training import trainer  # noqa: PLC0415

    require_permission(user, REGISTER_PERMISSION, "train models")
    recipe = recipe_get(recipe_name)
    progress = progress or (lambda fraction, stage: None)
    seed = settings.TRAINING_SEED if seed is None else seed
    progress(0.02, "loading data")
    loaded = None
    if data_path is not None:
        loaded = datasets.dataset_load(data_path)
        frame, dataset_sha256, dataset_name = loaded.frame, loaded.sha256, Path(data_path).name
    else:
        dataset = dataset or dataset_latest(model_name=recipe.name)
        frame = datasets.dataset_load_stored(storage_path=dataset.storage_path,
                                             sha256=dataset.sha256, format=dataset.format)
        dataset_sha256, dataset_name = dataset.sha256, dataset.original_name
    model_name = client_model_name(recipe.name, client_id)
    report = {"dataset": dataset_name}
    if include_feedback:
        progress(0.03, "reading feedback")
        # A client's own model learns from its client; a model shared by clients takes no
        # more than AB_MAX_CLIENT_SHARE of its feedback from any one of them.
        labelled = trainer.feedback_rows(
            recipe=recipe, client_id=client_id,
            chunks=feedback.feedback_chunks(model_name=model_name),
            max_source_share=1.0 if client_id else settings.AB_MAX_CLIENT_SHARE)
        report.update(dataset_rows=len(frame), feedback_rows=len(labelled.frame),
                      feedback_sha256=labelled.sha256)
        if labelled.skipped:
            report["feedback_rows_skipped_as_anomalies"] = labelled.skipped
        if labelled.not_counted:
            report["feedback_rows_over_client_share"] = labelled.not_counted
        if len(labelled.frame):
            frame = pandas.concat([frame, labelled.frame], ignore_index=True)
    production = MLModelVersion.objects.filter(model__name=model_name,
                                               status=Status.PRODUCTION).first()
    trained = trainer.train_recipe(recipe=recipe, frame=frame, seed=seed, client_id=client_id,
                                   model_name=model_name, progress=progress,
                                   production=production_model_load(production))
    comparison = trained.production_comparison
    gates = validation.gates_evaluate(
        task=recipe.task, metrics=trained.metrics,
        production_metrics=gate_baseline(production, comparison),
    )
    if comparison is not None:
        report["production_comparison"] = comparison
    gates.update(validation.fairness_gate(trained.fairness_report))
    progress(0.95, "registering")
    bundle = registration.model_version_bundle(estimator=trained.estimator,
                                               reference_profile=trained.reference_profile,
                                               estimation_objects=trained.estimation_objects)
    if before_store is not None:
        before_store(bundle.paths)
    with transaction.atomic():
        if loaded is not None:
            dataset_register(model_name=recipe.name, path=data_path, user=user, loaded=loaded)
        version = registration.model_version_register(
            name=model_name, task=recipe.task, user=user, estimator=trained.estimator,
            feature_schema=trained.schema, training_dataset_sha256=dataset_sha256,
            training_samples=trained.samples, training_duration_seconds=trained.fit_seconds,
            hyperparameters={"recipe": recipe.name, **trained.hyperparameters},
            metrics=trained.metrics, reference_profile=trained.reference_profile,
            fairness_report=trained.fairness_report, gate_results=gates,
            global_importance=trained.global_importance,
            training_report={**trained.training_report, **report},
            description=recipe.description, client_id=client_id,
            global_model=_global_model(recipe) if client_id else None, bundle=bundle,
            notes=f"trained by recipe {recipe.name} on dataset {dataset_sha256[:12]}"
                  + (f" and {report['feedback_rows']} labelled predictions"
                     if include_feedback else ""),
        )
    progress(1.0, "done")
    return version


def production_model_load(production: MLModelVersion | None) -> "trainer.ProductionModel | None":
    """The production version's estimator, loaded after its files are verified against the
    audit trail's hash, to be scored on a candidate's validation rows (a trained recipe's,
    or the labelled rows `register_model` evaluates on). None when there is no production
    version; when its files were cleaned up or do not load, a ProductionModel that says why
    (`unavailable`): the comparison records the reason and the gate falls back to the
    metrics production was registered with."""
    from training import trainer  # noqa: PLC0415 - scikit-learn only to train

    if production is None:
        return None
    unavailable = ""
    estimator = None
    if production.artifacts_deleted_at is not None:
        unavailable = (f"production {production.version}'s files were removed by clean-up on "
                       f"{production.artifacts_deleted_at:%Y-%m-%d}")
    else:
        try:
            estimator = artifacts.bundle_load(manifest=production.artifact_manifest,
                                              model_sha256=production.model_sha256).estimator
        except Exception as exc:  # noqa: BLE001 - registration goes on, compared as before
            logger.warning("production version not loaded for the like-for-like comparison",
                           extra={"model": production.model.name, "version": production.version,
                                  "exception": exception_outline(exc)})
            # Our own errors say which file failed which check; another's message may
            # quote anything, so only its type is kept.
            why = exc.message if isinstance(exc, ApplicationError) else type(exc).__name__
            unavailable = f"production {production.version} could not be loaded: {why}"[:300]
    return trainer.ProductionModel(version=production.version, estimator=estimator,
                                   schema=production.feature_schema, unavailable=unavailable)


def gate_baseline(production: MLModelVersion | None, comparison: dict | None) -> dict | None:
    """What the validation gate compares the candidate with: production's metrics on the
    candidate's own validation rows when it could be scored there, else the metrics it was
    registered with (on its own validation set)."""
    if comparison is not None and comparison["metrics"] is not None:
        return comparison["metrics"]
    return production.metrics if production else None


# --- training jobs (run by a Celery worker) -----------------------------------------------

# A job whose worker died this many times is failed instead of being taken over again.
MAX_ATTEMPTS = 3


class TrainingJobLostError(ConflictError):
    """The running worker no longer owns its job (another one took it over)."""

    code = "training_job_lost"


def training_job_create(*, recipe_name: str, user: AbstractBaseUser, client_id: str = "",
                        dataset: TrainingDataset | None = None, reason: str = "",
                        include_feedback: bool = False) -> TrainingJob:
    """Queue a training run; at most one per model is queued or running at a time.

    A running job of the model whose worker died is failed (and cleaned up) first, so a
    crash never blocks the model.
    """
    from training.tasks import training_job_run_task  # noqa: PLC0415 - tasks import us

    require_permission(user, REGISTER_PERMISSION, "train models")
    recipe_get(recipe_name)
    training_job_recover_stale(recipe_name=recipe_name, client_id=client_id)
    try:
        with transaction.atomic():
            job = TrainingJob.objects.create(recipe=recipe_name, client_id=client_id,
                                             dataset=dataset, requested_by=user,
                                             reason=reason[:200],
                                             include_feedback=include_feedback)
    except IntegrityError:
        raise TrainingInProgressError(
            f"{client_model_name(recipe_name, client_id)} is already being trained",
            details={"recipe": recipe_name, "client_id": client_id},
        ) from None
    transaction.on_commit(lambda: training_job_run_task.delay(job.pk))
    return job


def _stale_cutoff(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.TRAINING_JOB_STALE_SECONDS)


def _is_stale(job: TrainingJob, now: datetime) -> bool:
    last_sign = job.heartbeat_at or job.started_at or job.created_at
    return job.state == TrainingJob.State.RUNNING and last_sign < _stale_cutoff(now)


def _owned(job: TrainingJob):
    """The job's row while this attempt still runs it (a takeover bumps `attempts`)."""
    return TrainingJob.objects.filter(pk=job.pk, state=TrainingJob.State.RUNNING,
                                      attempts=job.attempts)


def _job_fail(job: TrainingJob, error: str) -> None:
    job.state, job.error, job.finished_at = TrainingJob.State.FAILED, error[:2000], timezone.now()
    job.save(update_fields=["state", "error", "finished_at"])


def _job_artifacts_discard(job: TrainingJob) -> int:
    """Delete the files the job recorded that no version references; returns how many.

    The caller holds the job's row lock in a transaction. Every model's row is locked, in
    the order artifact clean-up uses, so no registration in flight is reusing one of these
    content-addressed files while they go.
    """
    if not job.artifact_paths:
        return 0
    list(MLModel.objects.select_for_update().order_by("pk").values_list("pk", flat=True))
    referenced = set()
    for manifest, model_sha256 in MLModelVersion.objects.values_list(
            "artifact_manifest", "model_sha256").iterator():
        referenced |= artifacts.manifest_paths(manifest) | {artifacts.manifest_name(model_sha256)}
    deleted = artifacts.artifact_files_delete(paths=set(job.artifact_paths) - referenced)
    job.artifact_paths = []
    job.save(update_fields=["artifact_paths"])
    if deleted:
        logger.info("removed %s artifact file(s) of training job %s", deleted, job.pk)
    return deleted


def _job_finished(job: TrainingJob) -> None:
    # What follows a retrain (tell reviewers, AUTO_DEPLOY, alert on failure) is up to
    # the app that asked for it.
    signals.training_job_finished.send(sender=TrainingJob, job=job)


def training_job_recover_stale(*, recipe_name: str | None = None, client_id: str = "",
                               now: datetime | None = None) -> list[TrainingJob]:
    """Fail running jobs whose worker stopped reporting (of one model, or all) and remove
    the files they left; returns them."""
    now = now or timezone.now()
    cutoff = _stale_cutoff(now)
    running = TrainingJob.objects.filter(state=TrainingJob.State.RUNNING)
    if recipe_name is not None:
        running = running.filter(recipe=recipe_name, client_id=client_id)
    recovered = []
    silent = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    for pk in running.filter(silent).values_list("pk", flat=True):
        with transaction.atomic():
            job = TrainingJob.objects.select_for_update().get(pk=pk)
            if not _is_stale(job, now):
                continue  # its worker reported meanwhile
            last_sign = job.heartbeat_at or job.started_at
            _job_artifacts_discard(job)
            _job_fail(job, f"worker lost: no heartbeat since {last_sign.isoformat()}")
        logger.warning("training job %s lost its worker", job.pk)
        recovered.append(job)
        _job_finished(job)
    _queued_jobs_republish(cutoff=cutoff, recipe_name=recipe_name, client_id=client_id)
    return recovered


def _queued_jobs_republish(*, cutoff: datetime, recipe_name: str | None, client_id: str) -> None:
    """Publish again the jobs still queued since before `cutoff`: their message may have
    been lost with the broker's data, and a job that never runs blocks its model's
    retraining for good. A duplicate message is harmless: the second finds the job claimed."""
    from training.tasks import training_job_run_task  # noqa: PLC0415 - tasks import us

    waiting = TrainingJob.objects.filter(state=TrainingJob.State.QUEUED, created_at__lt=cutoff)
    if recipe_name is not None:
        waiting = waiting.filter(recipe=recipe_name, client_id=client_id)
    for pk in waiting.values_list("pk", flat=True):
        try:
            training_job_run_task.delay(pk)
        except Exception:  # the broker is still away: the next check tries again
            logger.warning("could not publish queued training job %s again", pk, exc_info=True)
            return
        logger.warning("training job %s was still queued; published it again", pk)


def _job_start(job_id: int) -> TrainingJob | None:
    """Claim a queued job, or take over a running one whose worker died (a message
    redelivered after a crash: acks_late). None when there is nothing to run."""
    now = timezone.now()
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().get(pk=job_id)
        takeover = _is_stale(job, now)
        if takeover:
            _job_artifacts_discard(job)
        elif job.state != TrainingJob.State.QUEUED:
            return None
        given_up = takeover and job.attempts >= MAX_ATTEMPTS
        if given_up:
            _job_fail(job, f"worker lost {job.attempts} times; not retried")
        else:
            job.state, job.started_at, job.heartbeat_at = TrainingJob.State.RUNNING, now, now
            job.stage, job.progress, job.attempts = "starting", 0, job.attempts + 1
            job.save(update_fields=["state", "started_at", "heartbeat_at", "stage", "progress",
                                    "attempts"])
    if given_up:
        _job_finished(job)
        return None
    if takeover:
        logger.warning("training job %s taken over from a lost worker", job.pk)
    return job


@contextlib.contextmanager
def _heartbeat(job: TrainingJob) -> Iterator[None]:
    """Report the job alive from a thread while the worker trains (a fit may run for
    minutes without calling back)."""
    stop = threading.Event()
    interval = min(60.0, max(0.2, settings.TRAINING_JOB_STALE_SECONDS / 6))

    def beat() -> None:
        try:
            while not stop.wait(interval):
                try:
                    _owned(job).update(heartbeat_at=timezone.now())
                except DatabaseError:
                    logger.warning("heartbeat of training job %s failed", job.pk, exc_info=True)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"training-job-{job.pk}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _job_progress(job: TrainingJob) -> Progress:
    def report(fraction: float, stage: str) -> None:
        _owned(job).update(progress=round(fraction * 100), stage=stage,
                           heartbeat_at=timezone.now())
    return report


def _job_record_paths(job: TrainingJob) -> Callable[[set[str]], None]:
    def record(paths: set[str]) -> None:
        # Committed before any file is written: a crash after the write leaves a record.
        if not _owned(job).update(artifact_paths=sorted(paths), heartbeat_at=timezone.now()):
            raise TrainingJobLostError(f"training job {job.pk} was taken over by another worker")
    return record


def _job_error(job: TrainingJob, exc: Exception) -> str:
    """Log a failed job and say why it failed. A library's message may quote training
    values, so for a recipe with personal features (docs/registry.md#personal-data) only
    our own errors keep theirs; the log then gets the traceback without messages."""
    try:
        personal = any(feature.pii for feature in recipe_get(job.recipe).features)
    except ApplicationError:  # no longer installed: nothing says its features are safe
        personal = True
    if not personal:
        logger.exception("training job %s failed", job.pk)
        return str(exc) or type(exc).__name__
    logger.error("training job %s failed", job.pk,
                 extra={"exception": exception_outline(exc)})
    if isinstance(exc, ApplicationError):
        return exc.message
    return f"{type(exc).__name__} (message withheld: the recipe has personal features)"


def training_job_run(*, job_id: int) -> TrainingJob:
    """Run a queued job (or take over one whose worker died); otherwise do nothing.

    Idempotent: a job that another live worker runs, or that has finished, is left as it is.
    """
    job = _job_start(job_id)
    if job is None:
        return TrainingJob.objects.get(pk=job_id)
    try:
        with _heartbeat(job):
            version = model_train(recipe_name=job.recipe, user=job.requested_by,
                                  dataset=job.dataset, client_id=job.client_id,
                                  include_feedback=job.include_feedback,
                                  progress=_job_progress(job), before_store=_job_record_paths(job))
    except Exception as exc:  # noqa: BLE001 - any failure fails the job, logged by _job_error
        error = _job_error(job, exc)
        with transaction.atomic():
            current = TrainingJob.objects.select_for_update().get(pk=job.pk)
            if current.state != TrainingJob.State.RUNNING or current.attempts != job.attempts:
                return current  # taken over: the new run owns the job and its files
            _job_artifacts_discard(current)
            _job_fail(current, error)
        job = current
    else:
        finished = _owned(job).update(state=TrainingJob.State.SUCCEEDED, version=version,
                                      progress=100, stage="done", finished_at=timezone.now())
        job.refresh_from_db()
        if not finished:
            return job  # taken over meanwhile; its version is registered all the same
    _job_finished(job)
    return job
