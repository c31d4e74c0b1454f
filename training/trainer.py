"""Train a recipe on a dataset (pure: no database access, no storage).

    prepare (declared columns, client rows, canonical dtypes, rows without target dropped)
    -> split (held-out validation, stratified for classifiers, fixed seed)
    -> fit (lifecycle hooks around it) -> validation metrics and diagnostics, the
       estimation reference (core.ml.estimation), reference profile, fairness, global
       feature importance on the validation rows

The service (mlregistry.services.model_train) registers the result; a training failure
raises before anything is stored.
"""

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy
import pandas
from sklearn.model_selection import train_test_split

from core.errors import InsufficientDataError, ValidationError
from core.ml import diagnostics, estimation, evidence, fairness, importance, kinds, metrics
from core.ml.features import model_frame
from core.ml.outputs import model_outputs, outputs_bounded
from core.ml.profile import reference_profile_build, target_kind
from core.ml.recipes import lifecycle_hooks
from core.ml.recipes.base import Recipe, TrainingContext
from core.ml.schema import output_lower_bound

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class TrainedModel:
    estimator: Any
    schema: dict
    metrics: dict
    reference_profile: dict
    fairness_report: dict
    hyperparameters: dict
    training_report: dict
    samples: int
    fit_seconds: float
    global_importance: dict | None = None  # importance.global_importance_compute
    # The production version scored on the same validation rows (see production_compare).
    production_comparison: dict | None = None
    # Fitted objects for performance estimation (core.ml.estimation), stored in the bundle
    # beside the estimator; their reference is training_report["estimation"].
    estimation_objects: dict | None = None


@dataclass(frozen=True)
class ProductionModel:
    """The model's production version, loaded (hash-verified) to be scored beside a
    candidate; or, when it could not be loaded, why not (`unavailable`, estimator None)."""

    version: str
    estimator: Any
    schema: dict
    unavailable: str = ""


@dataclass(frozen=True)
class FeedbackRows:
    """Training rows made from logged predictions with feedback."""

    frame: pandas.DataFrame
    skipped: int  # anomaly models: outcomes that were anomalies (not learnt as normal)
    sha256: str  # of the rows as read, in order: identifies them like a dataset's hash
    not_counted: int = 0  # rows beyond their source's share (core.ml.evidence)


def _no_progress(fraction: float, stage: str) -> None:
    return None


def feedback_rows(*, recipe: Recipe, chunks: Iterable[list[tuple[dict, Any, str, str]]],
                  client_id: str = "", max_source_share: float = 1.0) -> FeedbackRows:
    """Rows in the recipe's dataset layout from (logged features, actual, client_id,
    feedback source).

    The outcome becomes the recipe's target column. A feature the log lacks (a PII one is
    never stored; an optional non-input one may not have been sent) is a missing value,
    which `prepare` treats like a gap in the dataset: imputed and counted for inputs, the
    group "(missing)" in the fairness audit. A recipe without a target (anomaly detection)
    learns what normal looks like, so it takes only rows whose outcome is `false` (no
    anomaly). No feedback source makes up more than `max_source_share` of the rows taken
    (each source's earliest rows count). Rows keep the order they are read in, so the
    same rows give the same model.
    """
    names = [feature.name for feature in recipe.features]
    taken, sources, skipped = [], [], 0
    digest = hashlib.sha256()
    for chunk in chunks:
        for features, actual, row_client, source in chunk:
            digest.update(json.dumps([features, actual, row_client, source], sort_keys=True,
                                     default=str).encode())
            if recipe.target is None and actual is not False:
                skipped += 1
                continue
            taken.append((features, actual, row_client))
            sources.append(source)
    counted = evidence.counted_mask(sources, max_source_share)
    columns: dict[str, list] = {name: [] for name in names}
    targets, clients = [], []
    for (features, actual, row_client), counts in zip(taken, counted, strict=True):
        if not counts:
            continue
        for name in names:
            columns[name].append(features.get(name))
        targets.append(actual)
        clients.append(client_id or row_client)
    if recipe.target:
        columns[recipe.target] = targets
    columns[recipe.client_column] = clients
    # Inferred dtypes: class labels must stay numbers or bools for scikit-learn.
    frame = pandas.DataFrame({name: pandas.Series(values, dtype=None if values else object)
                              for name, values in columns.items()})
    return FeedbackRows(frame=frame, skipped=skipped, sha256=digest.hexdigest(),
                        not_counted=len(taken) - len(frame))


def prepare(*, recipe: Recipe, frame: pandas.DataFrame, client_id: str = ""
            ) -> tuple[pandas.DataFrame, pandas.Series | None, pandas.DataFrame, dict]:
    """Inputs (canonical dtypes), target, protected columns and a report of what was done."""
    schema = recipe.feature_schema()
    needed = [f["name"] for f in schema["features"]]
    needed += [recipe.target] if recipe.target else []
    needed += [recipe.client_column] if client_id else []
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        raise ValidationError(
            f"the dataset lacks column(s) {', '.join(missing)} that {recipe.name} needs",
            details={"missing": missing},
        )
    report: dict[str, Any] = {"rows_read": len(frame)}
    if client_id:
        frame = frame[frame[recipe.client_column].astype(str) == str(client_id)]
        report["rows_for_client"] = len(frame)
    target = None
    if recipe.target:
        target = frame[recipe.target]
        if recipe.task == kinds.REGRESSION:
            target = pandas.to_numeric(target, errors="coerce").astype(float)
            target = target.mask(numpy.isinf(target.to_numpy()))
        labelled = target.notna()
        report["rows_without_target"] = int((~labelled).sum())
        frame, target = frame[labelled], target[labelled]
    inputs, coercion = model_frame(frame, schema)
    protected = frame[[f["name"] for f in schema["features"] if f["protected"]]]
    report.update(coercion.as_dict())
    report["rows_used"] = len(frame)
    return inputs, target, protected, report


def _split(recipe: Recipe, n_rows: int, target: pandas.Series | None, seed: int
           ) -> tuple[numpy.ndarray, numpy.ndarray]:
    positions = numpy.arange(n_rows)
    stratify = None
    if target is not None and recipe.task in (kinds.BINARY, kinds.MULTICLASS):
        counts = target.value_counts()
        if len(counts) > 1 and counts.min() >= 2:
            stratify = target.to_numpy()
    return train_test_split(positions, test_size=recipe.validation_fraction,
                            random_state=seed, stratify=stratify)


def train_recipe(*, recipe: Recipe, frame: pandas.DataFrame, seed: int, client_id: str = "",
                 model_name: str | None = None, progress: Progress = _no_progress,
                 production: ProductionModel | None = None) -> TrainedModel:
    progress(0.05, "preparing data")
    # Unique labels: the validation rows are found again by them for the production version.
    frame = frame.reset_index(drop=True)
    inputs, target, protected, report = prepare(recipe=recipe, frame=frame, client_id=client_id)
    n_rows = len(inputs)
    below_minimum = n_rows < recipe.min_samples
    if below_minimum and (client_id or not recipe.fallback_below_minimum):
        who = f"client {client_id}" if client_id else "the dataset"
        raise InsufficientDataError(
            f"{recipe.name} needs at least {recipe.min_samples} rows; {who} has {n_rows}"
            + (" (the global model serves this client)" if client_id else ""),
            details={"rows": n_rows, "minimum": recipe.min_samples},
        )
    progress(0.15, "splitting")
    train_at, validation_at = _split(recipe, n_rows, target, seed)
    report["train_rows"], report["validation_rows"] = len(train_at), len(validation_at)
    x_train, x_validation = inputs.iloc[train_at], inputs.iloc[validation_at]
    y_train = target.iloc[train_at].to_numpy() if target is not None else None
    y_validation = target.iloc[validation_at].to_numpy() if target is not None else None

    context = TrainingContext(recipe=recipe, model_name=model_name or recipe.name,
                              client_id=client_id, seed=seed, n_rows=len(train_at))
    hooks = lifecycle_hooks(recipe)
    # The recipe chooses by the rows the model is built from (docs/training.md#training-run minimum
    # counts).
    estimator = recipe.build_estimator(seed=seed, n_samples=n_rows)
    progress(0.2, "fitting")
    for hook in hooks:
        hook.before_train(context)
    if y_train is None:
        estimator.fit(x_train)
    else:
        estimator.fit(x_train, y_train)
    for hook in hooks:
        hook.after_train(context, estimator)

    progress(0.75, "validating")
    schema = recipe.feature_schema()
    # Judged, compared and profiled as served: a count is never answered below 0.
    lower_bound = output_lower_bound(schema)
    validation_metrics = metrics.metrics_evaluate(
        task=recipe.task, estimator=estimator, features=x_validation, target=y_validation,
        lower_bound=lower_bound)
    report["validation_diagnostics"] = diagnostics.validation_diagnostics(
        task=recipe.task, estimator=estimator, features=x_validation, target=y_validation,
        sample_seed=seed)
    reference = estimation.reference_build(
        task=recipe.task, estimator=estimator, features=x_validation, target=y_validation,
        canonical=x_validation, schema=schema, seed=seed, lower_bound=lower_bound)
    if reference is not None:
        report["estimation"] = reference.document
    comparison = None
    if production is not None:
        comparison = production_compare(
            production=production, task=recipe.task, rows=frame.loc[inputs.index[validation_at]],
            target=y_validation)
    progress(0.85, "profiling")
    outputs, output_kind = model_outputs(task=recipe.task, estimator=estimator,
                                         features=x_train)
    outputs = outputs_bounded(outputs, lower=lower_bound)
    profile = reference_profile_build(frame=x_train, schema=schema, outputs=outputs, seed=seed,
                                      output_kind=output_kind, target=y_train,
                                      target_kind=target_kind(recipe.task))
    progress(0.9, "fairness audit")
    fairness_report = fairness.fairness_report(
        task=recipe.task,
        protected={name: protected[name].iloc[validation_at].to_numpy() for name in protected},
        y_true=y_validation,
        y_pred=estimator.predict(x_validation),
    )
    progress(0.93, "feature importance")
    global_importance = importance.global_importance_compute(
        estimator=estimator, task=recipe.task, schema=schema, frame=x_validation,
        reference_profile=profile)
    report["notes"] = context.notes
    return TrainedModel(
        estimator=estimator, schema=schema, metrics=validation_metrics,
        reference_profile=profile, fairness_report=fairness_report,
        hyperparameters={**recipe.hyperparameters(estimator), "seed": seed},
        training_report=report, samples=n_rows,
        fit_seconds=float(context.timings.get("fit_seconds", 0.0)),
        global_importance=global_importance, production_comparison=comparison,
        estimation_objects=reference.objects if reference is not None else None,
    )


def production_compare(*, production: ProductionModel, task: str, rows: pandas.DataFrame,
                       target) -> dict:
    """The production version's metrics on a candidate's validation rows (taken as
    production reads them, through its own schema), so that the two are compared like for
    like; when it cannot be scored on them (or was not loaded), the reason instead of
    metrics. Production's error message is withheld when its schema has personal features
    (docs/registry.md#personal-data): a library's message may quote a value."""
    common = {"version": production.version, "rows": len(rows)}
    if production.unavailable:
        return {**common, "metrics": None, "reason": production.unavailable}
    try:
        features, _ = model_frame(rows, production.schema)
        scored = metrics.metrics_evaluate(task=task, estimator=production.estimator,
                                          features=features, target=target,
                                          lower_bound=output_lower_bound(production.schema))
    except Exception as exc:  # noqa: BLE001 - any failure means: not comparable on these rows
        personal = any(feature.get("pii") for feature in production.schema["features"])
        message = ("message withheld: production has personal features" if personal
                   else str(exc))
        return {**common, "metrics": None,
                "reason": f"production {production.version} could not be scored on these "
                          f"rows: {type(exc).__name__}: {message}"[:300]}
    return {**common, "metrics": scored, "reason": ""}
