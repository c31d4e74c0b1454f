"""The per-process cache of verified models.

Each serving process keeps:
- the routing table: every live version of every model, refreshed when the registry's
  generation counter moves (checked at most every REGISTRY_POLL_SECONDS, one tiny query),
  so a deploy or rollback is noticed within seconds without a restart;
- loaded bundles keyed by (version id, model_sha256): an artifact is verified (every hash)
  and loaded once per process, and a new routing table reuses what is loaded, so a
  switch never fails a request;
- failures: a version whose artifacts fail verification raises a critical integrity alert
  once and answers 503 until the registry changes or MODEL_LOAD_RETRY_SECONDS pass;
- a few versions that are not live (named by a pinned request, or the version that
  answered a logged prediction being explained): loaded and verified as live ones are, and
  at most OFF_TABLE_BUNDLES of them kept, the least recently loaded going first.
"""

import gc
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy
from django.conf import settings

from core import prometheus as metrics
from core.errors import (
    ApplicationError,
    ModelIntegrityError,
    ModelNotFoundError,
    ModelNotReadyError,
    PermissionDeniedError,
)
from core.ml import compiled, explain, kinds, outputs
from core.ml.explain.tree import TreeModelExplainer
from core.ml.schema import output_lower_bound
from mlregistry import artifacts, selectors
from mlregistry.selectors import LiveVersion
from predictions import signals
from predictions.validation import ValidatedBatch

logger = logging.getLogger("pulselytics.predictions")

# Versions that are not live kept loaded per process: a model and its explainer take tens
# of MB, and a client naming old versions one after another must not fill the memory.
OFF_TABLE_BUNDLES = 4


@dataclass(frozen=True)
class Outputs:
    """A model's answers for a batch, as JSON-ready columns."""

    values: list
    probabilities: list[dict] | None = None
    anomaly_scores: list[float] | None = None


def _finite(answers: numpy.ndarray) -> numpy.ndarray:
    """The model's numeric answers, or an error: JSON has no NaN or infinity, and an answer
    that is not a number is a failure to report (500), not a null to log and return."""
    if not numpy.isfinite(answers).all():
        raise ApplicationError("the model answered a value that is not a finite number")
    return answers


@dataclass(eq=False)
class ServedVersion:
    live: LiveVersion
    estimator: Any
    reference_profile: dict
    # What answers: the compiled form of the estimator once verified, else the estimator.
    model: Any = None
    # Why the estimator itself answers ("" when the compiled form does).
    not_compiled_because: str = "not compiled yet"

    @property
    def task(self) -> str:
        return self.live.task

    def compile(self) -> None:
        """Serve through the compiled path (core.ml.compiled) when the pipeline compiles
        and gives the same answers on the verification rows; else through the pipeline,
        logged and counted (docs/api.md#compiled-inference)."""
        compilation = compiled.version_compile(
            estimator=self.estimator, task=self.live.task, schema=self.live.feature_schema,
            reference_profile=self.reference_profile)
        self.model, self.not_compiled_because = compilation.model, compilation.why
        if not compilation.reason and isinstance(self.explainer_or_error, TreeModelExplainer):
            # A tree explainer's one preprocessing step is all the compiled form transforms.
            self.explainer_or_error.preprocessing = compilation.model
        if compilation.reason in ("mismatch", "error"):
            logger.warning("%s %s is served through its pipeline: %s", self.live.model_name,
                           self.live.version, compilation.why)
        metrics.INFERENCE_PATHS.labels(
            model=self.live.model_name, version=self.live.version, path=compilation.path,
            reason=compilation.reason).inc()

    def predict(self, batch: ValidatedBatch) -> Outputs:
        task = self.live.task
        if isinstance(self.model, compiled.CompiledModel):
            model, frame = self.model, batch.columns  # the compiled path needs no DataFrame
        else:
            model, frame = self.estimator, batch.frame
        if task in (kinds.BINARY, kinds.MULTICLASS):
            probabilities = _finite(numpy.asarray(model.predict_proba(frame), dtype=float))
            classes = [label.item() if hasattr(label, "item") else label
                       for label in model.classes_]
            keys = [str(label) for label in classes]
            # The estimator's own predict() is this argmax; one pass through the pipeline.
            values = [classes[i] for i in probabilities.argmax(axis=1)]
            return Outputs(values=values,
                           probabilities=[dict(zip(keys, map(float, row), strict=True))
                                          for row in probabilities])
        if task == kinds.ANOMALY:
            scores = _finite(outputs.anomaly_scores(estimator=model, features=frame))
            flagged = numpy.asarray(model.predict(frame)) == -1
            return Outputs(values=flagged.tolist(), anomaly_scores=scores.tolist())
        values = _finite(numpy.asarray(model.predict(frame), dtype=float))
        # Every arm, shadows and pinned versions alike answer through here.
        return Outputs(values=outputs.outputs_bounded(values, lower=self.output_lower).tolist())

    @property
    def output_lower(self) -> float | None:
        """The lowest value this version answers: a count target's 0 when its schema
        declares it (docs/training.md#count-targets); None for any other version, and for
        every version stored before bounds existed."""
        if self.live.task != kinds.REGRESSION:
            return None
        return output_lower_bound(self.live.feature_schema)

    explainer_or_error: explain.ModelExplainer | Exception | None = None

    def warm_up(self) -> None:
        """Build the SHAP explainer once, at load: it costs far more than explaining a row."""
        try:
            self.explainer_or_error = explain.explainer_build(
                estimator=self.estimator, task=self.live.task, schema=self.live.feature_schema,
                reference_profile=self.reference_profile)
        except Exception as exc:  # noqa: BLE001 - e.g. a multiclass model, or a background
            # the pipeline cannot take: predict works, explain won't (and reports why).
            self.explainer_or_error = exc

    @property
    def explainer(self) -> explain.ModelExplainer:
        if isinstance(self.explainer_or_error, Exception):
            raise self.explainer_or_error
        return self.explainer_or_error


@dataclass(frozen=True)
class LiveModel:
    """One model's live versions: the champion, challengers and shadows."""

    model_name: str
    task: str
    champion: LiveVersion | None
    challengers: list[LiveVersion] = field(default_factory=list)
    shadows: list[LiveVersion] = field(default_factory=list)
    client_id: str = ""  # the client a per-client model belongs to ("" for global models)


def _routing_table(rows: list[LiveVersion]) -> dict[str, LiveModel]:
    grouped: dict[str, list[LiveVersion]] = {}
    for row in rows:
        grouped.setdefault(row.model_name, []).append(row)
    table = {}
    for name, versions in grouped.items():
        table[name] = LiveModel(
            model_name=name, task=versions[0].task, client_id=versions[0].client_id,
            champion=next((v for v in versions if v.status == "production"), None),
            challengers=[v for v in versions if v.status == "staging" and v.traffic_percentage > 0],
            shadows=[v for v in versions if v.is_shadow],
        )
    return table


def _gc_freeze_once() -> None:
    """Once per process, after its first model is loaded: move every object allocated so
    far (Django, scikit-learn, SHAP, the model: ~225,000 objects) out of the garbage
    collector's generations. A full collection then no longer walks them: it took ~110 ms
    in a serving process and came every few large batches (bench/RESULTS.md). Frozen
    objects are never collected as part of a reference cycle: nearly all of them live as
    long as the process; at worst the request in flight leaks its few cycles once.
    """
    if not gc.get_freeze_count():
        gc.freeze()


class ModelCache:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._generation: int | None = None
        self._checked_at = 0.0
        self._table: dict[str, LiveModel] = {}
        self._bundles: dict[tuple[int, str], ServedVersion] = {}
        self._failures: dict[tuple[int, str], tuple[float, ApplicationError]] = {}
        self._live_keys: set[tuple[int, str]] = set()
        # Loaded versions that are not live, least recently loaded first.
        self._off_table: list[tuple[int, str]] = []

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < settings.REGISTRY_POLL_SECONDS and self._generation is not None:
            return
        with self._lock:
            generation = selectors.registry_generation()
            self._checked_at = now
            if generation == self._generation:
                return
            table = _routing_table(selectors.live_versions_all())
            live_keys = {(v.version_id, v.model_sha256) for m in table.values()
                         for v in [m.champion, *m.challengers, *m.shadows] if v}
            self._bundles = {key: b for key, b in self._bundles.items() if key in live_keys}
            self._failures.clear()
            self._table, self._generation = table, generation
            self._live_keys, self._off_table = live_keys, []

    def live_model(self, *, model_name: str, client_id: str = "") -> tuple[LiveModel, str]:
        """The model that serves the request and its scope ("client" or "global")."""
        self._refresh()
        if client_id:
            client_model = self._table.get(f"{model_name}--{client_id}")
            if client_model is not None and client_model.champion is not None:
                return client_model, "client"
        live = self._table.get(model_name)
        if live is None:
            if not selectors.model_exists(name=model_name):
                raise ModelNotFoundError(f"no model named {model_name!r}",
                                         details={"model": model_name})
            raise ModelNotReadyError(f"{model_name} has no production version",
                                     details={"model": model_name})
        if live.client_id and client_id and live.client_id != client_id:
            # Named directly: a request acting for one client never gets another's model.
            raise PermissionDeniedError(f"model {model_name!r} belongs to another client",
                                        details={"model": model_name})
        if live.champion is None:
            raise ModelNotReadyError(f"{model_name} has no production version",
                                     details={"model": model_name})
        # A client's own model named directly is still that client's model.
        return live, "client" if live.client_id else "global"

    def served(self, live: LiveVersion) -> ServedVersion:
        key = (live.version_id, live.model_sha256)
        bundle = self._bundles.get(key)
        if bundle is not None:
            return bundle
        failure = self._failures.get(key)
        if failure and time.monotonic() - failure[0] < settings.MODEL_LOAD_RETRY_SECONDS:
            raise failure[1]
        with self._lock:
            if key in self._bundles:
                return self._bundles[key]
            try:
                selectors.sealed_artifact_check(version_id=live.version_id,
                                                model_sha256=live.model_sha256, approved=True)
                loaded = artifacts.bundle_load(manifest=live.artifact_manifest,
                                               model_sha256=live.model_sha256)
            except (artifacts.ArtifactIntegrityError,
                    artifacts.IncompatibleEnvironmentError) as exc:
                error = self._refuse(live, exc)
                self._failures[key] = (time.monotonic(), error)
                raise error from exc
            bundle = ServedVersion(live=live, estimator=loaded.estimator,
                                   reference_profile=loaded.objects.get("reference_profile", {}))
            bundle.warm_up()
            bundle.compile()
            self._bundles[key] = bundle
            _gc_freeze_once()
            # Counted so a warm start can be checked: a request after it loads nothing.
            metrics.MODEL_LOADS.labels(model=live.model_name, version=live.version).inc()
            logger.info("model loaded", extra={"model": live.model_name,
                                               "version": live.version})
            return bundle

    def served_any(self, version: LiveVersion) -> ServedVersion:
        """Any approved version, live or not, verified and loaded as `served` does (the
        same integrity refusal and alert). One that is not live counts against
        OFF_TABLE_BUNDLES; whether it is live is read from the current routing table."""
        self._refresh()
        key = (version.version_id, version.model_sha256)
        bundle = self.served(version)
        with self._lock:
            if key not in self._live_keys and key not in self._off_table:
                self._off_table.append(key)
                while len(self._off_table) > OFF_TABLE_BUNDLES:
                    self._bundles.pop(self._off_table.pop(0), None)
        return bundle

    @staticmethod
    def _refuse(live: LiveVersion, exc: ApplicationError) -> ApplicationError:
        signals.model_load_refused.send(sender=ModelCache, model_name=live.model_name,
                                        version=live.version, error=exc)
        if isinstance(exc, artifacts.IncompatibleEnvironmentError):
            return ModelNotReadyError(
                f"{live.model_name} {live.version} cannot be loaded here: {exc.message}",
                details={"reason": exc.code, **exc.details},
            )
        return ModelIntegrityError(
            f"{live.model_name} {live.version} failed artifact verification and is not served",
            details={"version": live.version},
        )

    def live_versions(self) -> list[LiveVersion]:
        """Every live version of every model: champions, challengers and shadows."""
        self._refresh()
        return [version for live in self._table.values()
                for version in [live.champion, *live.challengers, *live.shadows] if version]

    def readiness(self) -> dict[str, str]:
        """Per model with a production version: "ready" when its champion and challengers
        (the versions that answer) are loaded, else why not. A shadow never answers, so a
        shadow that fails to load does not make its model unready."""
        self._refresh()
        report = {}
        for name, live in sorted(self._table.items()):
            if live.champion is None:
                continue
            report[name] = "ready"
            for version in [live.champion, *live.challengers]:
                try:
                    self.served(version)
                except ApplicationError as exc:
                    report[name] = exc.message
                    break
        return report

    def clear(self) -> None:
        with self._lock:
            self._generation, self._checked_at = None, 0.0
            self._table, self._bundles, self._failures = {}, {}, {}
            self._live_keys, self._off_table = set(), []


model_cache = ModelCache()
