"""The admin index's work lists: versions awaiting review (reviewers) and live tests
(deployers), each only for those who may act on it."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mlregistry.models import MLModelVersion
from tests.factories import UserFactory, register_deployed_version, register_version

pytestmark = pytest.mark.django_db


def index(user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return response.content.decode()


def block(page: str, block_id: str) -> str:
    return page.split(f'id="{block_id}"', 1)[1].split("</table>", 1)[0]


def test_a_reviewer_sees_the_versions_awaiting_review_oldest_first_with_their_gates(reviewer):
    author = UserFactory(username="dora", groups=["Data scientists"])
    newer = register_version(user=author, name="leads")
    older = register_version(user=author, name="churn")
    MLModelVersion.objects.filter(pk=older.pk).update(
        created_at=timezone.now() - timedelta(days=2))
    MLModelVersion.objects.filter(pk=newer.pk).update(gate_results={
        "fairness": {"passed": False, "reason": "gender parity ratio 0.61 is below 0.8"}})

    awaiting = block(index(reviewer), "awaiting-review")

    assert awaiting.index("churn 1.0.0") < awaiting.index("leads 1.0.0")
    newer_url = reverse("admin:mlregistry_mlmodelversion_change", args=[newer.pk])
    assert f'href="{newer_url}"' in awaiting
    assert "by dora" in awaiting
    assert ('<span class="badge gate-failed" title="gender parity ratio 0.61 is below 0.8">'
            "fairness: failed</span>") in awaiting


def test_a_deployer_sees_the_live_tests_and_not_the_review_queue(people, deployer):
    register_deployed_version(**people, name="leads")
    register_deployed_version(**people, name="leads", slope=3.0, traffic=20)
    register_deployed_version(**people, name="leads", slope=4.0, shadow=True)
    register_version(user=people["user"], name="churn")

    page = index(deployer)

    live = block(page, "live-tests")
    assert "leads 1.1.0" in live and "20 % of traffic" in live
    assert "leads 1.2.0" in live and "shadow" in live
    assert "leads 1.0.0" not in live  # the champion is not a test
    assert 'id="awaiting-review"' not in page


def test_a_data_scientist_sees_neither_work_list(data_scientist):
    register_version(user=UserFactory(username="dora", groups=["Data scientists"]))

    page = index(data_scientist)

    assert 'id="awaiting-review"' not in page
    assert 'id="live-tests"' not in page
