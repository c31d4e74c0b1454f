"""The training tables, taken over from the registry app (training migration 0001).

The rows stay where they were (same table names), and the permissions the groups held on
them move with their content types.
"""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from training.models import TrainingDataset, TrainingJob

pytestmark = pytest.mark.django_db


def test_the_tables_keep_the_names_the_registry_gave_them():
    assert TrainingDataset._meta.db_table == "mlregistry_trainingdataset"
    assert TrainingJob._meta.db_table == "mlregistry_trainingjob"
    assert {"mlregistry_trainingdataset", "mlregistry_trainingjob"} <= set(
        connection.introspection.table_names())


def test_their_content_types_belong_to_training_only():
    labels = set(ContentType.objects.filter(model__in=["trainingdataset", "trainingjob"])
                 .values_list("app_label", "model"))

    assert labels == {("training", "trainingdataset"), ("training", "trainingjob")}


def test_data_scientists_still_queue_jobs_and_add_datasets(data_scientist):
    assert data_scientist.has_perm("training.add_trainingjob")
    assert data_scientist.has_perm("training.add_trainingdataset")


def test_reviewers_and_deployers_still_see_jobs_and_datasets(reviewer, deployer):
    for user in (reviewer, deployer):
        assert user.has_perm("training.view_trainingjob")
        assert user.has_perm("training.view_trainingdataset")
        assert not user.has_perm("training.add_trainingjob")


def test_a_data_scientist_opens_the_training_jobs_in_the_admin(client, data_scientist):
    client.force_login(data_scientist)

    page = client.get("/admin/training/trainingjob/")

    assert page.status_code == 200
