"""Test data, built with factory_boy for plain rows and the real services for versions."""

import factory
import numpy
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from sklearn.linear_model import LinearRegression

from mlregistry import services
from mlregistry.models import MLModelVersion
from mlregistry.schema import feature_spec

SCHEMA = {
    "target": "likes",
    "features": [
        feature_spec(name="followers", dtype="float"),
        feature_spec(name="hashtags", dtype="int"),
    ],
}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "pw")

    @factory.post_generation
    def groups(self, create, names, **kwargs):
        if create and names:
            self.groups.set(Group.objects.filter(name__in=names))
        self.save()


def tiny_estimator(slope: float = 2.0) -> LinearRegression:
    features = numpy.arange(20, dtype=float).reshape(10, 2)
    return LinearRegression().fit(features, features @ numpy.array([slope, 1.0]))


def register_version(
    *, user, name: str = "engagement-likes", slope: float = 2.0, schema: dict | None = None,
    gate_results: dict | None = None, metrics: dict | None = None,
) -> MLModelVersion:
    """Register a version through the real service (artifacts, audit rows and all)."""
    return services.model_version_register(
        name=name, task="regression", user=user, estimator=tiny_estimator(slope),
        feature_schema=schema or SCHEMA, training_dataset_sha256="0" * 64, training_samples=10,
        training_duration_seconds=0.01, hyperparameters={"slope": slope},
        metrics=metrics or {"r2": 0.9, "mae": 1.0, "rmse": 1.5},
        reference_profile={"features": {}}, gate_results=gate_results,
    )
