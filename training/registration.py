"""External registration: a model trained outside the project enters the registry.

The estimator is evaluated on the operator's data (schema, reference profile, metrics,
fairness, global importance), gated like a trained one, and registered through the
registry's own service (docs/training.md#external-registration).
"""

import time
from pathlib import Path

import joblib
from django.contrib.auth.models import AbstractBaseUser

from core.errors import ValidationError
from core.ml import gates as gate_checks
from core.permissions import require_permission
from mlregistry import registration
from mlregistry.models import MLModelVersion, Status
from mlregistry.preconditions import REGISTER_PERMISSION
from training import datasets, external


def model_version_register_external(
    *, name: str, task: str, user: AbstractBaseUser, artifact_path: str, data_path: str,
    target: str, protected: list[str] | None = None, client_id: str = "", description: str = "",
) -> MLModelVersion:
    """Register an estimator or Pipeline trained outside the project (saved with joblib).

    Schema, dataset hash, reference profile and validation metrics come from the given
    data; the validation gate compares it with the current production version, the
    fairness gate audits the protected columns. Lands in `testing`.
    """
    require_permission(user, REGISTER_PERMISSION, "register model versions")
    registration.model_name_check(name)
    dataset = datasets.dataset_load(data_path)
    try:
        # The operator's own file: loading it is the point of the command.
        estimator = joblib.load(artifact_path)
    except Exception as exc:
        raise ValidationError(f"cannot load {artifact_path} with joblib: {exc}") from exc
    started = time.monotonic()
    evaluated = external.external_model_evaluate(
        estimator=estimator, frame=dataset.frame, target=target, task=task,
        protected=protected or [],
    )
    production = MLModelVersion.objects.filter(model__name=name, status=Status.PRODUCTION).first()
    gates = gate_checks.gates_evaluate(
        task=task, metrics=evaluated.metrics,
        production_metrics=production.metrics if production else None,
    )
    gates.update(gate_checks.fairness_gate(evaluated.fairness_report))
    return registration.model_version_register(
        name=name, task=task, user=user, estimator=estimator, feature_schema=evaluated.schema,
        training_dataset_sha256=dataset.sha256, training_samples=evaluated.samples,
        training_duration_seconds=round(time.monotonic() - started, 3),
        hyperparameters={"external": True, "estimator": type(estimator).__name__,
                         "params": external.estimator_params(estimator)},
        metrics=evaluated.metrics, reference_profile=evaluated.reference_profile,
        fairness_report=evaluated.fairness_report, global_importance=evaluated.global_importance,
        gate_results=gates, description=description, client_id=client_id,
        notes=f"registered from {Path(artifact_path).name} and {Path(data_path).name}",
    )
