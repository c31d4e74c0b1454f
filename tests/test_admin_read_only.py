"""Records only services write are read-only in the admin, even for a superuser."""

import pytest
from django.contrib.auth import get_user_model


@pytest.mark.parametrize("path", [
    "/admin/mlregistry/mlmodelversion/add/",
    "/admin/mlregistry/modeltransition/add/",
    "/admin/training/trainingjob/add/",
    "/admin/predictions/predictionlog/add/",
    "/admin/monitoring/driftreport/add/",
    "/admin/monitoring/performancereport/add/",
    "/admin/monitoring/sloreport/add/",
    "/admin/monitoring/fairnessreport/add/",
    "/admin/monitoring/abevaluation/add/",
    "/admin/monitoring/estimatedperformancereport/add/",
    "/admin/monitoring/shadowevaluation/add/",
    "/admin/monitoring/canarycheck/add/",
])
def test_admin_refuses_to_add_service_written_records(client, db, path):
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "pw"))

    assert client.get(path).status_code == 403


def test_admin_shows_a_version_without_a_save_button(client, testing_version):
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "pw"))

    page = client.get(f"/admin/mlregistry/mlmodelversion/{testing_version.pk}/change/")

    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert b"validated" in page.content  # the transition history inline


@pytest.mark.parametrize("path", [
    "/admin/monitoring/driftreport/",
    "/admin/monitoring/performancereport/",
    "/admin/monitoring/sloreport/",
    "/admin/monitoring/fairnessreport/",
    "/admin/monitoring/abevaluation/",
])
def test_admin_lists_monitoring_reports(client, db, path):
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "pw"))

    assert client.get(path).status_code == 200
