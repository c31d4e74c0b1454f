"""Test data, built with factory_boy for plain rows and the real services for versions."""

import io
import os
from pathlib import Path

import factory
import joblib
import numpy
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from sklearn.linear_model import LinearRegression

from core.ml.schema import feature_spec
from mlregistry import artifacts, registration, services, transitions
from mlregistry.models import MLModelVersion, Status

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


class Tripwire:
    """Loading this object creates a directory: proof that it was loaded, from a pickle
    (`__reduce__`) or from a skops file (`__setstate__`, called once its type is trusted)."""

    def __init__(self, path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))

    def __setstate__(self, state) -> None:
        self.__dict__.update(state)
        os.mkdir(self.path)


TRIPWIRE_TYPE = f"{Tripwire.__module__}.{Tripwire.__qualname__}"


def identity_features(features):
    """A feature function outside the trusted set (for a custom pipeline step)."""
    return features


class NoisyRegressor:
    """A model whose answers change from call to call: no conversion can be shown exact."""

    def predict(self, features):
        return numpy.random.default_rng().random(len(features))


def pickled_bundle(*, estimator, reference_profile: dict) -> artifacts.PreparedBundle:
    """A bundle as versions registered before skops stored it: the estimator pickled with
    joblib, under a manifest with no `trusted_types` (pass it to model_version_register as
    `bundle=`)."""
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    pickled = buffer.getvalue()
    profile = artifacts.canonical_json(reference_profile)
    entries = [
        {"name": name, "format": fmt, "path": artifacts.object_name(data),
         "sha256": artifacts.sha256_bytes(data), "size": len(data)}
        for name, fmt, data in (("estimator", "joblib", pickled),
                                ("reference_profile", "json", profile))
    ]
    environment = {**artifacts.training_environment(), "joblib": joblib.__version__}
    environment.pop("skops")
    manifest = {"format": artifacts.MANIFEST_FORMAT, "artifacts": entries,
                "environment": environment}
    files = {entry["path"]: data for entry, data in zip(entries, (pickled, profile), strict=True)}
    files[artifacts.manifest_name(artifacts.manifest_sha256(manifest))] = (
        artifacts.canonical_json(manifest))
    return artifacts.PreparedBundle(manifest=manifest, files=files)


def tiny_estimator(slope: float = 2.0) -> LinearRegression:
    features = numpy.arange(20, dtype=float).reshape(10, 2)
    return LinearRegression().fit(features, features @ numpy.array([slope, 1.0]))


def register_version(
    *, user, name: str = "engagement-likes", slope: float = 2.0, schema: dict | None = None,
    gate_results: dict | None = None, metrics: dict | None = None,
    reference_profile: dict | None = None,
) -> MLModelVersion:
    """Register a version through the real service (artifacts, audit rows and all)."""
    return registration.model_version_register(
        name=name, task="regression", user=user, estimator=tiny_estimator(slope),
        feature_schema=schema or SCHEMA, training_dataset_sha256="0" * 64, training_samples=10,
        training_duration_seconds=0.01, hyperparameters={"slope": slope},
        metrics=metrics or {"r2": 0.9, "mae": 1.0, "rmse": 1.5},
        reference_profile=reference_profile or {"features": {}}, gate_results=gate_results,
    )


def artifact_tamper(version: MLModelVersion, name: str = "estimator") -> tuple[Path, bytes]:
    """Flip one byte in the middle of one of the version's artifact files; returns the file
    and its original bytes, so a test that shares the artifact folder can put it back."""
    entry = next(e for e in version.artifact_manifest["artifacts"] if e["name"] == name)
    path = Path(artifacts.artifact_storage().path(entry["path"]))
    original = path.read_bytes()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0xFF
    path.write_bytes(bytes(tampered))
    return path, original


TRIPWIRE_MODEL = "tripwire-likes"


def register_tripwire_version(*, user, reviewer, path, pickled: bool = False,
                              name: str = TRIPWIRE_MODEL) -> MLModelVersion:
    """A testing version whose estimator is a Tripwire: a skops file whose Tripwire type
    `reviewer` trusted (so it is approvable and loads), or (`pickled`) a pickle as versions
    registered before skops hold."""
    estimator, profile = Tripwire(path), {"features": {}}
    version = registration.model_version_register(
        name=name, task="regression", user=user, estimator=estimator, feature_schema=SCHEMA,
        training_dataset_sha256="0" * 64, training_samples=10, training_duration_seconds=0.01,
        hyperparameters={}, metrics={"r2": 0.9}, reference_profile=profile,
        bundle=pickled_bundle(estimator=estimator, reference_profile=profile) if pickled
        else None)
    if pickled:
        return version
    return services.model_version_types_trust(version=version, user=reviewer,
                                              types=[TRIPWIRE_TYPE], reason="test tripwire")


def approve_as_before_skops(version: MLModelVersion, reviewer) -> MLModelVersion:
    """Approve a pickled version as releases before safe model files did (today's service
    refuses a pickle): the same sealed `approved` row and fields, as an upgrade finds it."""
    now = timezone.now()
    transitions.set_state(version, actor=reviewer, reason="approved", notes="approved",
                          now=now, status=Status.STAGING,
                          approved_by=reviewer, approved_at=now, approval_notes="approved")
    return version


def answers_identical(first: MLModelVersion, second: MLModelVersion) -> bool:
    """Whether two versions' stored estimators predict exactly alike on rows drawn from the
    first's reference profile (skops files of equal estimators differ byte for byte)."""
    from core.ml.explain import background_from_profile

    rows = background_from_profile(schema=first.feature_schema,
                                   reference_profile=first.reference_profile, rows=500)
    first_answers, second_answers = (
        artifacts.bundle_load(manifest=v.artifact_manifest, model_sha256=v.model_sha256)
        .estimator.predict(rows) for v in (first, second))
    return numpy.array_equal(first_answers, second_answers)


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
    """Re-create the groups of mlregistry 0002/0005/0010 and monitoring 0005/0010 (a
    transactional test's flush deletes them)."""
    import importlib

    from django.contrib.auth.models import Permission

    groups = importlib.import_module("mlregistry.migrations.0002_groups").GROUPS
    withdrawn = importlib.import_module("mlregistry.migrations.0010_model_identity_fixed").WITHDRAWN
    training = importlib.import_module("mlregistry.migrations.0005_training_permissions")
    extra = {"Data scientists": training.DATA_SCIENTIST_EXTRA,
             "Reviewers": training.VIEW_FOR_ALL, "Deployers": training.VIEW_FOR_ALL}
    monitoring = importlib.import_module("monitoring.migrations.0005_group_permissions")
    schedule_audit = importlib.import_module(
        "monitoring.migrations.0010_schedule_change_permissions")
    for name, codenames in groups.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set([
            *Permission.objects.filter(content_type__app_label="mlregistry",
                                       codename__in=set(codenames) - set(withdrawn)),
            # training/0001 moved the training tables' permissions to the training app.
            *Permission.objects.filter(content_type__app_label="training",
                                       codename__in=extra[name]),
            *Permission.objects.filter(
                content_type__app_label="monitoring",
                codename__in=[*monitoring.GROUP_PERMISSIONS[name],
                              *schedule_audit.VIEW_FOR_ALL]),
            *Permission.objects.filter(content_type__app_label="django_celery_beat",
                                       codename__in=monitoring.SCHEDULE_PERMISSIONS[name]),
        ])


# --- drift monitoring: a version profiled on its training rows, and logged predictions ----

DRIFT_SCHEMA = {
    "target": "likes",
    "features": [
        feature_spec(name="followers", dtype="float"),
        feature_spec(name="hashtags", dtype="int"),
        feature_spec(name="platform", dtype="category", categories=["instagram", "tiktok", "x"]),
        feature_spec(name="has_link", dtype="bool"),
    ],
}


def drift_frame(*, n: int, seed: int, shift: dict | None = None):
    """Rows of the drift version's training distribution (`shift` adds to numeric columns)."""
    import pandas

    rng = numpy.random.default_rng(seed)
    frame = pandas.DataFrame({
        "followers": rng.normal(1000.0, 200.0, n),
        "hashtags": rng.poisson(3.0, n),
        "platform": rng.choice(["instagram", "tiktok", "x"], n, p=[0.5, 0.3, 0.2]),
        "has_link": rng.random(n) < 0.4,
    })
    for name, delta in (shift or {}).items():
        frame[name] = frame[name] + delta
    return frame


def drift_outputs(frame) -> numpy.ndarray:
    """The drift version's "model": its regression output on `frame`."""
    return 0.01 * frame["followers"].to_numpy(dtype=float) + 2.0 * frame["hashtags"].to_numpy(
        dtype=float)


def register_profiled_version(
    *, user, reviewer, deployer, name: str = "drift-likes", rows: int = 1000, seed: int = 0,
    traffic: int | None = None, shadow: bool = False, task: str = "regression",
    schema: dict | None = None, frame=None, outputs=None, output_kind: str = "numeric",
    target=None, **deployment,
) -> MLModelVersion:
    """A deployed version whose reference profile describes real training rows (by default
    `drift_frame(n=rows, seed=seed)` and `drift_outputs`). Drift checks never load the
    estimator, so a tiny one stands in."""
    from core.ml.profile import reference_profile_build

    frame = drift_frame(n=rows, seed=seed) if frame is None else frame
    outputs = drift_outputs(frame) if outputs is None else outputs
    schema = schema or DRIFT_SCHEMA
    profile = reference_profile_build(frame=frame, schema=schema, outputs=outputs, seed=seed,
                                      output_kind=output_kind, target=target)
    version = registration.model_version_register(
        name=name, task=task, user=user, estimator=tiny_estimator(), feature_schema=schema,
        training_dataset_sha256="0" * 64, training_samples=len(frame),
        training_duration_seconds=0.01, hyperparameters={}, metrics={},
        reference_profile=profile,
    )
    version = services.model_version_approve(version=version, user=reviewer, notes="approved")
    return services.model_version_deploy(version=version, user=deployer, traffic=traffic,
                                         shadow=shadow, notes="deployed in test", **deployment)


def prediction_logs_create(*, version: MLModelVersion, frame, values, created_at,
                           arm: str = "champion", probabilities=None, anomaly_scores=None) -> int:
    """Insert logged predictions of `version` directly (the serving services are the writers
    in production): one row per row of `frame`, with `values` as the logged outputs."""
    from predictions.models import PredictionLog

    def native(value):
        return value.item() if isinstance(value, numpy.generic) else value

    rows = [{key: native(value) for key, value in row.items()}
            for row in frame.to_dict("records")]
    probabilities = probabilities if probabilities is not None else [None] * len(rows)
    scores = anomaly_scores if anomaly_scores is not None else [None] * len(rows)
    PredictionLog.objects.bulk_create([
        PredictionLog(model_version=version, model_name=version.model.name, arm=arm,
                      request_id="test", routing_key_sha256="0" * 64, features=features,
                      features_sha256="0" * 64, value=native(value), probabilities=probability,
                      anomaly_score=None if score is None else float(score), latency_ms=1.0,
                      created_at=created_at)
        for features, value, probability, score in zip(rows, values, probabilities, scores,
                                                       strict=True)
    ], batch_size=1000)
    return len(rows)


# --- live performance, fairness and A/B tests: logged predictions with outcomes ------------


def labelled_errors_create(version: MLModelVersion, *, arm: str, noise: float, seed: int,
                           n: int = 40) -> None:
    """`n` answered predictions of a regression `version`, off their outcome by N(0, noise)."""
    rng = numpy.random.default_rng(seed)
    actual = rng.normal(100.0, 20.0, n)
    predicted = actual + rng.normal(0.0, noise, n)
    labelled_logs_create(version=version, arm=arm, values=predicted.tolist(),
                         actuals=actual.tolist(), created_at=timezone.now())


def labelled_logs_create(
    *, version: MLModelVersion, values, actuals, created_at, arm: str = "champion",
    probabilities=None, features=None, latency_ms: float = 5.0, feedback_sources=None,
) -> list:
    """Insert answered predictions of `version` with recorded outcomes (`actuals`; None
    leaves a row unlabelled), one request each; returns the rows. The outcomes come from
    `feedback_sources` (one per row), by default from four honest clients in turn."""
    from predictions.models import PredictionLog

    n = len(values)
    features = features if features is not None else [{"followers": 1.0, "hashtags": 1}] * n
    probabilities = probabilities if probabilities is not None else [None] * n
    if feedback_sources is None:
        feedback_sources = [f"client:honest-{i % 4}" for i in range(n)]
    return PredictionLog.objects.bulk_create([
        PredictionLog(model_version=version, model_name=version.model.name, arm=arm,
                      request_id=f"{arm}-{version.pk}-{i}-{created_at.timestamp()}",
                      routing_key_sha256="0" * 64, features=row_features,
                      features_sha256="0" * 64, value=value, probabilities=probability,
                      latency_ms=latency_ms, created_at=created_at, actual=actual,
                      actual_at=None if actual is None else created_at,
                      feedback_source="" if actual is None else source)
        for i, (value, actual, probability, row_features, source)
        in enumerate(zip(values, actuals, probabilities, features, feedback_sources,
                         strict=True))
    ])


def register_deployed_classifier(
    *, user, reviewer, deployer, name: str = "lead-scoring", schema: dict | None = None,
    metrics: dict | None = None, traffic: int | None = None, shadow: bool = False,
) -> MLModelVersion:
    """A deployed binary classifier (classes 0 and 1) through the real services."""
    from sklearn.linear_model import LogisticRegression

    features = numpy.arange(40, dtype=float).reshape(20, 2)
    estimator = LogisticRegression().fit(features, (features[:, 0] > 20).astype(int))
    version = registration.model_version_register(
        name=name, task="binary_classification", user=user, estimator=estimator,
        feature_schema=schema or SCHEMA, training_dataset_sha256="0" * 64, training_samples=20,
        training_duration_seconds=0.01, hyperparameters={},
        metrics=metrics or {"accuracy": 0.9, "f1": 0.9, "roc_auc": 0.9, "brier": 0.1},
        reference_profile={"features": {}},
    )
    version = services.model_version_approve(version=version, user=reviewer, notes="approved")
    return services.model_version_deploy(version=version, user=deployer, traffic=traffic,
                                         shadow=shadow, notes="deployed in test")
