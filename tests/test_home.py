"""The site's front door: `/` (the start banner's first address, the admin's "view site"
link) and the admin's own name."""

import pytest
from django.urls import reverse


@pytest.mark.django_db
def test_the_root_page_links_the_admin_the_dashboard_and_the_api_docs(client):
    response = client.get("/")

    assert response.status_code == 200
    page = response.content.decode()
    for name in ("admin:index", "monitoring_dashboard:index", "docs", "schema", "health",
                 "ready"):
        assert f'href="{reverse(name)}"' in page


@pytest.mark.django_db
def test_the_admin_is_titled_pulselytics(client):
    page = client.get(reverse("admin:login")).content.decode()

    assert "<title>Log in | Pulselytics</title>" in page
    assert "Django administration" not in page
