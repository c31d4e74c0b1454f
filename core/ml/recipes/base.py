"""The small interface every training recipe shares, with its lifecycle hooks.

A recipe says what a model learns from (declared features and target), how it learns
(`build_estimator`, a fitted-from-scratch scikit-learn Pipeline whose preprocessing is
part of the bundle) and how many rows it needs. The platform trains, validates and
registers it (training.trainer); nothing in a recipe touches the database.

Lifecycle hooks (`before_train`, `after_train`, `before_predict`, `after_predict`) are
called by the platform around training and around every prediction. They do nothing by
default. The platform's own hooks (timing, logging) are listed in
settings.PULSELYTICS_LIFECYCLE_HOOKS; a team adds its own by appending a dotted path
there, or by subclassing a recipe and overriding a hook, and listing the subclass in
settings.PULSELYTICS_RECIPES: no platform code changes.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from core.ml.kinds import REGRESSION
from core.ml.schema import COUNT_OUTPUT_BOUNDS, feature_spec

if TYPE_CHECKING:
    import pandas


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str  # float | int | bool | category
    categories: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    pii: bool = False
    protected: bool = False
    input: bool = True

    def __post_init__(self) -> None:
        # The fairness audit names each group by its value (docs/registry.md#personal-data).
        if self.pii and self.protected:
            raise ValueError(f"feature {self.name!r} cannot be both personal (pii) and protected")

    def spec(self) -> dict:
        return feature_spec(
            name=self.name, dtype=self.dtype, categories=list(self.categories or ()),
            minimum=self.minimum, maximum=self.maximum, pii=self.pii, protected=self.protected,
            input=self.input,
        )


@dataclass
class TrainingContext:
    """What the hooks see of one training run; hooks may add to `notes` and `timings`."""

    recipe: "Recipe"
    model_name: str
    client_id: str
    seed: int
    n_rows: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


class LifecycleHooks:
    """Called by the platform; every method is optional (no-op here)."""

    def before_train(self, context: TrainingContext) -> None:
        return None

    def after_train(self, context: TrainingContext, estimator: Any) -> None:
        return None

    def before_predict(self, *, model_name: str, version: str,
                       features: "pandas.DataFrame") -> None:
        return None

    def after_predict(self, *, model_name: str, version: str, features: "pandas.DataFrame",
                      outputs: Any) -> None:
        return None


class Recipe(LifecycleHooks, ABC):
    """Subclass, set the class attributes and implement `build_estimator`."""

    name: ClassVar[str]
    task: ClassVar[str]
    target: ClassVar[str | None]  # None for anomaly detection (no labels)
    features: ClassVar[tuple[Feature, ...]]
    description: ClassVar[str] = ""
    min_samples: ClassVar[int] = 50
    # Below min_samples a global model may still be trained if the recipe has a fallback
    # for small data (build_estimator gets n_samples and chooses); per-client never.
    fallback_below_minimum: ClassVar[bool] = False
    # Column that names the client a row belongs to (per-client training filters on it).
    client_column: ClassVar[str] = "client_id"
    validation_fraction: ClassVar[float] = 0.2
    # A regression target that counts something (likes, comments) is never answered below
    # 0: the schema records the bound, so the audit trail seals it with the version, and
    # serving clips at it (docs/training.md#count-targets).
    target_is_count: ClassVar[bool] = False

    @abstractmethod
    def build_estimator(self, *, seed: int, n_samples: int) -> Any:
        """An unfitted estimator (usually a Pipeline with its preprocessing)."""

    def hyperparameters(self, estimator: Any) -> dict:
        """JSON-safe description of how `estimator` was configured (stored on the version)."""
        return {}

    def input_features(self) -> list[str]:
        return [f.name for f in self.features if f.input]

    def feature_schema(self) -> dict:
        schema = {"target": self.target, "features": [f.spec() for f in self.features]}
        if self.target_is_count:
            if self.task != REGRESSION:
                raise ValueError(f"recipe {self.name!r}: only a regression target is a count")
            schema["output_bounds"] = dict(COUNT_OUTPUT_BOUNDS)
        return schema
