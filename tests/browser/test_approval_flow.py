"""The approval workflow in the version admin, clicked through in headless Chromium: who is
offered which action, the confirmation pages, the messages, the production badge and the
transition history.

The model has a champion (deployed through the services) and a candidate in testing,
registered by another data scientist, so that only permissions stand between the people
and the actions.
"""

import pytest
from selenium.webdriver.common.by import By

from mlregistry import registration, services
from mlregistry.models import MLModelVersion, Status
from tests.factories import SCHEMA, TRIPWIRE_TYPE, Tripwire, UserFactory, register_version

pytestmark = [pytest.mark.chromium, pytest.mark.postgres,
              pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("groups_restored_after_module", "governance_groups")]

FAILED_FAIRNESS = {
    "validation": {"passed": True, "reason": "no production version to compare with"},
    "fairness": {"passed": False, "reason": "gender parity ratio 0.61 is below 0.8"},
}


def change_path(version: MLModelVersion) -> str:
    return f"/admin/mlregistry/mlmodelversion/{version.pk}/change/"


def fresh(version: MLModelVersion) -> MLModelVersion:
    return MLModelVersion.objects.get(pk=version.pk)


@pytest.fixture
def author(governance_groups):
    return UserFactory(username="dora", groups=["Data scientists"])


@pytest.fixture
def candidate(champion, author):
    """A version in testing beside the champion."""
    return register_version(user=author, slope=3.0)


def in_window(admin_browser, element) -> bool:
    """Displayed, and within the window's width (the window is 1280 px wide)."""
    width = admin_browser.driver.execute_script("return window.innerWidth")
    return element.is_displayed() and element.rect["x"] + element.rect["width"] <= width


def confirm(admin_browser, version: MLModelVersion, action: str, **fields: str) -> None:
    """From the version's change page: the action's button, then its confirmation page."""
    admin_browser.open(change_path(version))
    admin_browser.follow(admin_browser.find(f"a.version-action#action-{action}"))
    for name, text in fields.items():
        admin_browser.find(f'[name="{name}"]').send_keys(text)
    admin_browser.follow(admin_browser.find("#confirm-action"))


def test_data_scientist_sees_no_approve_button_and_a_forced_visit_is_refused(
        admin_browser, data_scientist, candidate):
    admin_browser.log_in(data_scientist)

    admin_browser.open(change_path(candidate))
    buttons = admin_browser.find_all("a.version-action")
    history_links = admin_browser.find_all("a.historylink")
    admin_browser.open(f"/admin/mlregistry/mlmodelversion/{candidate.pk}/approve/")

    assert buttons == [] and len(history_links) == 1  # the page itself was shown
    # The reason in the admin's frame (header, breadcrumbs, styles), not a bare 403.
    assert admin_browser.find("#content h1").text == "Not allowed"
    assert admin_browser.find("#site-name").text == "Pulselytics"
    assert admin_browser.find(".breadcrumbs").text == "Home › Not allowed"
    reason = admin_browser.find("#permission-denied-reason")
    assert reason.text == (f"{data_scientist.username} may not approve model versions "
                           "(needs mlregistry.approve_mlmodelversion)")
    assert "errornote" in reason.get_attribute("class") and in_window(admin_browser, reason)
    assert fresh(candidate).status == Status.TESTING


def test_data_scientist_is_told_why_no_action_is_offered(admin_browser, data_scientist,
                                                         candidate):
    admin_browser.log_in(data_scientist)

    admin_browser.open(change_path(candidate))
    block = admin_browser.find("details#actions-not-offered")
    reasons = {item.get_attribute("data-action"): item
               for item in block.find_elements(By.CSS_SELECTOR, "li[data-action]")}

    assert block.get_attribute("open") is not None  # open: nothing at all is offered
    assert block.find_element(By.TAG_NAME, "summary").text == (
        "No action is offered to you on this version: why")
    assert reasons["approve"].text == (f"Approve: {data_scientist.username} may not approve "
                                       "model versions (needs mlregistry.approve_mlmodelversion)")
    assert reasons["deploy"].text == (
        f"Deploy as champion: {data_scientist.username} may not deploy model versions "
        "(needs mlregistry.deploy_mlmodelversion)")
    assert {"reject", "withdraw", "archive"} < reasons.keys()
    assert all(in_window(admin_browser, item) for item in reasons.values())


def test_reviewer_approves_the_candidate_with_notes(admin_browser, reviewer, candidate):
    admin_browser.log_in(reviewer)

    confirm(admin_browser, candidate, "approve", notes="metrics beat production; gates pass")

    assert admin_browser.messages("success") == [f"Approved {candidate}: it is now staging."]
    version = fresh(candidate)
    assert (version.status, version.approved_by, version.approval_notes) == (
        Status.STAGING, reviewer, "metrics beat production; gates pass")


def test_deployer_deploys_and_the_production_badge_moves(admin_browser, reviewer, deployer,
                                                         champion, candidate):
    services.model_version_approve(version=candidate, user=reviewer, notes="approved")
    admin_browser.log_in(deployer)

    confirm(admin_browser, candidate, "deploy", notes="release 2")
    message = admin_browser.messages("success")
    admin_browser.open(f"/admin/mlregistry/mlmodelversion/?model__id__exact={candidate.model_id}")
    badges = {row.find_element(By.CSS_SELECTOR, "td.field-version").text:
              row.find_element(By.CSS_SELECTOR, "td.field-status_badge .badge")
              .get_attribute("class")
              for row in admin_browser.find_all("#result_list tbody tr")}

    assert message == [(f"Deployed {candidate} as champion with 100% of traffic; "
                        f"{champion.version} is archived.")]
    assert badges == {candidate.version: "badge status-production",
                      champion.version: "badge status-archived"}


def test_transition_history_shows_registration_approval_and_deployment_with_their_actors(
        admin_browser, author, reviewer, deployer, candidate):
    admin_browser.log_in(reviewer)
    confirm(admin_browser, candidate, "approve", notes="checked")
    admin_browser.log_in(deployer)
    confirm(admin_browser, candidate, "deploy")

    rows = admin_browser.find_all("#transition-history tr.transition-row")
    steps = [(row.get_attribute("data-reason"),
              row.find_element(By.CSS_SELECTOR, "td:nth-child(3)").text,
              row.find_element(By.CSS_SELECTOR, "td:nth-child(5)").text) for row in rows]

    assert steps == [("registered", "dora", "training"), ("validated", "dora", "testing"),
                     ("approved", "rita", "staging"), ("deployed", "dev", "production")]
    assert admin_browser.find("#chain-status").get_attribute("data-status") == "intact"


def test_gate_failing_approval_without_justification_is_refused_with_a_message(
        admin_browser, author, reviewer):
    version = register_version(user=author, gate_results=FAILED_FAIRNESS)
    admin_browser.log_in(reviewer)

    confirm(admin_browser, version, "approve", notes="looks fine to me")

    assert admin_browser.messages("error") == [
        (f"Cannot approve {version}: gate(s) fairness failed; an override needs a "
         "written justification")]
    assert admin_browser.find("#confirm-action").is_displayed()  # the form is offered again
    assert fresh(version).status == Status.TESTING


def test_reviewer_trusts_a_custom_type_before_approving(admin_browser, author, reviewer,
                                                        tmp_path):
    version = registration.model_version_register(
        name="tripwire-likes", task="regression", user=author, estimator=Tripwire(tmp_path / "t"),
        feature_schema=SCHEMA, training_dataset_sha256="0" * 64, training_samples=10,
        training_duration_seconds=0.01, hyperparameters={}, metrics={"r2": 0.9},
        reference_profile={"features": {}})
    admin_browser.log_in(reviewer)
    admin_browser.open(change_path(version))
    pending = [row.get_attribute("data-type")
               for row in admin_browser.find_all("#model-file tr.type-pending")]
    offered = [b.get_attribute("id") for b in admin_browser.find_all("a.version-action")]

    admin_browser.follow(admin_browser.find("a.version-action#action-trust-types"))
    admin_browser.find(f'input[name="types"][value="{TRIPWIRE_TYPE}"]').click()
    admin_browser.find('[name="reason"]').send_keys("read tests/factories.py")
    admin_browser.follow(admin_browser.find("#confirm-action"))

    assert pending == [TRIPWIRE_TYPE]
    assert "action-approve" not in offered
    assert admin_browser.messages("success") == [f"Trusted {TRIPWIRE_TYPE} for {version}."]
    assert admin_browser.find_all("#model-file tr.type-pending") == []
    assert admin_browser.find_all("a.version-action#action-approve")
