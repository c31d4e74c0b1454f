"""Training writes: datasets, training runs and training jobs.

Each training ends in `mlregistry.services.model_version_register`, so a trained version
enters the registry like any other: artifacts first, then one transaction with its audit
rows; a run that fails anywhere before that leaves nothing behind.
"""

import logging
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import IntegrityError, transaction
from django.utils import timezone

from mlregistry import artifacts, services
from mlregistry.models import MLModel, MLModelVersion, Status, TrainingDataset, TrainingJob
from mlregistry.training import datasets, trainer, validation
from mlregistry.training.recipes import recipe_get
from pulselytics.errors import ConflictError, ValidationError

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
    dataset = TrainingDataset.objects.filter(model_name=model_name).order_by("-created_at", "-pk").first()
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
    progress: Progress | None = None,
) -> MLModelVersion:
    """Train a recipe (globally, or on one client's rows) and register it in `testing`.

    Trains on the file at `data_path` (registered as the recipe's newest dataset in the
    same transaction as the version), on `dataset`, or on the latest registered dataset.
    The gates compare the candidate with the model's current production version. Any
    failure leaves the registry and the dataset list as they were.
    """
    services.require_permission(user, services.REGISTER_PERMISSION, "train models")
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
    trained = trainer.train_recipe(recipe=recipe, frame=frame, seed=seed, client_id=client_id,
                                   model_name=model_name, progress=progress)
    production = MLModelVersion.objects.filter(model__name=model_name,
                                               status=Status.PRODUCTION).first()
    gates = validation.gates_evaluate(
        task=recipe.task, metrics=trained.metrics,
        production_metrics=production.metrics if production else None,
    )
    gates.update(validation.fairness_gate(trained.fairness_report))
    progress(0.95, "registering")
    with transaction.atomic():
        if loaded is not None:
            dataset_register(model_name=recipe.name, path=data_path, user=user, loaded=loaded)
        version = services.model_version_register(
            name=model_name, task=recipe.task, user=user, estimator=trained.estimator,
            feature_schema=trained.schema, training_dataset_sha256=dataset_sha256,
            training_samples=trained.samples, training_duration_seconds=trained.fit_seconds,
            hyperparameters={"recipe": recipe.name, **trained.hyperparameters},
            metrics=trained.metrics, reference_profile=trained.reference_profile,
            fairness_report=trained.fairness_report, gate_results=gates,
            training_report={**trained.training_report, "dataset": dataset_name},
            description=recipe.description, client_id=client_id,
            global_model=_global_model(recipe) if client_id else None,
            notes=f"trained by recipe {recipe.name} on dataset {dataset_sha256[:12]}",
        )
    progress(1.0, "done")
    return version


# --- training jobs (run by a Celery worker) -----------------------------------------------


def training_job_create(*, recipe_name: str, user: AbstractBaseUser, client_id: str = "",
                        dataset: TrainingDataset | None = None, reason: str = "") -> TrainingJob:
    """Queue a training run; at most one per model is queued or running at a time."""
    from mlregistry.tasks import training_job_run_task  # tasks import services, not back

    services.require_permission(user, services.REGISTER_PERMISSION, "train models")
    recipe_get(recipe_name)
    try:
        with transaction.atomic():
            job = TrainingJob.objects.create(recipe=recipe_name, client_id=client_id,
                                             dataset=dataset, requested_by=user, reason=reason)
    except IntegrityError:
        raise TrainingInProgressError(
            f"{client_model_name(recipe_name, client_id)} is already being trained",
            details={"recipe": recipe_name, "client_id": client_id},
        ) from None
    transaction.on_commit(lambda: training_job_run_task.delay(job.pk))
    return job


def _job_progress(job_id: int) -> Progress:
    def report(fraction: float, stage: str) -> None:
        TrainingJob.objects.filter(pk=job_id).update(progress=round(fraction * 100), stage=stage)
    return report


def training_job_run(*, job_id: int) -> TrainingJob:
    """Run a queued job. Idempotent: a job that is no longer queued is left as it is."""
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().get(pk=job_id)
        if job.state != TrainingJob.State.QUEUED:
            return job
        job.state, job.started_at, job.stage = TrainingJob.State.RUNNING, timezone.now(), "starting"
        job.save(update_fields=["state", "started_at", "stage"])
    try:
        version = model_train(recipe_name=job.recipe, user=job.requested_by, dataset=job.dataset,
                              client_id=job.client_id, progress=_job_progress(job.pk))
    except Exception as exc:
        logger.exception("training job %s failed", job.pk)
        TrainingJob.objects.filter(pk=job.pk).update(
            state=TrainingJob.State.FAILED, error=str(exc)[:2000], finished_at=timezone.now())
    else:
        TrainingJob.objects.filter(pk=job.pk).update(
            state=TrainingJob.State.SUCCEEDED, version=version, progress=100, stage="done",
            finished_at=timezone.now())
    job.refresh_from_db()
    return job


def system_user_get() -> AbstractBaseUser:
    """The account scheduled work acts as (a data scientist that cannot log in)."""
    user, created = get_user_model().objects.get_or_create(
        username=settings.SYSTEM_USERNAME, defaults={"is_active": True},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name="Data scientists"))
    return user
