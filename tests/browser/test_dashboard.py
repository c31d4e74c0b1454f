"""The monitoring dashboard in headless Chromium after simulated traffic: lead-conversion
trained on demo leads and deployed, `manage.py simulate_traffic` sending drifted requests
and feedback to the live server and running the drift, SLO and live performance checks;
then the charts as the browser renders them, a screenshot, and acknowledging an alert."""

from io import StringIO

import pytest
from django.core.management import call_command
from selenium.webdriver.common.by import By

from demo.data import demo_leads
from mlregistry import selectors
from mlregistry import services as registry
from monitoring.models import Alert
from predictions import services as serving
from predictions.api import auth
from predictions.loader import model_cache
from predictions.models import SCOPES
from training.services import model_train

pytestmark = [pytest.mark.chromium, pytest.mark.postgres,
              pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("groups_restored_after_module", "governance_groups")]

MODEL = "lead-conversion"
DASHBOARD = f"/admin/monitoring/dashboard/?model={MODEL}"
REQUESTS = 40


@pytest.fixture
def monitored(people, tmp_path, settings, live_server):
    """lead-conversion live and sent REQUESTS simulated predictions (half of them drifted,
    half with feedback), then the checks; their minimum sample sizes are lowered so that
    this small traffic gets figures."""
    settings.REGISTRY_POLL_SECONDS = 0
    settings.DRIFT_MIN_SAMPLES = 20
    settings.PERFORMANCE_MIN_LABELLED = 10
    settings.SLO_MIN_REQUESTS = 10
    data = tmp_path / "leads.csv"
    demo_leads(n=300).to_csv(data, index=False)
    version = model_train(recipe_name=MODEL, user=people["user"], data_path=data)
    failed = selectors.failed_gates(version)
    version = registry.model_version_approve(
        version=version, user=people["reviewer"], notes="approved for traffic",
        override_justification="small test sample" if failed else "")
    version = registry.model_version_deploy(version=version, user=people["deployer"])
    model_cache.clear()
    auth._verified.clear()
    _, key = serving.api_key_create(name="traffic", scopes=SCOPES)
    out = StringIO()
    call_command("simulate_traffic", "--model", MODEL, "--count", str(REQUESTS),
                 "--rate", "200", "--drift", "--feedback", "0.5", "--check",
                 "--url", live_server.url, "--key", key, stdout=out)
    assert f"predict: sent {REQUESTS}, ok {REQUESTS}, errors 0" in out.getvalue()
    yield version
    model_cache.clear()
    auth._verified.clear()


def drawn(element) -> bool:
    """Laid out by the browser: displayed, with an area."""
    return element.is_displayed() and element.size["width"] > 0 and element.size["height"] > 0


def test_dashboard_draws_the_charts_of_simulated_traffic(admin_browser, reviewer, monitored,
                                                         tmp_path):
    admin_browser.log_in(reviewer)

    admin_browser.open(DASHBOARD)
    charts = {section: admin_browser.find_all(f"#{section} svg.chart")
              for section in ("predictions-per-hour", "latency", "drift-heatmap",
                              "metric-trend")}
    bars = admin_browser.find_all("#predictions-per-hour svg rect.bar")
    cells = admin_browser.find_all("#drift-heatmap svg rect.cell")
    screenshot = tmp_path / "dashboard.png"
    admin_browser.screenshot(screenshot)

    assert all(len(svgs) == 1 and drawn(svgs[0]) for svgs in charts.values()), charts
    assert admin_browser.find_all("svg.chart-empty") == []
    # One bar per hour of the last 24; their tooltips ("13:00: 40 predictions") add up.
    assert len(bars) == 24
    assert sum(int(bar.get_attribute("textContent").split(": ")[1].split()[0])
               for bar in bars) == REQUESTS
    assert any(drawn(bar) for bar in bars)
    # p50 and p95 of the one SLO check; one live accuracy of the one performance check.
    assert len(admin_browser.find_all("#latency svg circle.point")) == 2
    assert len(admin_browser.find_all("#metric-trend svg circle.point")) == 1
    # One drift check: a cell per feature of the recipe and one for the output.
    features = len(monitored.feature_schema["features"])
    assert len(cells) == features + 1 and all(drawn(cell) for cell in cells)
    assert {"warn", "critical"} & {cell.get_attribute("data-level") for cell in cells}
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_reviewer_acknowledges_the_drift_alert_from_the_dashboard(admin_browser, reviewer,
                                                                  monitored):
    alert = Alert.objects.get(model_name=MODEL, kind="drift")
    admin_browser.log_in(reviewer)
    admin_browser.open(DASHBOARD)

    admin_browser.follow(admin_browser.find(f"#alert-{alert.pk} [name=acknowledge]"))

    assert admin_browser.messages("success") == [
        f"Alert {alert.pk} (drift on {MODEL}) acknowledged."]
    row = admin_browser.find(f"#open-alerts #alert-{alert.pk}")
    assert row.find_elements(By.CSS_SELECTOR, "[name=acknowledge]") == []
    assert "by rita at" in row.text
    alert.refresh_from_db()
    assert (alert.acknowledged_by, alert.resolved_at) == (reviewer, None)
