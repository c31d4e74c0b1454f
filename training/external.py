"""Evaluate an estimator trained outside the project on a given dataset (`register_model`).

Pure: no database access. Given a fitted scikit-learn estimator or Pipeline and a frame,
derive what a version records: the feature schema, the validation metrics, the reference
profile and the number of labelled rows.

- Input features are `estimator.feature_names_in_` when the estimator was fitted on a
  DataFrame; otherwise every column but the target and the protected ones, in file order,
  and their number must equal `n_features_in_`.
- Rows whose target is empty are left out of the metrics and counted in
  `metrics["rows_without_target"]` (stored with the version); `samples` is the number of labelled
  rows the metrics were computed on. The reference profile covers every row of the data
  (docs/monitoring.md#reference-profile: "for register_model, every row of the given file"), with or
  without a target, profiled with the fixed seed `PROFILE_SEED`.
- The fairness report (`fairness.fairness_report`) covers the labelled rows, like the
  metrics: groups from the protected columns of the data (inputs of the model or not),
  the model's `predict` output, and for a binary classifier `classes_[1]` as the positive
  class. Without protected columns it has no attributes.
- Validation diagnostics (`diagnostics.validation_diagnostics`: residuals, calibration,
  confusion matrix) on the labelled rows, like the metrics; the residual sample is drawn
  with `PROFILE_SEED`.
- With the model's production version (`production`, loaded by the caller), production is
  scored on the same labelled rows through its own schema (`trainer.production_compare`),
  so the gate and the model card compare the two like for like.
- Estimation reference (`estimation.reference_build`, docs/monitoring.md#estimated-performance)
  on the labelled rows, seeded with `PROFILE_SEED`; None when it cannot be built.
- Global importance (`importance.global_importance_compute`): mean |SHAP contribution|
  per input feature on a sample of the data's rows in the canonical form serving gives
  the model; None when the model cannot be explained (never a reason to refuse it).
- Personal columns (`pii`, docs/registry.md#personal-data) are marked in the schema, which
  lists none of their values, and left out of the profile. They must be columns of the
  data, and neither the target nor protected (the fairness report names groups by value).
  When there are any, an error the model raised is reported by its type only: its
  message may quote a value.
- Anything that makes the estimator unfit for the task or the data raises
  `ValidationError` with a one-line message, before anything is stored.
"""

import json
from dataclasses import dataclass, field
from typing import Any

import numpy
import pandas
from sklearn.base import is_classifier, is_outlier_detector, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from core.errors import ValidationError
from core.ml import diagnostics, estimation, fairness, importance
from core.ml import metrics as task_metrics
from core.ml.features import model_frame
from core.ml.kinds import ANOMALY, BINARY, MULTICLASS, REGRESSION, TASKS
from core.ml.outputs import model_outputs
from core.ml.profile import reference_profile_build, target_kind
from core.ml.schema import schema_from_frame
from training.trainer import ProductionModel, production_compare

PROFILE_SEED = 0


@dataclass(frozen=True)
class EvaluatedModel:
    schema: dict
    metrics: dict
    reference_profile: dict
    samples: int
    fairness_report: dict = field(default_factory=dict)
    global_importance: dict | None = None
    validation_diagnostics: dict | None = None  # diagnostics.validation_diagnostics
    # The production version scored on the same labelled rows (trainer.production_compare).
    production_comparison: dict | None = None
    # core.ml.estimation's reference on the labelled rows (None: not estimated).
    estimation_reference: estimation.EstimationReference | None = None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _is(check, estimator: Any) -> bool:
    """sklearn's estimator-type checks; an object they cannot classify is none of them."""
    try:
        return bool(check(estimator))
    except Exception:  # noqa: BLE001 - foreign objects may fail tag lookup in any way
        return False


def _check_estimator(estimator: Any, task: str) -> None:
    name = type(estimator).__name__
    if not hasattr(estimator, "predict"):
        raise ValidationError(
            f"{name} is not a usable scikit-learn estimator: it has no predict method")
    try:
        check_is_fitted(estimator)
    except (NotFittedError, TypeError) as exc:
        raise ValidationError(f"{name} is not a fitted estimator: {_one_line(exc)}") from exc
    classifier = _is(is_classifier, estimator)
    if task == REGRESSION and (classifier or _is(is_outlier_detector, estimator)):
        raise ValidationError(f"{name} is not a regressor; the task is {task}")
    if task in (BINARY, MULTICLASS):
        if not classifier or not hasattr(estimator, "classes_"):
            raise ValidationError(f"{name} is not a classifier; the task is {task}")
        classes = len(estimator.classes_)
        if task == BINARY and classes != 2:
            raise ValidationError(
                f"binary classification needs exactly 2 classes; {name} has {classes}")
        if task == BINARY and not hasattr(estimator, "predict_proba"):
            raise ValidationError(f"{name} has no predict_proba; binary classification needs "
                                  "probabilities (ROC AUC, Brier, the output profile)")
        if task == MULTICLASS and classes < 3:
            raise ValidationError(
                f"multiclass classification needs 3 or more classes; {name} has {classes} "
                "(register it as binary_classification)")
    if task == ANOMALY:
        if classifier or _is(is_regressor, estimator):
            raise ValidationError(f"{name} is not an outlier detector; the task is {task}")
        if not (hasattr(estimator, "decision_function") or hasattr(estimator, "score_samples")):
            raise ValidationError(
                f"{name} has neither decision_function nor score_samples for an anomaly score")


def _input_features(estimator: Any, frame: pandas.DataFrame, target: str,
                    protected: list[str]) -> list[str]:
    if hasattr(estimator, "feature_names_in_"):
        inputs = [str(name) for name in estimator.feature_names_in_]
        if target in inputs:
            raise ValidationError(f"the model takes the target column {target!r} as an input")
        absent = [name for name in inputs if name not in frame.columns]
        if absent:
            raise ValidationError(
                f"the model expects column(s) the data lacks: {', '.join(absent)}")
        return inputs
    inputs = [str(c) for c in frame.columns if c != target and c not in protected]
    expected = getattr(estimator, "n_features_in_", None)
    if expected is not None and expected != len(inputs):
        raise ValidationError(
            f"the model takes {expected} features but the data has {len(inputs)} columns "
            "besides the target and protected ones")
    return inputs


def _check_labels(estimator: Any, task: str, target: pandas.Series) -> None:
    if task not in (BINARY, MULTICLASS):
        return
    classes = list(estimator.classes_)
    unknown = set(target.unique()) - set(classes)
    if unknown:
        shown = ", ".join(repr(value) for value in sorted(unknown, key=str)[:5])
        raise ValidationError(
            f"target values {shown} are not among the model's classes "
            f"{', '.join(repr(c) for c in classes)}")


def _outputs(estimator: Any, task: str, features: Any) -> tuple[numpy.ndarray, str]:
    """The model's output as docs/monitoring.md#reference-profile profiles it, and its kind."""
    if task == ANOMALY:
        labels = set(numpy.unique(estimator.predict(features)).tolist())
        if not labels <= {-1, 1}:
            raise ValidationError(
                f"an outlier detector predicts -1 or 1; {type(estimator).__name__} predicted "
                f"{sorted(labels, key=str)[:5]}")
    return model_outputs(task=task, estimator=estimator, features=features)


def _check_pii(pii: list[str], *, target: str, protected: list[str]) -> None:
    if target in pii:
        raise ValidationError(f"the target column {target!r} cannot be personal (--pii)",
                              details={"field": "pii"})
    both = [column for column in pii if column in protected]
    if both:
        raise ValidationError(
            f"column(s) {', '.join(both)} cannot be both personal (--pii) and protected: the "
            "fairness report names each group by its value", details={"field": "pii"})


def external_model_evaluate(
    *, estimator: Any, frame: pandas.DataFrame, target: str, task: str, protected: list[str],
    pii: list[str] | None = None, category_enum_max: int | None = None,
    production: ProductionModel | None = None,
) -> EvaluatedModel:
    """Schema, metrics, diagnostics, reference profile and labelled-row count of a fitted
    estimator, and `production` scored on the same rows.

    A category column with more distinct values than `category_enum_max` gets no allowed
    list in the schema (None: no maximum).
    """
    if task not in TASKS:
        raise ValidationError(
            f"unknown task {task!r}; one of {', '.join(TASKS)}")
    protected, pii = list(protected), list(pii or [])
    missing = [column for column in [target, *protected, *pii] if column not in frame.columns]
    if missing:
        raise ValidationError(f"column(s) not in the data: {', '.join(missing)}",
                              details={"missing": missing})
    if target in protected:
        raise ValidationError(f"the target column {target!r} cannot also be protected")
    _check_pii(pii, target=target, protected=protected)
    if frame.empty:
        raise ValidationError("the data has no rows")
    _check_estimator(estimator, task)
    inputs = _input_features(estimator, frame, target, protected)
    schema = schema_from_frame(frame, target=target, input_features=inputs, protected=protected,
                               pii=pii, category_enum_max=category_enum_max)
    features = frame[inputs]
    if not hasattr(estimator, "feature_names_in_"):
        # Fitted on an array: give it an array, as it was trained.
        features = features.to_numpy()
    labelled = frame[target].notna().to_numpy()
    if not labelled.any():
        raise ValidationError(f"no row of the data has a value in the target column {target!r}")
    labels = frame.loc[labelled, target]
    _check_labels(estimator, task, labels)
    try:
        outputs, output_kind = _outputs(estimator, task, features)
        metrics = task_metrics.metrics_evaluate(
            task=task, estimator=estimator, features=features[labelled], target=labels)
        validation_diagnostics = diagnostics.validation_diagnostics(
            task=task, estimator=estimator, features=features[labelled], target=labels,
            sample_seed=PROFILE_SEED)
        audit = fairness.fairness_report(
            task=task,
            protected={column: frame.loc[labelled, column].to_numpy() for column in protected},
            y_true=labels.to_numpy(), y_pred=numpy.asarray(estimator.predict(features[labelled])),
            positive_label=estimator.classes_[1] if task == BINARY else None,
        )
    except ValidationError:
        raise
    except Exception as exc:
        reason = (f"{type(exc).__name__} (message withheld: the data has personal columns)"
                  if pii else _one_line(exc))
        raise ValidationError(f"the model cannot take this data: {reason}") from exc
    metrics["rows_without_target"] = int((~labelled).sum())
    reference = _estimation_reference(estimator=estimator, task=task, schema=schema,
                                      features=features[labelled], rows=frame.loc[labelled],
                                      target=labels.to_numpy())
    comparison = None
    if production is not None:
        comparison = production_compare(production=production, task=task,
                                        rows=frame.loc[labelled], target=labels.to_numpy())
    profile = reference_profile_build(
        frame=frame, schema=schema, outputs=outputs, seed=PROFILE_SEED,
        output_kind=output_kind, target=labels.to_numpy(), target_kind=target_kind(task))
    global_importance = importance.global_importance_compute(
        estimator=estimator, task=task, schema=schema,
        frame=frame,
        reference_profile=profile)
    return EvaluatedModel(schema=schema, metrics=metrics, reference_profile=profile,
                          samples=int(labelled.sum()), fairness_report=audit,
                          global_importance=global_importance,
                          validation_diagnostics=validation_diagnostics,
                          production_comparison=comparison,
                          estimation_reference=reference)


def _estimation_reference(*, estimator: Any, task: str, schema: dict, features: Any,
                          rows: pandas.DataFrame, target: numpy.ndarray
                          ) -> "estimation.EstimationReference | None":
    """The estimation reference on the labelled rows, seeded with PROFILE_SEED; None when
    it cannot be built: a model trained elsewhere is registered all the same, and its
    estimated performance is "not available"."""
    try:
        return estimation.reference_build(
            task=task, estimator=estimator, features=features, target=target,
            canonical=model_frame(rows, schema)[0], schema=schema, seed=PROFILE_SEED)
    except Exception:  # noqa: BLE001 - estimation never refuses a model
        return None


def _json_safe(value: Any) -> Any:
    if isinstance(value, numpy.generic):
        value = value.item()
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
    return value


def estimator_params(estimator: Any) -> dict:
    """`get_params(deep=False)` as strict JSON: values JSON cannot hold become their repr."""
    get_params = getattr(estimator, "get_params", None)
    if get_params is None:
        return {}
    return {str(name): _json_safe(value) for name, value in sorted(get_params(deep=False).items())}
