"""The admin's lists at 1280 px in headless Chromium, with as many rows as a team has after a
few releases: who did something and when stays in view without scrolling sideways, long
text wraps in full (core/static/core/admin/lists.css). Each list and the version page are
saved as screenshots for people to look at (tests/browser/conftest.py, screenshot_dir)."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from mlregistry import services
from monitoring import alerts
from tests.factories import UserFactory, register_version

pytestmark = [pytest.mark.chromium, pytest.mark.postgres,
              pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("groups_restored_after_module", "governance_groups")]

MODELS = ["engagement-likes", "customer-churn-risk-eu", "lead-conversion-scoring"]
FAILED_FAIRNESS = {
    "validation": {"passed": True, "reason": "no production version to compare with"},
    "fairness": {"passed": False, "reason": "gender parity ratio 0.61 is below 0.8"},
}
APPROVAL_NOTES = (
    "Metrics beat production on the hold-out set (r2 0.90 against 0.86); the fairness gap "
    "narrowed for every protected group; residuals checked by segment and region; no leakage "
    "found in the new features; approved for staging.")
OVERRIDE = (
    "The fairness gate failed on a group of 31 customers only, a sample too small to judge; "
    "the retraining on the larger March data will be checked again before it goes live.")
DEPLOY_NOTES = (
    "Release 2026-12: replaces the spring model after two weeks of shadow traffic without "
    "errors; the rollback plan is in docs/operations.md.")


def drift_message(model: str) -> str:
    """An alert message as the drift check writes them, some 300 characters long."""
    return (f"{model} 1.0.0: dataset drift in 6 of 9 features (company_size, "
            "days_since_first_touch, emails_opened, industry, pages_viewed, region) over 1,240 "
            "predictions; PSI of the output 0.31, critical above 0.25; reference window "
            "2026-11-01 to 2026-11-30, current window the last 24 hours")


@pytest.fixture
def author(governance_groups):
    return UserFactory(username="alexandria.okonkwo", groups=["Data scientists"])


@pytest.fixture
def approver(governance_groups):
    return UserFactory(username="bartholomew.lindqvist", groups=["Reviewers"])


@pytest.fixture
def releases(author, approver, deployer):
    """Per model: 1.0.0 approved and deployed, 1.1.0 approved over a failed fairness gate
    (staging), 1.2.0 in testing with the same failed gate; long notes on the approvals and
    deployments. Returns the staging candidates by model."""
    candidates = {}
    for name in MODELS:
        live = services.model_version_approve(
            version=register_version(user=author, name=name), user=approver,
            notes=APPROVAL_NOTES)
        services.model_version_deploy(version=live, user=deployer, notes=DEPLOY_NOTES)
        candidates[name] = services.model_version_approve(
            version=register_version(user=author, name=name, slope=3.0,
                                     gate_results=FAILED_FAIRNESS),
            user=approver, notes=APPROVAL_NOTES, override_justification=OVERRIDE)
        register_version(user=author, name=name, slope=4.0, gate_results=FAILED_FAIRNESS)
    return candidates


@pytest.fixture
def drift_alerts(approver, deployer):
    """A long drift alert per model: one open, one acknowledged, one resolved."""
    raised = [alerts.alert_raise(kind="drift", severity="critical", model_name=name,
                                 version="1.0.0", message=drift_message(name))
              for name in MODELS]
    alerts.alert_acknowledge(alert_id=raised[1].pk, user=approver)
    alerts.alert_acknowledge(alert_id=raised[2].pk, user=approver)
    alerts.alert_resolve(alert_id=raised[2].pk, user=deployer)
    return raised


def no_sideways_scrolling(browser) -> bool:
    """Neither the page nor the list's own box (Django's .results, which scrolls a table too
    wide for it) can be scrolled sideways."""
    return browser.driver.execute_script(
        "const list = document.querySelector('#changelist-form .results');"
        "return document.documentElement.scrollWidth <= window.innerWidth"
        " && list.scrollWidth <= list.clientWidth;")


def in_view(browser, element: WebElement) -> bool:
    """Displayed, and its right edge within the window and within the list's box."""
    list_box = browser.find("#changelist-form .results").rect
    right = element.rect["x"] + element.rect["width"]
    window_width = browser.driver.execute_script("return window.innerWidth")
    return (element.is_displayed() and element.rect["x"] >= 0 and right <= window_width
            and right <= list_box["x"] + list_box["width"])


def cells(browser, field: str) -> list[WebElement]:
    """The list's cells of one column (Django's td.field-<name>), top to bottom."""
    return browser.find_all(f"#result_list tbody td.field-{field}")


def lines(browser, element: WebElement) -> float:
    """How many lines of text the element's height holds."""
    line_height = browser.driver.execute_script(
        "return parseFloat(getComputedStyle(arguments[0]).lineHeight);", element)
    return element.rect["height"] / line_height


def test_version_list_shows_creator_approver_and_time_at_1280_px(narrow, approver,
                                                                  releases, screenshot_dir):
    narrow.log_in(approver)

    narrow.open("/admin/mlregistry/mlmodelversion/")
    created, approved = cells(narrow, "created"), cells(narrow, "approved")
    times = narrow.find_all("#result_list td.field-created time")
    narrow.screenshot(screenshot_dir / "version-list.png")

    assert len(created) == len(approved) == len(times) == 3 * len(MODELS)
    assert all(cell.text.startswith("alexandria.okonkwo\n") for cell in created)
    assert sorted(cell.text.split("\n")[0] for cell in approved) == (
        ["bartholomew.lindqvist"] * 2 * len(MODELS) + ["–"] * len(MODELS))
    assert all(time.text.endswith(" UTC") for time in times)
    assert all(in_view(narrow, element) for element in [*created, *approved, *times])
    assert all(in_view(narrow, badge) for badge in
               narrow.find_all("#result_list td.field-gate_badges .badge"))
    assert no_sideways_scrolling(narrow)


def test_transition_list_shows_actor_reason_time_and_whole_notes_at_1280_px(
        narrow, approver, releases, screenshot_dir):
    narrow.log_in(approver)

    narrow.open("/admin/mlregistry/modeltransition/")
    recorded, reasons = cells(narrow, "recorded"), cells(narrow, "reason_code")
    notes = cells(narrow, "notes_text")
    narrow.screenshot(screenshot_dir / "transition-list.png")

    # Per model: 1.0.0 registered, validated, approved, deployed; 1.1.0 the same but deployed;
    # 1.2.0 registered and validated.
    assert len(recorded) == len(reasons) == len(notes) == 9 * len(MODELS)
    assert {cell.text.split("\n")[0] for cell in recorded} == {
        "alexandria.okonkwo", "bartholomew.lindqvist", "dev"}
    assert all(cell.text.split("\n")[1].endswith(" UTC") for cell in recorded)
    assert {cell.text for cell in reasons} == {"registered", "validated", "approved",
                                               "deployed"}
    override = [cell for cell in notes if OVERRIDE in cell.text]
    assert len(override) == len(MODELS)
    assert all(cell.text == f"{APPROVAL_NOTES}\nOverride of fairness: {OVERRIDE}"
               and lines(narrow, cell.find_element(By.CSS_SELECTOR, ".list-text")) > 2
               for cell in override)
    assert all(in_view(narrow, element) for element in [*recorded, *reasons, *notes])
    assert no_sideways_scrolling(narrow)


def test_alert_list_shows_whole_messages_times_and_handlers_at_1280_px(
        narrow, approver, drift_alerts, screenshot_dir):
    narrow.log_in(approver)

    narrow.open("/admin/monitoring/alert/")
    messages = cells(narrow, "message_text")
    seen, handled = cells(narrow, "seen"), cells(narrow, "handled")
    narrow.screenshot(screenshot_dir / "alert-list.png")

    assert sorted(cell.text for cell in messages) == sorted(
        drift_message(name) for name in MODELS)
    assert all(len(cell.text) >= 280 and lines(narrow, cell.find_element(
        By.CSS_SELECTOR, ".list-text")) > 1 for cell in messages)
    assert all(cell.text.startswith("first ") and "\nlast " in cell.text for cell in seen)
    assert sorted(cell.text.split("\n")[0] for cell in handled) == [
        "acknowledged by bartholomew.lindqvist", "acknowledged by bartholomew.lindqvist",
        "open"]
    assert any("resolved by dev" in cell.text for cell in handled)
    assert all(in_view(narrow, element) for element in [*messages, *seen, *handled])
    assert no_sideways_scrolling(narrow)


def test_version_page_of_a_candidate_beside_production_is_saved_as_a_screenshot(
        narrow, approver, releases, screenshot_dir):
    candidate = releases["customer-churn-risk-eu"]
    narrow.log_in(approver)

    narrow.open(f"/admin/mlregistry/mlmodelversion/{candidate.pk}/change/")
    narrow.screenshot(screenshot_dir / "version-page.png")

    assert narrow.find("#content h1").text.startswith("View ML model version")
