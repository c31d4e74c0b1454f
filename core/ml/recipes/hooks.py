"""The platform's own lifecycle hooks (settings.PULSELYTICS_LIFECYCLE_HOOKS)."""

import logging
import time
from typing import Any

from core.ml.recipes.base import LifecycleHooks, TrainingContext

logger = logging.getLogger("pulselytics.training")


class TimingHook(LifecycleHooks):
    """Measures the fit; the trainer records `timings["fit_seconds"]` on the version."""

    def before_train(self, context: TrainingContext) -> None:
        context.timings["fit_started"] = time.perf_counter()

    def after_train(self, context: TrainingContext, estimator: Any) -> None:
        started = context.timings.pop("fit_started", None)
        if started is not None:
            context.timings["fit_seconds"] = round(time.perf_counter() - started, 4)


class LoggingHook(LifecycleHooks):
    """One log line when training starts and one when it ends (no feature values)."""

    def before_train(self, context: TrainingContext) -> None:
        logger.info("training started", extra={
            "model": context.model_name, "client_id": context.client_id,
            "rows": context.n_rows, "seed": context.seed,
        })

    def after_train(self, context: TrainingContext, estimator: Any) -> None:
        logger.info("training finished", extra={
            "model": context.model_name, "client_id": context.client_id,
            "fit_seconds": context.timings.get("fit_seconds"),
        })
