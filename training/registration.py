"""External registration: a model trained outside the project enters the registry.

The estimator is evaluated on the operator's data (schema, reference profile, metrics,
fairness, global importance), gated like a trained one, and registered through the
registry's own service (docs/training.md#external-registration).
"""

import time
import zipfile
from pathlib import Path
from typing import Any

import joblib
import skops.io
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from core.errors import ValidationError
from core.ml import gates as gate_checks
from core.permissions import require_permission
from mlregistry import artifacts, registration
from mlregistry.models import MLModelVersion, Status
from mlregistry.preconditions import REGISTER_PERMISSION
from training import datasets, external
from training import services as training_services


def _is_skops_file(path: str) -> bool:
    """A skops file is a zip archive with a schema.json; anything else is taken for a pickle."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return "schema.json" in archive.namelist()


def model_file_load(path: str, *, trust_pickle: bool) -> tuple[Any, str]:
    """The estimator in an operator's model file, and how it came in (for the audit row).

    A skops file loads with the types it declares: the operator chose the file, and every
    type outside the trusted set is listed on the version for a reviewer to trust before
    approval. A pickle (joblib) can run any code when it loads, so it is refused unloaded
    unless `trust_pickle`; then it is loaded once, here, and stored as skops.
    """
    if not Path(path).is_file():
        raise ValidationError(f"model file {path} does not exist", details={"field": "artifact"})
    try:
        if _is_skops_file(path):
            estimator = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
            return estimator, f"registered from {Path(path).name} (skops)"
        if not trust_pickle:
            raise ValidationError(
                f"{Path(path).name} is not a skops file; a pickle (joblib) runs code when it "
                "loads, so it is refused. Save the model with skops.io.dump, or pass "
                "--trust-pickle to convert it to skops (recorded in the audit trail)",
                details={"field": "artifact"})
        estimator = joblib.load(path)  # the operator vouched for this file (--trust-pickle)
    except ValidationError:
        raise
    except Exception as exc:
        raise ValidationError(f"cannot load model file {path}: {exc}",
                              details={"field": "artifact"}) from exc
    return estimator, (f"converted to skops from pickle {Path(path).name} (sha256 "
                       f"{artifacts.sha256_file(path)}) under --trust-pickle")


def model_version_register_external(
    *, name: str, task: str, user: AbstractBaseUser, artifact_path: str, data_path: str,
    target: str, protected: list[str] | None = None, client_id: str = "", description: str = "",
    trust_pickle: bool = False, pii: list[str] | None = None,
) -> MLModelVersion:
    """Register an estimator or Pipeline trained outside the project (a skops file, or a
    pickle with `trust_pickle`: see `model_file_load`).

    Schema, dataset hash, reference profile and validation metrics come from the given
    data; the current production version is scored on the same labelled rows (as training
    does: training.services.production_model_load, training.trainer.production_compare) and
    the validation gate compares the two, the fairness gate audits the protected columns.
    `pii` names the personal columns (docs/registry.md#personal-data); the schema records
    them, so the audit trail seals them with it. Lands in `testing`.
    """
    require_permission(user, REGISTER_PERMISSION, "register model versions")
    registration.model_name_check(name)
    estimator, provenance = model_file_load(artifact_path, trust_pickle=trust_pickle)
    dataset = datasets.dataset_load(data_path)
    started = time.monotonic()
    production = MLModelVersion.objects.filter(model__name=name, status=Status.PRODUCTION).first()
    evaluated = external.external_model_evaluate(
        estimator=estimator, frame=dataset.frame, target=target, task=task,
        protected=protected or [], pii=pii or [],
        category_enum_max=settings.CATEGORY_ENUM_MAX,
        production=training_services.production_model_load(production),
    )
    comparison = evaluated.production_comparison
    gates = gate_checks.gates_evaluate(
        task=task, metrics=evaluated.metrics,
        production_metrics=training_services.gate_baseline(production, comparison),
    )
    gates.update(gate_checks.fairness_gate(evaluated.fairness_report))
    # The rows the metrics were computed on are the file's labelled rows: recorded as the
    # validation rows, so the version page can say what was compared.
    report = {"dataset": Path(data_path).name, "validation_rows": evaluated.samples,
              "validation_diagnostics": evaluated.validation_diagnostics}
    reference = evaluated.estimation_reference  # docs/monitoring.md#estimated-performance
    if reference is not None:
        report["estimation"] = reference.document
    if comparison is not None:
        report["production_comparison"] = comparison
    return registration.model_version_register(
        name=name, task=task, user=user, estimator=estimator, feature_schema=evaluated.schema,
        training_dataset_sha256=dataset.sha256, training_samples=evaluated.samples,
        training_duration_seconds=round(time.monotonic() - started, 3),
        hyperparameters={"external": True, "estimator": type(estimator).__name__,
                         "params": external.estimator_params(estimator)},
        metrics=evaluated.metrics, reference_profile=evaluated.reference_profile,
        fairness_report=evaluated.fairness_report, global_importance=evaluated.global_importance,
        gate_results=gates, training_report=report, description=description,
        client_id=client_id,
        estimation_objects=reference.objects if reference is not None else None,
        notes=f"{provenance}; evaluated on {Path(data_path).name}",
    )
