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


def grant_permissions(user, *codenames: str):
    """Give `user` mlregistry permissions directly; returns a fresh instance (no perm cache)."""
    from django.contrib.auth.models import Permission

    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="mlregistry", codename__in=codenames)
    )
    return type(user).objects.get(pk=user.pk)


def register_approved_version(
    *, user, reviewer, slope: float = 2.0, deployer=None, **kwargs,
) -> MLModelVersion:
    """Register (as `user`) and approve (as `reviewer`): a `staging` version.

    `deployer` is accepted (and unused) so one dict of people fits every helper.
    """
    version = register_version(user=user, slope=slope, **kwargs)
    return services.model_version_approve(version=version, user=reviewer, notes="approved in test")


def register_deployed_version(
    *, user, reviewer, deployer, slope: float = 2.0, traffic: int | None = None,
    shadow: bool = False, **kwargs,
) -> MLModelVersion:
    """Register, approve and deploy (plain, as challenger with `traffic`, or as shadow)."""
    version = register_approved_version(user=user, reviewer=reviewer, slope=slope, **kwargs)
    return services.model_version_deploy(version=version, user=deployer, traffic=traffic,
                                         shadow=shadow, notes="deployed in test")


def registry_state(model_id: int) -> dict:
    """Everything a refused service call must leave untouched, read fresh from the database."""
    from mlregistry.models import ModelTransition

    versions = MLModelVersion.objects.filter(model_id=model_id).order_by("pk").values_list(
        "pk", "status", "traffic_percentage", "is_shadow", "deployed_at", "deprecated_at",
        "approved_by_id", "approved_at", "approval_notes", "override_justification",
        "artifacts_deleted_at",
    )
    transitions = ModelTransition.objects.filter(model_id=model_id).order_by("sequence")
    return {
        "versions": list(versions),
        "transitions": list(transitions.values_list("pk", "row_sha256")),
    }


def ensure_governance_groups() -> None:
    """Re-create the groups of migration 0002 (a transactional test's flush deletes them)."""
    import importlib

    from django.contrib.auth.models import Permission

    groups = importlib.import_module("mlregistry.migrations.0002_groups").GROUPS
    training = importlib.import_module("mlregistry.migrations.0005_training_permissions")
    extra = {"Data scientists": training.DATA_SCIENTIST_EXTRA,
             "Reviewers": training.VIEW_FOR_ALL, "Deployers": training.VIEW_FOR_ALL}
    for name, codenames in groups.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(Permission.objects.filter(
            content_type__app_label="mlregistry", codename__in=[*codenames, *extra[name]]
        ))
