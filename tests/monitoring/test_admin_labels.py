"""Labels the admin shows for the monitoring tables."""

import pytest
from django.urls import reverse


@pytest.mark.django_db
def test_the_admin_index_says_slo_reports(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()

    assert ">SLO reports<" in page
    assert "Slo reports" not in page
