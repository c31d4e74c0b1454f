"""A recipe's personal feature (`Feature(..., pii=True)`, docs/registry.md#personal-data):
the trained version keeps none of its values."""

import json
import logging
from io import StringIO

import pytest
from django.core.management import call_command

from mlregistry.model_card import model_card_build, model_card_markdown
from mlregistry.models import MLModelVersion
from tests.training.conftest import tiny_frame
from training import services as training_services
from training.models import TrainingJob

DOMAIN = "@personal.test"


@pytest.fixture
def contact_version(settings, tmp_path, data_scientist):
    settings.PULSELYTICS_RECIPES = [*settings.PULSELYTICS_RECIPES, "tests.recipes.ContactLikes"]
    frame = tiny_frame()
    frame["email"] = [f"author{i % 15}{DOMAIN}" for i in range(len(frame))]
    data = tmp_path / "contacts.csv"
    frame.to_csv(data, index=False)
    call_command("train_model", "contact-likes", "--data", str(data), "--user", "dana",
                 stdout=StringIO(), stderr=StringIO())
    return MLModelVersion.objects.get(model__name="contact-likes")


def test_a_version_trained_on_a_personal_feature_stores_none_of_its_values(contact_version):
    stored = MLModelVersion.objects.filter(pk=contact_version.pk).values(
        "feature_schema", "reference_profile", "metrics", "hyperparameters", "fairness_report",
        "gate_results", "training_report", "global_importance").get()
    card = model_card_markdown(model_card_build(version=contact_version))

    assert "email" not in contact_version.reference_profile["features"]
    assert DOMAIN not in json.dumps(stored)
    assert DOMAIN not in card


def test_a_failed_training_job_of_a_personal_recipe_quotes_no_value(
        settings, tmp_path, data_scientist, caplog, django_capture_on_commit_callbacks):
    settings.PULSELYTICS_RECIPES = [*settings.PULSELYTICS_RECIPES,
                                    "tests.recipes.StrictContactLikes"]
    frame = tiny_frame()
    frame["email"] = [f"author{i % 15}{DOMAIN}" for i in range(len(frame))]
    data = tmp_path / "contacts.csv"
    frame.to_csv(data, index=False)
    dataset = training_services.dataset_register(model_name="strict-contact-likes", path=data,
                                                 user=data_scientist)
    with django_capture_on_commit_callbacks(execute=False):
        job = training_services.training_job_create(recipe_name="strict-contact-likes",
                                                    user=data_scientist, dataset=dataset)

    with caplog.at_level(logging.DEBUG):
        job = training_services.training_job_run(job_id=job.pk)

    assert job.state == TrainingJob.State.FAILED
    assert job.error.startswith("ValueError (message withheld")
    assert DOMAIN not in caplog.text
    assert any(record.getMessage() == f"training job {job.pk} failed"
               for record in caplog.records)
