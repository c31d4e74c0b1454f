"""The monitoring report opened as a file in headless Chromium: every section drawn (a
distribution chart per feature and the prediction, the live performance charts (realized,
estimated with its band), the fairness
table, the test verdicts), a screenshot saved, and nothing requested from anywhere."""

import pytest

from monitoring.report import monitoring_report_html
from tests.browser.conftest import AdminBrowser
from tests.monitoring.report_data import reported_version

pytestmark = [pytest.mark.chromium, pytest.mark.django_db]


def test_the_report_opens_with_every_section_drawn_and_loads_nothing(people, browser,
                                                                      tmp_path,
                                                                      screenshot_dir):
    version = reported_version(people)
    path = tmp_path / "report.html"
    path.write_text(monitoring_report_html(version=version), encoding="utf-8")
    page = AdminBrowser(browser, "")

    browser.get(path.as_uri())

    drawn = {section: len(page.find_all(f"#{section} svg.chart:not(.chart-empty)"))
             for section in ("drift", "performance")}
    assert drawn == {"drift": len(version.reference_profile["features"]) + 1,
                     "performance": 2}  # realized, and estimated with its band
    assert page.find_all("#drift svg.chart rect.bar")
    assert page.find_all("#fairness table.fairness-attribute")
    assert "inconclusive" in page.find("#tests .shadow-verdict").text
    assert page.find_all("#drift .drifted")  # followers were shifted in the window
    # The document and nothing else: no image, style sheet, font or script was fetched.
    assert browser.execute_script(
        "return performance.getEntriesByType('resource').length") == 0
    page.screenshot(screenshot_dir / "monitoring-report.png")
