"""handler403 (core.api.json_permission_denied): a refused admin action renders the
admin's frame with the reason; under /api/ the error envelope."""

import json

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

from core.api import json_permission_denied
from tests.factories import UserFactory, register_version, registry_state

pytestmark = pytest.mark.django_db


def test_a_forced_action_shows_the_reason_in_the_admin_frame(data_scientist):
    version = register_version(user=UserFactory(username="dora", groups=["Data scientists"]))
    client = Client()
    client.force_login(data_scientist)
    change_url = reverse("admin:mlregistry_mlmodelversion_change", args=[version.pk])
    before = registry_state(version.model_id)

    response = client.post(reverse("admin:mlregistry_mlmodelversion_approve", args=[version.pk]),
                           {"notes": "looks fine"}, HTTP_REFERER=f"http://testserver{change_url}")

    assert response.status_code == 403
    page = response.content.decode()
    assert '<div id="site-name"><a href="/admin/">Pulselytics</a></div>' in page
    assert 'id="permission-denied-reason">' in page
    reason = page.split('id="permission-denied-reason">', 1)[1].split("</p>", 1)[0]
    assert reason == ("dana may not approve model versions "
                      "(needs mlregistry.approve_mlmodelversion)")
    assert f'href="http://testserver{change_url}">Back</a>' in page
    assert registry_state(version.model_id) == before


def test_a_back_link_to_another_site_is_replaced_by_the_admin_index(data_scientist):
    version = register_version(user=UserFactory(username="dora", groups=["Data scientists"]))
    client = Client()
    client.force_login(data_scientist)

    response = client.post(reverse("admin:mlregistry_mlmodelversion_approve", args=[version.pk]),
                           {"notes": "x"}, HTTP_REFERER="https://evil.example/phish")

    assert response.status_code == 403
    assert 'href="/admin/">Back</a>' in response.content.decode()


def test_under_the_api_the_refusal_is_the_error_envelope(rf):
    request = rf.get("/api/v1/anything")

    response = json_permission_denied(request, PermissionDenied("needs the read scope"))

    assert response.status_code == 403
    assert json.loads(response.content)["error"]["code"] == "permission_denied"
    assert json.loads(response.content)["error"]["message"] == "needs the read scope"
