"""One precondition per registry action, asked by the admin and enforced by the service.

For every action and situation, what the admin is told (`preconditions.refusal`) is the
error the service raises, and the admin offers the action exactly when the service would
accept it.
"""

import pytest
from django.test import Client
from django.urls import reverse

from core.errors import ApplicationError, FourEyesError, IllegalTransitionError
from mlregistry import preconditions, services
from mlregistry.models import MLModelVersion, Status
from tests.factories import (
    grant_permissions,
    register_approved_version,
    register_deployed_version,
    register_version,
    registry_state,
)

# action -> (check, the service call it guards)
ACTIONS = {
    "approve": (preconditions.approve_check, lambda version, user: services.model_version_approve(
        version=version, user=user, notes="looks right")),
    "reject": (preconditions.reject_check, lambda version, user: services.model_version_reject(
        version=version, user=user, notes="leaks the target")),
    "withdraw": (preconditions.withdraw_check,
                 lambda version, user: services.model_version_withdraw_approval(
                     version=version, user=user, notes="needs another look")),
    "deploy": (preconditions.deploy_check, lambda version, user: services.model_version_deploy(
        version=version, user=user, notes="go")),
    "ab-test": (preconditions.live_test_start_check,
                lambda version, user: services.model_version_deploy(
                    version=version, user=user, traffic=20)),
    "end-test": (preconditions.live_test_end_check,
                 lambda version, user: services.model_version_end_test(version=version,
                                                                       user=user)),
    "archive": (preconditions.archive_check, lambda version, user: services.model_version_archive(
        version=version, user=user, reason="superseded")),
}
# The admin's button for each action that has one.
ADMIN_ACTIONS = {"approve", "reject", "withdraw", "deploy", "ab-test", "end-test", "archive"}


def _version(state: str, people: dict) -> MLModelVersion:
    if state == "testing":
        return register_version(user=people["user"], slope=5.0)
    if state == "staging":
        return register_approved_version(**people, slope=5.0)
    if state == "challenger":
        return register_deployed_version(**people, slope=5.0, traffic=20)
    if state == "production":
        return register_deployed_version(**people, slope=5.0)
    raise AssertionError(state)


def _service_error(call, version, user) -> ApplicationError | None:
    try:
        call(version, user)
    except ApplicationError as exc:
        return exc
    return None


@pytest.mark.parametrize("who", ["user", "reviewer", "deployer"])
@pytest.mark.parametrize("state", ["testing", "staging", "challenger", "production"])
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_service_refuses_exactly_what_the_precondition_refuses(people, champion, action, state,
                                                               who):
    check, call = ACTIONS[action]
    version = _version(state, people)
    user = people[who]
    before = registry_state(version.model_id)

    asked = preconditions.refusal(check, version=version, user=user)
    raised = _service_error(call, version, user)

    assert (type(asked), asked and asked.message) == (type(raised), raised and raised.message)
    if raised is not None:
        assert registry_state(version.model_id) == before


@pytest.mark.parametrize("state", ["testing", "staging", "challenger", "production"])
def test_admin_offers_an_action_exactly_when_its_precondition_passes(people, champion, state):
    version = _version(state, people)
    for who in ("reviewer", "deployer"):
        client = Client()
        client.force_login(people[who])
        page = client.get(reverse("admin:mlregistry_mlmodelversion_change", args=[version.pk]))
        offered = {action["name"] for action in page.context["version_actions"]}
        allowed = {name for name in ADMIN_ACTIONS
                   if preconditions.refusal(ACTIONS[name][0], version=version,
                                            user=people[who]) is None}
        assert offered & ADMIN_ACTIONS == allowed


def test_creator_may_not_reject_their_own_version_even_holding_the_permission(data_scientist):
    creator = grant_permissions(data_scientist, "approve_mlmodelversion")
    version = register_version(user=creator)
    before = registry_state(version.model_id)

    with pytest.raises(FourEyesError):
        services.model_version_reject(version=version, user=creator, notes="never mind")

    assert registry_state(version.model_id) == before


def test_a_running_challenger_cannot_start_a_second_test(people, champion):
    challenger = register_deployed_version(**people, slope=3.0, traffic=20)
    before = registry_state(challenger.model_id)

    with pytest.raises(IllegalTransitionError, match="already in a live test"):
        services.model_version_deploy(version=challenger, user=people["deployer"], shadow=True)

    assert registry_state(challenger.model_id) == before
    assert MLModelVersion.objects.get(pk=challenger.pk).status == Status.STAGING


def test_rollback_check_names_the_version_the_service_restores(people, champion):
    replacement = register_deployed_version(**people, slope=3.0)

    target = preconditions.rollback_check(model=replacement.model, user=people["deployer"])
    plan = services.model_rollback(model=replacement.model, user=people["deployer"],
                                   reason="error rate doubled")

    assert target.pk == champion.pk and plan.to_version == champion.version
