"""Safe model files (docs/registry.md#safe-model-files): estimators are skops files, and
only trusted types are ever created from one.

The attacks: a model file carrying a type outside the trusted set (a Tripwire, which
leaves a directory behind when it is loaded) is neither loadable nor approvable until a
reviewer trusts it; hiding the type from the manifest does not help, because loading
reads the types from the file itself; a pickle with a side effect given to
`register_model` is refused without being loaded.
"""

import io

import joblib
import pytest
import skops.io
from django.core.management import CommandError, call_command
from django.test import Client
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from core.errors import ArtifactNotTrustedError, FourEyesError, PermissionDeniedError
from core.errors import ValidationError as ApplicationValidationError
from mlregistry import artifacts, registration, selectors, services
from mlregistry.model_card import model_card_build, model_card_markdown
from mlregistry.models import MLModel, MLModelVersion, ModelTransition, Status
from tests.factories import (
    SCHEMA,
    TRIPWIRE_TYPE,
    Tripwire,
    grant_permissions,
    identity_features,
    tiny_estimator,
)

MODEL = "tripwire-likes"


def register(*, user, estimator, name=MODEL) -> MLModelVersion:
    return registration.model_version_register(
        name=name, task="regression", user=user, estimator=estimator, feature_schema=SCHEMA,
        training_dataset_sha256="0" * 64, training_samples=10, training_duration_seconds=0.01,
        hyperparameters={}, metrics={"r2": 0.9}, reference_profile={"features": {}})


@pytest.fixture
def untrusted(data_scientist, tripwire) -> MLModelVersion:
    """A candidate whose model file holds the Tripwire type, not yet trusted."""
    return register(user=data_scientist, estimator=Tripwire(tripwire))


def load(version: MLModelVersion) -> artifacts.LoadedBundle:
    version.refresh_from_db()
    return artifacts.bundle_load(manifest=version.artifact_manifest,
                                 model_sha256=version.model_sha256)


def trust(version, reviewer, types=(TRIPWIRE_TYPE,)) -> MLModelVersion:
    return services.model_version_types_trust(version=version, user=reviewer, types=list(types),
                                              reason="reviewed tests/factories.py")


def test_a_registered_estimator_is_stored_as_a_skops_file_listing_its_types(testing_version):
    entry = next(e for e in testing_version.artifact_manifest["artifacts"]
                 if e["name"] == "estimator")
    with artifacts.artifact_storage().open(entry["path"], "rb") as handle:
        data = handle.read()

    assert entry["format"] == "skops"
    assert data[:4] == b"PK\x03\x04"  # a zip archive, not a pickle stream
    assert all(artifacts.type_trusted_by_policy(name) for name in entry["types"])
    assert artifacts.types_needing_review(testing_version.artifact_manifest) == []


def test_a_type_outside_the_trusted_set_is_listed_for_review(untrusted):
    assert artifacts.types_needing_review(untrusted.artifact_manifest) == [TRIPWIRE_TYPE]


def test_a_type_no_one_trusted_is_not_loaded(untrusted, tripwire, deserializations):
    with pytest.raises(artifacts.UntrustedTypesError, match=TRIPWIRE_TYPE):
        load(untrusted)

    assert not tripwire.exists()
    assert deserializations == []


def test_a_version_holding_an_untrusted_type_cannot_be_approved(untrusted, reviewer):
    with pytest.raises(ArtifactNotTrustedError, match=TRIPWIRE_TYPE):
        services.model_version_approve(version=untrusted, user=reviewer, notes="looks fine")

    untrusted.refresh_from_db()
    assert untrusted.status == Status.TESTING
    assert not ModelTransition.objects.filter(version=untrusted, reason="approved").exists()


def test_a_reviewer_trusting_the_type_makes_it_approvable_and_loadable(untrusted, reviewer,
                                                                       tripwire):
    trusted = trust(untrusted, reviewer)
    approved = services.model_version_approve(version=trusted, user=reviewer, notes="ok")

    load(approved)

    assert approved.status == Status.STAGING
    assert tripwire.is_dir()  # the control: a trusted Tripwire is created when loaded


def test_trusting_a_type_writes_one_sealed_row_binding_the_new_manifest(untrusted, reviewer):
    before = untrusted.model_sha256

    trusted = trust(untrusted, reviewer)

    row = ModelTransition.objects.filter(version=trusted).latest("sequence")
    assert (row.reason, row.actor, row.model_sha256) == (
        "types_trusted", reviewer, trusted.model_sha256)
    assert TRIPWIRE_TYPE in row.notes and "reviewed tests/factories.py" in row.notes
    assert trusted.model_sha256 != before
    assert trusted.artifact_manifest["trusted_types"] == [TRIPWIRE_TYPE]
    assert selectors.audit_verify_model(model=trusted.model).ok
    selectors.sealed_artifact_check(version_id=trusted.pk, model_sha256=trusted.model_sha256)


def test_the_creator_may_not_trust_the_types_of_their_own_version(untrusted, data_scientist):
    with pytest.raises(PermissionDeniedError):
        trust(untrusted, data_scientist)


def test_a_reviewer_may_not_trust_the_types_of_a_version_they_registered(reviewer, tripwire):
    reviewer = grant_permissions(reviewer, "add_mlmodelversion")  # a combined role
    own = register(user=reviewer, estimator=Tripwire(tripwire))

    with pytest.raises(FourEyesError):
        trust(own, reviewer)


@pytest.mark.parametrize("types", [[], ["builtins.eval"]], ids=["none", "not-awaiting"])
def test_trusting_types_that_do_not_await_trust_is_refused_and_changes_nothing(
        untrusted, reviewer, types):
    rows = ModelTransition.objects.count()

    with pytest.raises(ApplicationValidationError):
        trust(untrusted, reviewer, types=types)

    untrusted_again = MLModelVersion.objects.get(pk=untrusted.pk)
    assert untrusted_again.model_sha256 == untrusted.model_sha256
    assert ModelTransition.objects.count() == rows


def test_hiding_the_type_from_the_manifest_does_not_get_it_loaded(untrusted, tripwire,
                                                                  deserializations):
    # Someone rewrites the manifest so it no longer lists the Tripwire and re-hashes it:
    # loading reads the types from the file itself.
    manifest = untrusted.artifact_manifest
    for entry in manifest["artifacts"]:
        entry.pop("types", None)

    with pytest.raises(artifacts.UntrustedTypesError, match=TRIPWIRE_TYPE):
        artifacts.bundle_load(manifest=manifest,
                              model_sha256=artifacts.manifest_sha256(manifest))

    assert not tripwire.exists()
    assert deserializations == []


def test_a_reviewer_trust_written_into_the_row_by_hand_is_caught_before_loading(
        untrusted, tripwire, deserializations):
    manifest = {**untrusted.artifact_manifest, "trusted_types": [TRIPWIRE_TYPE]}
    MLModelVersion.objects.filter(pk=untrusted.pk).update(
        artifact_manifest=manifest, model_sha256=artifacts.manifest_sha256(manifest))

    with pytest.raises(artifacts.ArtifactIntegrityError):
        selectors.sealed_artifact_check(version_id=untrusted.pk,
                                        model_sha256=artifacts.manifest_sha256(manifest))
    assert not selectors.audit_verify_model(model=untrusted.model).ok
    assert not tripwire.exists()


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_evidence_page_lists_the_untrusted_type(untrusted, reviewer):
    page = logged_in(reviewer).get(
        f"/admin/mlregistry/mlmodelversion/{untrusted.pk}/change/")

    html = page.content.decode()
    assert f'data-type="{TRIPWIRE_TYPE}"' in html
    assert "awaiting a reviewer" in html
    assert 'id="action-trust-types"' in html
    assert 'id="action-approve"' not in html


def test_the_model_card_lists_the_type_and_what_trusts_it(untrusted, reviewer):
    card = model_card_markdown(model_card_build(version=untrusted))
    assert "## Model file" in card
    assert "AWAITING A REVIEWER" in card

    card = model_card_markdown(model_card_build(version=trust(untrusted, reviewer)))
    assert "trusted by a reviewer" in card
    assert "AWAITING A REVIEWER" not in card


def test_trust_types_from_the_admin_records_the_reviewer(untrusted, reviewer):
    response = logged_in(reviewer).post(
        f"/admin/mlregistry/mlmodelversion/{untrusted.pk}/trust-types/",
        {"types": [TRIPWIRE_TYPE], "reason": "read its source"})

    assert response.status_code == 302
    row = ModelTransition.objects.filter(version=untrusted).latest("sequence")
    assert (row.reason, row.actor) == ("types_trusted", reviewer)


def test_trust_types_command_records_the_reviewer(untrusted, reviewer):
    call_command("trust_types", MODEL, untrusted.version, TRIPWIRE_TYPE, "--user", "rita",
                 "--reason", "read its source", stdout=io.StringIO())

    untrusted.refresh_from_db()
    assert artifacts.types_needing_review(untrusted.artifact_manifest) == []
    row = ModelTransition.objects.filter(version=untrusted).latest("sequence")
    assert (row.reason, row.actor.username, row.os_user != "") == ("types_trusted", "rita", True)


# --- register_model -----------------------------------------------------------------------


@pytest.fixture
def leads_csv(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("followers,hashtags,likes\n" + "".join(
        f"{i},{i % 3},{2 * i + i % 3}\n" for i in range(40)))
    return path


def register_model(artifact, data, *extra) -> str:
    out = io.StringIO()
    call_command("register_model", "outside-likes", "--artifact", str(artifact), "--data",
                 str(data), "--target", "likes", "--task", "regression", "--user", "dana",
                 *extra, stdout=out)
    return out.getvalue()


def test_register_model_refuses_a_pickle_without_loading_it(data_scientist, leads_csv,
                                                            tmp_path, tripwire):
    pickled = tmp_path / "model.joblib"
    joblib.dump(Tripwire(tripwire), pickled)

    with pytest.raises(CommandError, match="--trust-pickle"):
        register_model(pickled, leads_csv)

    assert not tripwire.exists()
    assert not MLModel.objects.exists()


def test_register_model_refuses_a_pickle_named_like_a_skops_file(data_scientist, leads_csv,
                                                                 tmp_path, tripwire):
    disguised = tmp_path / "model.skops"
    joblib.dump(Tripwire(tripwire), disguised)

    with pytest.raises(CommandError, match="not a skops file"):
        register_model(disguised, leads_csv)

    assert not tripwire.exists()


def test_register_model_converts_a_trusted_pickle_and_says_so_in_the_chain(
        data_scientist, leads_csv, tmp_path):
    pickled = tmp_path / "model.joblib"
    joblib.dump(tiny_estimator(), pickled)

    register_model(pickled, leads_csv, "--trust-pickle")

    version = MLModelVersion.objects.get(model__name="outside-likes")
    formats = {e["name"]: e["format"] for e in version.artifact_manifest["artifacts"]}
    assert formats["estimator"] == "skops"
    registered = ModelTransition.objects.get(version=version, reason="registered")
    assert "--trust-pickle" in registered.notes
    assert artifacts.sha256_file(pickled) in registered.notes


def test_register_model_takes_a_skops_file_and_lists_its_untrusted_types(
        data_scientist, leads_csv, tmp_path):
    # A pipeline with a custom step: the function is listed, not trusted.
    model = make_pipeline(FunctionTransformer(identity_features), tiny_estimator())
    path = tmp_path / "model.skops"
    skops.io.dump(model, path)

    output = register_model(path, leads_csv)

    version = MLModelVersion.objects.get(model__name="outside-likes")
    expected = f"{identity_features.__module__}.identity_features"
    assert artifacts.types_needing_review(version.artifact_manifest) == [expected]
    assert f"awaiting a reviewer's trust before approval: {expected}" in output
