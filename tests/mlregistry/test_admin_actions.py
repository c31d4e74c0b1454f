"""The version admin's registry actions (mlregistry.admin_actions): offered by state and
permission, confirmed on their own page, performed through the real services."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mlregistry.models import MLModelVersion, ModelTransition, Status
from monitoring.ab import ab_evaluate
from tests.factories import (
    UserFactory,
    grant_permissions,
    labelled_errors_create,
    register_approved_version,
    register_deployed_version,
    register_version,
    registry_state,
)

pytestmark = pytest.mark.django_db

FAILED_FAIRNESS = {
    "validation": {"passed": True, "reason": "no production version to compare with"},
    "fairness": {"passed": False, "reason": "gender parity ratio 0.61 is below 0.8"},
}


def action_url(version: MLModelVersion, action: str) -> str:
    return reverse(f"admin:mlregistry_mlmodelversion_{action}", args=[version.pk])


def change_url(version: MLModelVersion) -> str:
    return reverse("admin:mlregistry_mlmodelversion_change", args=[version.pk])


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def fresh(version: MLModelVersion) -> MLModelVersion:
    return MLModelVersion.objects.get(pk=version.pk)


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def offered(client: Client, version: MLModelVersion) -> set[str]:
    page = client.get(change_url(version))
    assert page.status_code == 200
    return {action["name"] for action in page.context["version_actions"]}


def last_row(version: MLModelVersion) -> ModelTransition:
    return ModelTransition.objects.filter(version=version).order_by("-sequence").first()


def test_data_scientist_is_not_offered_approve_and_forced_post_is_forbidden(data_scientist):
    # Another data scientist's version: only the missing permission stands in the way.
    version = register_version(user=UserFactory(username="dora", groups=["Data scientists"]))
    client = logged_in(data_scientist)
    before = registry_state(version.model_id)

    page = client.get(change_url(version))
    response = client.post(action_url(version, "approve"), {"notes": "looks fine"})

    assert b'id="action-approve"' not in page.content
    assert b'class="historylink"' in page.content
    assert page.context["version_actions"] == []
    assert response.status_code == 403
    assert registry_state(version.model_id) == before


def test_reviewer_is_offered_approve_and_reject_on_a_testing_version(testing_version, reviewer):
    page = logged_in(reviewer).get(change_url(testing_version))

    assert b'class="version-action" id="action-approve"' in page.content
    assert b'class="version-action" id="action-reject"' in page.content
    assert {action["name"] for action in page.context["version_actions"]} == {"approve", "reject"}


def test_deployer_is_offered_deploy_and_tests_but_not_review_on_a_staging_version(
        champion, people, deployer, reviewer):
    version = register_approved_version(**people, slope=3.0)

    assert offered(logged_in(deployer), version) == {"deploy", "ab-test", "canary",
                                                     "shadow-test", "archive"}
    assert offered(logged_in(reviewer), version) == {"reject", "withdraw"}


def test_approve_page_shows_the_version_and_the_notes_form(testing_version, reviewer):
    page = logged_in(reviewer).get(action_url(testing_version, "approve"))

    assert page.status_code == 200
    assert b'name="notes"' in page.content and b'id="confirm-action"' in page.content
    assert b'name="override_justification"' not in page.content
    assert b"goes from testing to staging" in page.content
    assert fresh(testing_version).status == Status.TESTING


def test_reviewer_approves_with_notes(testing_version, reviewer):
    response = logged_in(reviewer).post(action_url(testing_version, "approve"),
                                        {"notes": "metrics and gates checked"})

    assert response.status_code == 302 and response.url == change_url(testing_version)
    version = fresh(testing_version)
    assert (version.status, version.approved_by_id) == (Status.STAGING, reviewer.pk)
    assert version.approval_notes == "metrics and gates checked"
    row = last_row(version)
    assert (row.reason, row.notes, row.actor_id) == ("approved", "metrics and gates checked",
                                                     reviewer.pk)
    assert texts(response) == [f"Approved {version}: it is now staging."]


def test_approve_without_notes_shows_the_form_error(testing_version, reviewer):
    before = registry_state(testing_version.model_id)

    page = logged_in(reviewer).post(action_url(testing_version, "approve"), {"notes": "  "})

    assert page.status_code == 200
    assert page.context["form"].errors == {"notes": ["This field is required."]}
    assert b"Please correct the error below." in page.content
    assert registry_state(testing_version.model_id) == before


def test_creator_cannot_approve_own_version_even_with_the_permission(data_scientist):
    creator = grant_permissions(data_scientist, "approve_mlmodelversion")
    version = register_version(user=creator)
    client = logged_in(creator)
    before = registry_state(version.model_id)

    assert "approve" not in offered(client, version)
    response = client.post(action_url(version, "approve"), {"notes": "my own work is great"},
                           follow=True)

    assert response.redirect_chain == [(change_url(version), 302)]
    # The admin's message list capitalises the first letter.
    assert f"Dana created {version} and may not approve it (four eyes)".encode() in (
        response.content)
    assert registry_state(version.model_id) == before


def test_gate_failing_version_asks_for_a_justification(data_scientist, reviewer):
    version = register_version(user=data_scientist, gate_results=FAILED_FAIRNESS)

    page = logged_in(reviewer).get(action_url(version, "approve"))

    assert b'name="override_justification"' in page.content
    assert b"gender parity ratio 0.61 is below 0.8" in page.content


def test_gate_failing_version_without_justification_is_refused_with_a_message(
        data_scientist, reviewer):
    version = register_version(user=data_scientist, gate_results=FAILED_FAIRNESS)
    before = registry_state(version.model_id)

    page = logged_in(reviewer).post(action_url(version, "approve"),
                                    {"notes": "fine", "override_justification": ""})

    assert page.status_code == 200
    message = (f"cannot approve {version}: gate(s) fairness failed; an override needs a "
               "written justification")
    assert (message[0].upper() + message[1:]).encode() in page.content  # the message list
    assert [(m.level_tag, str(m)) for m in page.context["messages"]] == [("error", message)]
    assert registry_state(version.model_id) == before


def test_gate_failing_version_with_justification_is_approved(data_scientist, reviewer):
    version = register_version(user=data_scientist, gate_results=FAILED_FAIRNESS)

    response = logged_in(reviewer).post(action_url(version, "approve"), {
        "notes": "fine", "override_justification": "groups too small to judge; audit in Q3"})

    assert response.status_code == 302
    version = fresh(version)
    assert version.status == Status.STAGING
    assert version.override_justification == "groups too small to judge; audit in Q3"
    assert "Override of fairness" in last_row(version).notes
    assert texts(response) == [(f"Approved {version}, overriding the failed fairness gate: it "
                                "is now staging.")]


def test_reject_requires_notes(testing_version, reviewer):
    before = registry_state(testing_version.model_id)

    page = logged_in(reviewer).post(action_url(testing_version, "reject"), {"notes": ""})

    assert page.context["form"].errors == {"notes": ["This field is required."]}
    assert registry_state(testing_version.model_id) == before


def test_reviewer_rejects_with_notes(testing_version, reviewer):
    response = logged_in(reviewer).post(action_url(testing_version, "reject"),
                                        {"notes": "validation set too small"})

    assert response.status_code == 302
    assert fresh(testing_version).status == Status.ARCHIVED
    assert last_row(testing_version).notes == "validation set too small"
    assert texts(response) == [f"Rejected {testing_version}: it is archived."]


def test_deployer_deploys_and_the_old_champion_is_archived(champion, people, deployer):
    version = register_approved_version(**people, slope=3.0)

    response = logged_in(deployer).post(action_url(version, "deploy"), {"notes": "go"})

    assert response.status_code == 302 and response.url == change_url(version)
    assert (fresh(version).status, fresh(version).traffic_percentage) == (Status.PRODUCTION, 100)
    assert fresh(champion).status == Status.ARCHIVED
    assert (last_row(version).reason, last_row(version).actor_id) == ("deployed", deployer.pk)
    assert texts(response) == [(f"Deployed {version} as champion with 100% of traffic; "
                                f"{champion.version} is archived.")]


def test_deployer_starts_an_ab_test_with_20_percent(champion, people, deployer):
    version = register_approved_version(**people, slope=3.0)

    response = logged_in(deployer).post(action_url(version, "ab-test"), {"traffic": "20"})

    assert response.status_code == 302
    assert (fresh(version).status, fresh(version).traffic_percentage) == (Status.STAGING, 20)
    assert fresh(champion).traffic_percentage == 80
    assert last_row(version).reason == "ab_test_started"
    assert texts(response) == [(f"Started an A/B test: {version} receives 20% of traffic beside "
                                f"champion {champion.version} (80%).")]


def test_ab_test_traffic_out_of_range_shows_the_form_error(champion, people, deployer):
    version = register_approved_version(**people, slope=3.0)
    before = registry_state(version.model_id)

    page = logged_in(deployer).post(action_url(version, "ab-test"), {"traffic": "100"})

    assert list(page.context["form"].errors) == ["traffic"]
    assert registry_state(version.model_id) == before


def test_service_refusal_is_shown_as_an_error_message_and_changes_nothing(
        champion, people, deployer):
    register_deployed_version(**people, slope=3.0, traffic=90)
    version = register_approved_version(**people, slope=4.0)
    before = registry_state(version.model_id)

    page = logged_in(deployer).post(action_url(version, "ab-test"), {"traffic": "20"})

    assert page.status_code == 200
    assert [str(m) for m in page.context["messages"]] == [
        f"{version.model.name} challengers already take 90%; 20% more exceeds 100%"]
    assert registry_state(version.model_id) == before


def test_deployer_ends_an_ab_test(champion, people, deployer):
    challenger = register_deployed_version(**people, slope=3.0, traffic=20)
    client = logged_in(deployer)

    assert offered(client, challenger) == {"deploy", "end-test", "archive"}
    response = client.post(action_url(challenger, "end-test"), {"notes": "enough data"})

    assert response.status_code == 302
    assert (fresh(challenger).status, fresh(challenger).traffic_percentage) == (Status.STAGING, 0)
    assert fresh(champion).traffic_percentage == 100
    assert (last_row(challenger).reason, last_row(challenger).notes) == ("test_ended",
                                                                         "enough data")


def test_deployer_starts_a_shadow_test(champion, people, deployer):
    version = register_approved_version(**people, slope=3.0)

    response = logged_in(deployer).post(action_url(version, "shadow-test"), {"notes": ""})

    assert response.status_code == 302
    version = fresh(version)
    assert (version.status, version.is_shadow, version.traffic_percentage) == (
        Status.STAGING, True, 0)
    assert fresh(champion).traffic_percentage == 100
    assert last_row(version).reason == "shadow_started"


@pytest.fixture
def replaced_champion(champion, people):
    """1.0.0 was the champion; 1.1.0 replaced it (1.0.0 archived)."""
    return register_deployed_version(**people, slope=3.0)


def test_rollback_page_shows_the_dry_run_plan_and_changes_nothing(
        champion, replaced_champion, deployer):
    before = registry_state(champion.model_id)

    page = logged_in(deployer).get(action_url(replaced_champion, "rollback"))

    assert page.status_code == 200
    plan = page.context["plan"]
    assert (plan.from_version, plan.to_version, plan.dry_run) == (
        replaced_champion.version, champion.version, True)
    assert f'id="action-rollback-target">{champion.version}<'.encode() in page.content
    assert b'name="reason"' in page.content
    assert registry_state(champion.model_id) == before


def test_rollback_with_reason_restores_the_previous_champion(
        champion, replaced_champion, deployer):
    response = logged_in(deployer).post(action_url(replaced_champion, "rollback"),
                                        {"reason": "latency incident"})

    assert response.status_code == 302
    assert fresh(champion).status == Status.PRODUCTION
    assert fresh(replaced_champion).status == Status.ARCHIVED
    assert (last_row(champion).reason, last_row(champion).notes) == ("rollback",
                                                                     "latency incident")
    assert texts(response) == [(f"Rolled back {champion.model.name}: {champion.version} is "
                                f"champion again; {replaced_champion.version} is archived.")]


def test_rollback_without_reason_shows_the_form_error(champion, replaced_champion, deployer):
    before = registry_state(champion.model_id)

    page = logged_in(deployer).post(action_url(replaced_champion, "rollback"), {"reason": ""})

    assert page.context["form"].errors == {"reason": ["This field is required."]}
    assert registry_state(champion.model_id) == before


def test_rollback_from_a_former_champions_page_restores_that_version(
        champion, replaced_champion, deployer):
    response = logged_in(deployer).post(action_url(champion, "rollback"),
                                        {"reason": "back to 1.0.0"})

    assert response.status_code == 302 and response.url == change_url(champion)
    assert fresh(champion).status == Status.PRODUCTION
    assert fresh(replaced_champion).status == Status.ARCHIVED


@pytest.fixture
def challenger(champion, people):
    return register_deployed_version(**people, slope=3.0, traffic=20)


def test_promote_winner_shows_the_verdict_and_deploys_the_better_challenger(
        champion, challenger, deployer):
    labelled_errors_create(champion, arm="champion", noise=12.0, seed=1)
    labelled_errors_create(challenger, arm="challenger", noise=2.0, seed=2)
    [evaluation] = ab_evaluate(model_name=champion.model.name,
                               now=timezone.now() + timedelta(minutes=1))
    client = logged_in(deployer)

    assert "promote-winner" in offered(client, challenger)
    page = client.get(action_url(challenger, "promote-winner"))
    response = client.post(action_url(challenger, "promote-winner"))

    assert evaluation.verdict == "challenger_better"
    assert b'id="action-ab-verdict">Challenger Better<' in page.content
    assert response.status_code == 302
    assert (fresh(challenger).status, fresh(challenger).traffic_percentage) == (
        Status.PRODUCTION, 100)
    assert fresh(champion).status == Status.ARCHIVED
    assert f"A/B evaluation #{evaluation.pk}" in last_row(challenger).notes
    assert texts(response) == [(f"Promoted the A/B winner: {challenger} is now champion with "
                                f"100% of traffic; {champion.version} is archived.")]


def test_promote_winner_is_refused_while_the_evaluation_is_inconclusive(
        champion, challenger, deployer):
    labelled_errors_create(champion, arm="champion", noise=5.0, seed=1, n=5)
    labelled_errors_create(challenger, arm="challenger", noise=5.0, seed=2, n=5)
    [evaluation] = ab_evaluate(model_name=champion.model.name,
                               now=timezone.now() + timedelta(minutes=1))
    client = logged_in(deployer)
    before = registry_state(champion.model_id)

    assert "promote-winner" not in offered(client, challenger)
    response = client.post(action_url(challenger, "promote-winner"))

    assert evaluation.verdict == "inconclusive"
    assert response.status_code == 302 and response.url == change_url(challenger)
    assert texts(response) == [(f"the latest A/B evaluation of {challenger.model.name} "
                                f"({challenger.version} against {champion.version}) is "
                                "inconclusive: there is no winner yet")]
    assert registry_state(champion.model_id) == before


def test_post_without_csrf_token_is_refused(testing_version, reviewer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    before = registry_state(testing_version.model_id)

    response = client.post(action_url(testing_version, "approve"), {"notes": "fine"})

    assert response.status_code == 403
    assert registry_state(testing_version.model_id) == before


def test_a_data_scientist_is_told_why_each_action_is_not_offered(data_scientist):
    version = register_version(user=data_scientist)
    reason = (f"{data_scientist.username} may not approve model versions "
              "(needs mlregistry.approve_mlmodelversion)")

    page = logged_in(data_scientist).get(change_url(version))

    unavailable = {action["name"]: action["reason"]
                   for action in page.context["version_actions_unavailable"]}
    assert unavailable["approve"] == reason
    html = page.content.decode()
    assert '<details class="module" id="actions-not-offered" open>' in html
    assert f'<li data-action="approve"><strong>Approve</strong>: {reason}</li>' in html


def test_a_reviewer_sees_why_approving_their_own_version_is_not_offered(reviewer):
    reviewer = grant_permissions(reviewer, "add_mlmodelversion")  # a reviewer who also builds
    version = register_version(user=reviewer)

    page = logged_in(reviewer).get(change_url(version))

    unavailable = {action["name"]: action["reason"]
                   for action in page.context["version_actions_unavailable"]}
    assert unavailable["approve"] == (f"{reviewer.username} created {version} and may not "
                                      "approve it (four eyes)")
