"""Small recipes for testing the training platform apart from the built-in ones."""

import os
import time
from pathlib import Path
from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from core.ml.recipes.base import Feature, LifecycleHooks, Recipe, TrainingContext


class TinyLikes(Recipe):
    """likes ~ 3 * followers + 10 * has_link + platform effect: a linear model learns it."""

    name = "tiny-likes"
    task = "regression"
    target = "likes"
    description = "test recipe"
    features = (
        Feature("followers", "float", minimum=0),
        Feature("has_link", "bool"),
        Feature("platform", "category", categories=("instagram", "tiktok")),
        Feature("region", "category", categories=("north", "south"), protected=True, input=False),
    )
    min_samples = 20

    def build_estimator(self, *, seed: int, n_samples: int) -> Any:
        prep = ColumnTransformer([
            ("num", SimpleImputer(strategy="median"), ["followers", "has_link"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["platform"]),
        ])
        return Pipeline([("prep", prep), ("model", LinearRegression())])

    def hyperparameters(self, estimator: Any) -> dict:
        return {"model": "LinearRegression"}


class ContactLikes(TinyLikes):
    """TinyLikes that also learns from the author's e-mail address, a personal input."""

    name = "contact-likes"
    features = (*TinyLikes.features, Feature("email", "category", pii=True))

    def build_estimator(self, *, seed: int, n_samples: int) -> Any:
        prep = ColumnTransformer([
            ("num", SimpleImputer(strategy="median"), ["followers", "has_link"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["platform", "email"]),
        ])
        return Pipeline([("prep", prep), ("model", LinearRegression())])


class StrictContactLikes(ContactLikes):
    """ContactLikes whose encoder knows one address only: scikit-learn refuses the others
    in `fit`, quoting them in its message."""

    name = "strict-contact-likes"

    def build_estimator(self, *, seed: int, n_samples: int) -> Any:
        prep = ColumnTransformer([
            ("num", SimpleImputer(strategy="median"), ["followers", "has_link"]),
            ("cat", OneHotEncoder(categories=[["known@example.test"]]), ["email"]),
        ])
        return Pipeline([("prep", prep), ("model", LinearRegression())])


class RecordingHook(LifecycleHooks):
    """A team's own hook, added through settings: records what it saw."""

    calls: list[tuple[str, str]] = []

    def before_train(self, context: TrainingContext) -> None:
        RecordingHook.calls.append(("before_train", context.model_name))

    def after_train(self, context: TrainingContext, estimator: Any) -> None:
        RecordingHook.calls.append(("after_train", type(estimator).__name__))


class ModelInputRecorder(LifecycleHooks):
    """A platform hook (added through settings) that keeps every frame a model was given."""

    frames: list = []

    def before_predict(self, *, model_name: str, version: str, features) -> None:
        ModelInputRecorder.frames.append(features.copy())


class BlockingHook(LifecycleHooks):
    """Holds every training in `before_train` so a test can kill the worker mid-training:
    touches the file named by PULSELYTICS_TEST_BLOCKED_MARKER, then waits (to be killed;
    it gives up after BLOCK_SECONDS so a forgotten worker cannot hang forever)."""

    BLOCK_SECONDS = 300

    def before_train(self, context: TrainingContext) -> None:
        Path(os.environ["PULSELYTICS_TEST_BLOCKED_MARKER"]).touch()
        time.sleep(self.BLOCK_SECONDS)
