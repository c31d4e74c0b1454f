"""A model's identity (name, task, client, global model) is fixed at registration: nobody
re-tenants or re-tasks a model in the admin, and names are checked."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from core.errors import PermissionDeniedError, ValidationError
from mlregistry import services
from mlregistry.models import MLModel, ModelTransition
from tests.factories import register_version

pytestmark = pytest.mark.django_db


def identity(model: MLModel) -> tuple:
    model.refresh_from_db()
    return model.name, model.task, model.client_id, model.global_model_id, model.description


@pytest.fixture
def model(data_scientist) -> MLModel:
    return register_version(user=data_scientist).model


def test_data_scientists_hold_no_permission_to_add_or_change_models(data_scientist):
    assert not data_scientist.has_perm("mlregistry.change_mlmodel")
    assert not data_scientist.has_perm("mlregistry.add_mlmodel")
    assert data_scientist.has_perm("mlregistry.view_mlmodel")


@pytest.mark.parametrize("who", ["data_scientist", "reviewer", "deployer"])
def test_nobody_changes_a_models_identity_in_the_admin(request, model, who):
    client = Client()
    client.force_login(request.getfixturevalue(who))
    before = identity(model)
    change_url = reverse("admin:mlregistry_mlmodel_change", args=[model.pk])

    page = client.get(change_url)
    forged = client.post(change_url, {"name": "engagement-likes--globex", "task": "regression",
                                      "client_id": "globex", "description": "mine now"})
    added = client.post(reverse("admin:mlregistry_mlmodel_add"),
                        {"name": "shadow-model", "task": "regression"})

    assert page.status_code == 200
    assert b'name="client_id"' not in page.content and b'name="name"' not in page.content
    assert forged.status_code == 403 and added.status_code == 403
    assert identity(model) == before
    assert not MLModel.objects.filter(name="shadow-model").exists()


@pytest.mark.parametrize("name", ["../../evil\nBcc: x", "Engagement", "under_score", "-leading",
                                  "a" * 64, ""])
def test_registration_refuses_a_name_outside_the_pattern(data_scientist, name):
    with pytest.raises(ValidationError, match="invalid model name") as refused:
        register_version(user=data_scientist, name=name)

    assert refused.value.details == {"field": "name"}
    assert not MLModel.objects.exists()


def test_registration_accepts_the_names_the_platform_makes(data_scientist):
    version = register_version(user=data_scientist, name="engagement-likes--acme-outdoor")

    assert version.model.name == "engagement-likes--acme-outdoor"


def test_register_model_command_refuses_a_bad_name_before_loading_anything(
        data_scientist, tmp_path):
    artifact = tmp_path / "model.joblib"
    artifact.write_bytes(b"not a model file: loading it first would fail differently")
    data = tmp_path / "data.csv"
    data.write_text("a,b,y\n1,2,3\n")

    with pytest.raises(CommandError, match=r"^validation_error: invalid model name"):
        call_command("register_model", "../evil", "--artifact", str(artifact), "--data",
                     str(data), "--target", "y", "--task", "regression", "--user", "dana")

    assert not MLModel.objects.exists()


def verify_audit() -> str:
    out = StringIO()
    call_command("verify_audit", "engagement-likes", stdout=out)
    return out.getvalue()


def test_describing_a_model_writes_one_sealed_row_about_the_model(model, data_scientist):
    rows = ModelTransition.objects.filter(model=model).count()

    call_command("describe_model", model.name, "--user", "dana", "--description",
                 "Likes a post will get, for campaign planning.", stdout=StringIO())

    model.refresh_from_db()
    row = ModelTransition.objects.filter(model=model).order_by("-sequence").first()
    assert model.description == "Likes a post will get, for campaign planning."
    assert ModelTransition.objects.filter(model=model).count() == rows + 1
    assert (row.version, row.reason, row.notes) == (
        None, "described", "Likes a post will get, for campaign planning.")
    assert row.seal_valid
    assert "engagement-likes: OK" in verify_audit()


def test_a_deployer_may_not_describe_a_model(model, deployer):
    before = identity(model)

    with pytest.raises(PermissionDeniedError):
        services.model_describe(model=model, user=deployer, description="mine")

    assert identity(model) == before


@pytest.mark.parametrize("change", [{"client_id": "globex"}, {"description": "quietly edited"},
                                    {"task": "binary_classification"}])
def test_a_model_changed_outside_the_registry_fails_verification(model, change):
    MLModel.objects.filter(pk=model.pk).update(**change)

    with pytest.raises(CommandError, match="the model's name, task, client, global model or "
                                           "description differs"):
        verify_audit()


def describe_url(model: MLModel) -> str:
    return reverse("admin:mlregistry_mlmodel_describe", args=[model.pk])


def test_a_data_scientist_changes_the_description_in_the_admin(model, data_scientist):
    client = Client()
    client.force_login(data_scientist)

    page = client.get(reverse("admin:mlregistry_mlmodel_change", args=[model.pk]))
    response = client.post(describe_url(model), {"description": "Expected likes of a post."})

    assert b'id="describe-model"' in page.content
    assert response.status_code == 302
    model.refresh_from_db()
    assert model.description == "Expected likes of a post."
    row = ModelTransition.objects.filter(model=model).order_by("-sequence").first()
    assert (row.reason, row.actor, row.version) == ("described", data_scientist, None)


def test_a_reviewer_is_not_offered_the_description_and_may_not_force_it(model, reviewer):
    client = Client()
    client.force_login(reviewer)
    before = identity(model)

    page = client.get(reverse("admin:mlregistry_mlmodel_change", args=[model.pk]))
    forced = client.post(describe_url(model), {"description": "mine"})

    assert b'id="describe-model"' not in page.content
    assert forced.status_code == 403
    assert identity(model) == before
