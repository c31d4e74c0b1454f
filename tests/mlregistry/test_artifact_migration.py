"""Versions registered before skops hold pickles: they keep loading after verification, cannot
be approved, and `migrate_artifacts` converts them (docs/registry.md#safe-model-files)."""

import io

import numpy
import pytest
from django.core.management import CommandError, call_command
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from core.errors import ArtifactNotTrustedError
from mlregistry import artifacts, registration, selectors, services
from mlregistry.models import MLModelVersion, ModelTransition, Status
from tests.factories import (
    SCHEMA,
    NoisyRegressor,
    approve_as_before_skops,
    artifact_tamper,
    identity_features,
    pickled_bundle,
    register_tripwire_version,
    tiny_estimator,
)

MODEL = "engagement-likes"
PROFILE = {"seed": 0, "rows": 50, "features": {
    "followers": {"kind": "numeric", "n": 50, "missing": 0,
                  "sample": [float(i * 7 % 50) for i in range(50)]},
    "hashtags": {"kind": "numeric", "n": 50, "missing": 0,
                 "sample": [float(i % 5) for i in range(50)]},
}}


def register_pickled(*, user, estimator, name=MODEL) -> MLModelVersion:
    return registration.model_version_register(
        name=name, task="regression", user=user, estimator=estimator, feature_schema=SCHEMA,
        training_dataset_sha256="0" * 64, training_samples=10, training_duration_seconds=0.01,
        hyperparameters={}, metrics={"r2": 0.9}, reference_profile=PROFILE,
        bundle=pickled_bundle(estimator=estimator, reference_profile=PROFILE))


def load(version: MLModelVersion) -> artifacts.LoadedBundle:
    version.refresh_from_db()
    return artifacts.bundle_load(manifest=version.artifact_manifest,
                                 model_sha256=version.model_sha256)


def migrate(*extra) -> str:
    out = io.StringIO()
    call_command("migrate_artifacts", *extra, stdout=out)
    return out.getvalue()


def estimator_format(version: MLModelVersion) -> str:
    version.refresh_from_db()
    return next(e["format"] for e in version.artifact_manifest["artifacts"]
                if e["name"] == "estimator")


@pytest.fixture
def pickled(data_scientist) -> MLModelVersion:
    return register_pickled(user=data_scientist, estimator=tiny_estimator())


@pytest.fixture
def pickled_champion(people) -> MLModelVersion:
    """A pickled version approved and deployed, as an upgrade finds it."""
    version = register_pickled(user=people["user"], estimator=tiny_estimator())
    approve_as_before_skops(version, people["reviewer"])
    return services.model_version_deploy(version=version, user=people["deployer"], notes="go")


def test_a_pickled_version_still_loads_after_verification(pickled, deserializations):
    bundle = load(pickled)

    assert deserializations == ["load"]  # joblib
    assert numpy.array_equal(bundle.estimator.predict([[1.0, 2.0]]),
                             tiny_estimator().predict([[1.0, 2.0]]))


def test_a_tampered_pickle_is_not_loaded(data_scientist, reviewer, tripwire, deserializations):
    version = register_tripwire_version(user=data_scientist, reviewer=reviewer, path=tripwire,
                                        pickled=True)
    artifact_tamper(version)

    with pytest.raises(artifacts.ArtifactIntegrityError):
        load(version)

    assert not tripwire.exists()
    assert deserializations == []


def test_a_pickled_candidate_cannot_be_approved(pickled, reviewer):
    with pytest.raises(ArtifactNotTrustedError, match="migrate_artifacts"):
        services.model_version_approve(version=pickled, user=reviewer, notes="fine")

    pickled.refresh_from_db()
    assert pickled.status == Status.TESTING


def test_migrate_artifacts_converts_to_skops_with_one_sealed_row(pickled):
    before = pickled.model_sha256

    output = migrate()

    pickled.refresh_from_db()
    assert estimator_format(pickled) == "skops"
    row = ModelTransition.objects.filter(version=pickled).latest("sequence")
    assert (row.reason, row.actor.username) == ("artifact_migrated", "pulselytics-system")
    assert row.model_sha256 == pickled.model_sha256 != before
    assert before in row.notes and pickled.model_sha256 in row.notes
    assert row.os_user  # a command: the OS user and host are recorded
    assert f"converted {MODEL} 1.0.0: identical answers on 50 rows" in output
    assert selectors.audit_verify_model(model=pickled.model).ok


def test_a_converted_version_answers_exactly_as_its_pickle(pickled, deserializations):
    migrate()
    deserializations.clear()  # the conversion itself loaded both
    features = numpy.array([[1.0, 2.0], [30.0, 4.0]])

    bundle = load(pickled)

    assert deserializations == ["loads"]  # skops only
    assert numpy.array_equal(bundle.estimator.predict(features),
                             tiny_estimator().predict(features))


def test_a_converted_candidate_can_be_approved(pickled, reviewer):
    migrate()

    approved = services.model_version_approve(version=pickled, user=reviewer, notes="fine")

    assert approved.status == Status.STAGING


def test_a_converted_champion_keeps_its_sealed_approval(pickled_champion):
    migrate()

    pickled_champion.refresh_from_db()
    selectors.sealed_artifact_check(version_id=pickled_champion.pk,
                                    model_sha256=pickled_champion.model_sha256, approved=True)
    assert selectors.audit_verify_model(model=pickled_champion.model).ok


def test_an_approved_pickle_carries_its_custom_types_trusted(people):
    estimator = make_pipeline(FunctionTransformer(identity_features), tiny_estimator())
    approve_as_before_skops(register_pickled(user=people["user"], estimator=estimator),
                          people["reviewer"])
    version = MLModelVersion.objects.get(model__name=MODEL)
    custom = f"{identity_features.__module__}.identity_features"

    migrate()

    version.refresh_from_db()
    assert version.artifact_manifest["trusted_types"] == [custom]
    assert custom in ModelTransition.objects.filter(version=version).latest("sequence").notes
    load(version)


def test_a_candidate_pickle_leaves_its_custom_types_to_a_reviewer(people):
    estimator = make_pipeline(FunctionTransformer(identity_features), tiny_estimator())
    version = register_pickled(user=people["user"], estimator=estimator)

    migrate()

    version.refresh_from_db()
    assert artifacts.types_needing_review(version.artifact_manifest) == [
        f"{identity_features.__module__}.identity_features"]


def test_a_conversion_that_answers_differently_is_refused_and_changes_nothing(data_scientist):
    version = register_pickled(user=data_scientist, estimator=NoisyRegressor())
    rows = ModelTransition.objects.count()

    with pytest.raises(CommandError, match="artifact_migration_failed"):
        migrate()

    assert estimator_format(version) == "joblib"
    assert ModelTransition.objects.count() == rows


def test_a_dry_run_converts_nothing(pickled):
    before = pickled.model_sha256

    output = migrate("--dry-run")

    pickled.refresh_from_db()
    assert pickled.model_sha256 == before
    assert estimator_format(pickled) == "joblib"
    assert "would convert engagement-likes 1.0.0" in output


def test_a_tampered_pickle_is_not_converted(data_scientist, reviewer, tripwire):
    version = register_tripwire_version(user=data_scientist, reviewer=reviewer, path=tripwire,
                                        pickled=True)
    artifact_tamper(version)

    with pytest.raises(CommandError, match="model_integrity_error"):
        migrate()

    assert not tripwire.exists()
    assert estimator_format(version) == "joblib"


def test_migrate_artifacts_skips_versions_already_in_skops(testing_version):
    assert migrate().strip() == "converted 0 version(s)"
