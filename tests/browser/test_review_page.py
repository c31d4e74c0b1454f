"""A reviewer's review of a candidate in headless Chromium at 1280 px (issue: the reviewer's
evidence, honest and at a glance): engagement-likes trained and deployed, production scored
live and with an open alert, then a newer version trained beside it and awaiting review. The
reviewer finds it on the admin index, opens it and sees the like-for-like comparison (both
versions scored on the candidate's validation rows), production's live figures and open
alert beside it, and the fairness gate as not applicable (the model has no protected
attribute), all within the window's width."""

from datetime import timedelta

import pytest
from django.utils import timezone

from demo.data import demo_posts
from mlregistry import selectors
from mlregistry import services as registry
from monitoring.alerts import alert_raise
from monitoring.performance import performance_evaluate
from tests.factories import labelled_logs_create
from training.services import model_train

pytestmark = [pytest.mark.chromium, pytest.mark.postgres,
              pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("groups_restored_after_module", "governance_groups")]

MODEL = "engagement-likes"
ALERT_MESSAGE = "caption_length drifted: PSI 0.31 over the last 24 h"


def trained(people, tmp_path, *, seed: int):
    data = tmp_path / f"posts-{seed}.csv"
    demo_posts(seed=seed, n=600).to_csv(data, index=False)
    return model_train(recipe_name=MODEL, user=people["user"], data_path=data)


@pytest.fixture
def under_review(people, tmp_path, settings):
    """Production 1.0.0 with live figures and an open alert; 1.1.0 awaiting review."""
    settings.PERFORMANCE_MIN_LABELLED = 10
    production = trained(people, tmp_path, seed=1)
    failed = selectors.failed_gates(production)
    production = registry.model_version_approve(
        version=production, user=people["reviewer"], notes="first version",
        override_justification="small test sample" if failed else "")
    production = registry.model_version_deploy(version=production, user=people["deployer"])
    now = timezone.now()
    labelled_logs_create(version=production, values=[float(i) for i in range(30)],
                         actuals=[i + 2.0 for i in range(30)],
                         created_at=now - timedelta(hours=1))
    performance_evaluate(version_id=production.pk, now=now)
    alert_raise(kind="drift", severity="warning", model_name=MODEL,
                version=production.version, message=ALERT_MESSAGE)
    return production, trained(people, tmp_path, seed=2)


def within_window(admin_browser, element) -> bool:
    width = admin_browser.driver.execute_script("return window.innerWidth")
    rect = element.rect
    return element.is_displayed() and rect["x"] >= 0 and rect["x"] + rect["width"] <= width


def test_reviewer_reviews_the_candidate_from_the_queue_with_production_beside_it(
        admin_browser, people, under_review, narrow, screenshot_dir):
    production, candidate = under_review
    admin_browser.log_in(people["reviewer"])

    queued = admin_browser.find(f'#awaiting-review a[href$="/{candidate.pk}/change/"]')
    assert queued.text == f"{MODEL} {candidate.version}"
    admin_browser.follow(queued)

    comparison = admin_browser.find("#metrics-comparison")
    assert (f"both scored on this version's {candidate.training_report['validation_rows']} "
            "validation rows") in comparison.text
    assert "Different validation sets" not in comparison.text
    live = admin_browser.find("#production-live")
    assert f"Production version {production.version}" in live.text
    performance = admin_browser.find("#production-live-performance")
    assert "30" in performance.text and "mae" in performance.text.lower()
    assert ALERT_MESSAGE in admin_browser.find("#production-open-alerts").text
    fairness_gate = admin_browser.find('#gate-results tr[data-gate="fairness"] .badge')
    assert (fairness_gate.text, fairness_gate.get_attribute("class")) == (
        "not applicable", "badge gate-not_applicable")
    for element in (comparison, live, fairness_gate):
        assert within_window(admin_browser, element), element.get_attribute("id")
    assert admin_browser.driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth")
    shot = screenshot_dir / "review-page.png"
    admin_browser.screenshot(shot)
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
