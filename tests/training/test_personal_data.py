"""A recipe's personal feature (`Feature(..., pii=True)`, docs/registry.md#personal-data):
the trained version keeps none of its values."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from mlregistry.model_card import model_card_build, model_card_markdown
from mlregistry.models import MLModelVersion
from tests.training.conftest import tiny_frame

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
