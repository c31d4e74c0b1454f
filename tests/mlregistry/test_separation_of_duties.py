"""Separation of duties (docs/registry.md#four-eyes): under REQUIRE_SEPARATE_DEPLOYER the
approver of a version does not put it live; a version that went live is not rejected."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from core.errors import FourEyesError, IllegalTransitionError
from mlregistry import preconditions, services
from mlregistry.models import MLModelVersion, Status
from tests.factories import (
    register_approved_version,
    register_deployed_version,
    register_version,
    registry_state,
)

pytestmark = pytest.mark.django_db

PUT_LIVE = {
    "deploy": {},
    "ab-test": {"traffic": 20},
    "shadow-test": {"shadow": True},
}


@pytest.fixture
def approved_by_rex(people, champion, approver_and_deployer):
    """A staging version rex approved, beside a champion (so that tests can start)."""
    version = register_version(user=people["user"], slope=3.0)
    return services.model_version_approve(version=version, user=approver_and_deployer,
                                          notes="checked")


def fresh(version: MLModelVersion) -> MLModelVersion:
    return MLModelVersion.objects.get(pk=version.pk)


@pytest.mark.parametrize("how", sorted(PUT_LIVE))
def test_approver_may_not_put_their_version_live_with_separation_on(
        settings, approved_by_rex, approver_and_deployer, how):
    settings.REQUIRE_SEPARATE_DEPLOYER = True
    before = registry_state(approved_by_rex.model_id)

    with pytest.raises(FourEyesError, match=r"rex approved .* \(separation of duties") as refused:
        services.model_version_deploy(version=approved_by_rex, user=approver_and_deployer,
                                      **PUT_LIVE[how])

    assert refused.value.code == "separation_of_duties"
    assert refused.value.details == {"setting": "REQUIRE_SEPARATE_DEPLOYER"}
    assert registry_state(approved_by_rex.model_id) == before


@pytest.mark.parametrize("how", sorted(PUT_LIVE))
def test_approver_may_put_their_version_live_with_separation_off(
        settings, approved_by_rex, approver_and_deployer, how):
    settings.REQUIRE_SEPARATE_DEPLOYER = False

    version = services.model_version_deploy(version=approved_by_rex, user=approver_and_deployer,
                                            **PUT_LIVE[how])

    stored = fresh(version)
    assert (stored.status, stored.traffic_percentage, stored.is_shadow) == {
        "deploy": (Status.PRODUCTION, 100, False), "ab-test": (Status.STAGING, 20, False),
        "shadow-test": (Status.STAGING, 0, True)}[how]


@pytest.mark.parametrize("how", sorted(PUT_LIVE))
def test_another_deployer_may_put_the_version_live_with_separation_on(
        settings, approved_by_rex, deployer, how):
    settings.REQUIRE_SEPARATE_DEPLOYER = True

    services.model_version_deploy(version=approved_by_rex, user=deployer, **PUT_LIVE[how])

    assert fresh(approved_by_rex).transitions.order_by("-sequence").first().actor_id == deployer.pk


def test_admin_offers_the_approver_no_deploy_and_says_why_when_forced(
        settings, approved_by_rex, approver_and_deployer):
    settings.REQUIRE_SEPARATE_DEPLOYER = True
    client = Client()
    client.force_login(approver_and_deployer)
    before = registry_state(approved_by_rex.model_id)
    change_url = reverse("admin:mlregistry_mlmodelversion_change", args=[approved_by_rex.pk])

    page = client.get(change_url)
    response = client.post(reverse("admin:mlregistry_mlmodelversion_deploy",
                                   args=[approved_by_rex.pk]), {"notes": "go"})

    offered = {action["name"] for action in page.context["version_actions"]}
    assert offered.isdisjoint({"deploy", "ab-test", "shadow-test"})
    assert response.status_code == 302 and response.url == change_url
    reason = preconditions.refusal(preconditions.deploy_check, version=approved_by_rex,
                                   user=approver_and_deployer).message
    assert [str(m) for m in get_messages(response.wsgi_request)] == [reason]
    assert registry_state(approved_by_rex.model_id) == before


@pytest.mark.parametrize("live", [{"traffic": 20}, {"shadow": True}])
def test_reject_is_refused_while_the_version_is_in_a_live_test(people, champion, live):
    version = register_deployed_version(**people, slope=3.0, **live)
    before = registry_state(version.model_id)

    with pytest.raises(IllegalTransitionError, match="serving traffic or was deployed"):
        services.model_version_reject(version=version, user=people["reviewer"], notes="no")

    assert registry_state(version.model_id) == before


def test_reject_is_refused_for_a_staging_version_that_was_deployed_before(people):
    version = register_approved_version(**people, slope=3.0)
    # No transition leads a deployed version back to staging today; the rule holds for rows
    # an earlier release or a restore may hold.
    MLModelVersion.objects.filter(pk=version.pk).update(deployed_at=version.approved_at)

    refusal = preconditions.refusal(preconditions.reject_check, version=fresh(version),
                                    user=people["reviewer"])

    assert isinstance(refusal, IllegalTransitionError)


def test_admin_hides_reject_from_the_reviewer_of_a_live_challenger(people, champion):
    challenger = register_deployed_version(**people, slope=3.0, traffic=20)
    client = Client()
    client.force_login(people["reviewer"])

    page = client.get(reverse("admin:mlregistry_mlmodelversion_change", args=[challenger.pk]))

    assert {action["name"] for action in page.context["version_actions"]} == {"withdraw"}
    assert b'id="action-reject"' not in page.content
