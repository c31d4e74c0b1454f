"""Separation of duties for "promote winner" (docs/registry.md#four-eyes): under
REQUIRE_SEPARATE_DEPLOYER the challenger's approver does not make it champion."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.errors import FourEyesError
from mlregistry import services
from mlregistry.models import MLModelVersion, Status
from monitoring.ab import ab_evaluate, ab_promote_winner
from tests.factories import labelled_errors_create, register_version, registry_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def winning_challenger(people, champion, approver_and_deployer):
    """A challenger rex approved (and dev started), which the latest evaluation says won."""
    version = register_version(user=people["user"], slope=3.0)
    version = services.model_version_approve(version=version, user=approver_and_deployer,
                                             notes="checked")
    version = services.model_version_deploy(version=version, user=people["deployer"],
                                            traffic=20)
    labelled_errors_create(champion, arm="champion", noise=12.0, seed=1)
    labelled_errors_create(version, arm="challenger", noise=2.0, seed=2)
    [evaluation] = ab_evaluate(model_name=champion.model.name,
                               now=timezone.now() + timedelta(minutes=1))
    assert evaluation.verdict == "challenger_better"
    return version


def test_approver_may_not_promote_their_challenger_with_separation_on(
        settings, winning_challenger, approver_and_deployer):
    settings.REQUIRE_SEPARATE_DEPLOYER = True
    before = registry_state(winning_challenger.model_id)

    with pytest.raises(FourEyesError, match=r"rex approved .* may not promote it"):
        ab_promote_winner(model_name=winning_challenger.model.name, user=approver_and_deployer)

    assert registry_state(winning_challenger.model_id) == before


def test_admin_does_not_offer_promote_winner_to_the_approver_with_separation_on(
        settings, winning_challenger, approver_and_deployer):
    settings.REQUIRE_SEPARATE_DEPLOYER = True
    client = Client()
    client.force_login(approver_and_deployer)

    page = client.get(reverse("admin:mlregistry_mlmodelversion_change",
                              args=[winning_challenger.pk]))

    offered = {action["name"] for action in page.context["version_actions"]}
    assert "promote-winner" not in offered and "end-test" in offered


def test_approver_may_promote_their_challenger_with_separation_off(
        settings, winning_challenger, approver_and_deployer):
    settings.REQUIRE_SEPARATE_DEPLOYER = False

    winner = ab_promote_winner(model_name=winning_challenger.model.name,
                               user=approver_and_deployer)

    assert winner.pk == winning_challenger.pk
    assert MLModelVersion.objects.get(pk=winner.pk).status == Status.PRODUCTION


def test_another_deployer_may_promote_the_challenger_with_separation_on(
        settings, winning_challenger, deployer):
    settings.REQUIRE_SEPARATE_DEPLOYER = True

    winner = ab_promote_winner(model_name=winning_challenger.model.name, user=deployer)

    assert MLModelVersion.objects.get(pk=winner.pk).status == Status.PRODUCTION
