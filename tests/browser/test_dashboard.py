"""The monitoring dashboard in headless Chromium after simulated traffic: lead-conversion
trained on demo leads and deployed, `manage.py simulate_traffic` sending drifted requests
and feedback to the live server and running the drift, SLO and live performance checks;
then the overview and the charts as the browser renders them (PSI printed inside the heat-map
cells, objective and baseline lines), a screenshot, and acknowledging an alert."""

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


def inside(inner, outer) -> bool:
    """`inner`'s box, as laid out, lies within `outer`'s."""
    a, b = inner.rect, outer.rect
    return (a["x"] >= b["x"] and a["y"] >= b["y"] and a["x"] + a["width"] <= b["x"] + b["width"]
            and a["y"] + a["height"] <= b["y"] + b["height"])


def test_dashboard_draws_the_charts_of_simulated_traffic(admin_browser, reviewer, monitored,
                                                         screenshot_dir):
    admin_browser.log_in(reviewer)

    admin_browser.open(DASHBOARD)
    charts = {section: admin_browser.find_all(f"#{section} svg.chart")
              for section in ("predictions-per-hour", "latency", "error-rate", "drift-heatmap",
                              "metric-trend")}
    bars = admin_browser.find_all("#predictions-per-hour svg rect.bar")
    cells = admin_browser.find_all("#drift-heatmap svg rect.cell")
    printed = admin_browser.find_all("#drift-heatmap svg text.cell-value")
    screenshot = screenshot_dir / "dashboard.png"
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
    # Each cell's PSI printed inside it, matching the tooltip's figure.
    assert len(printed) == len(cells)
    for cell, text in zip(cells, printed, strict=True):
        psi = float(cell.get_attribute("textContent").split("PSI ")[1].split()[0])
        assert text.text == f"{psi:.2f}" and drawn(text) and inside(text, cell)
    # Objectives on latency and error rate, the validation baseline on the metric trend.
    for section, kind in (("latency", "objective"), ("error-rate", "objective"),
                          ("metric-trend", "baseline")):
        (line,) = admin_browser.find_all(f"#{section} svg g.{kind} line")
        # A horizontal line's box has no height, so Selenium calls it hidden: its width across
        # the plot and its drawn label are what shows.
        assert line.size["width"] > 0.5 * charts[section][0].size["width"], section
        assert drawn(admin_browser.find(f"#{section} svg g.{kind} text")), section
    roc_auc = monitored.metrics["roc_auc"]
    assert admin_browser.find("#metric-trend svg g.baseline text").text == (
        f"{monitored.version} validation: {roc_auc:.4g} roc_auc")
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_overview_comes_first_and_leads_to_the_model(admin_browser, reviewer, monitored):
    admin_browser.log_in(reviewer)
    admin_browser.open("/admin/monitoring/dashboard/")

    row = admin_browser.find(f'#overview tr[data-model="{MODEL}"]')
    open_alerts = Alert.objects.filter(model_name=MODEL, resolved_at__isnull=True).count()
    assert row.find_element(By.CSS_SELECTOR, ".overview-alerts").text == str(open_alerts)
    assert row.find_element(By.CSS_SELECTOR, ".overview-predictions").text == str(REQUESTS)
    assert " UTC" in row.find_element(By.CSS_SELECTOR, "ul.drift-checks").text
    overview, model_view = admin_browser.find("#overview"), admin_browser.find("#model-view")
    assert overview.rect["y"] + overview.rect["height"] <= model_view.rect["y"]
    admin_browser.follow(row.find_element(By.LINK_TEXT, MODEL))

    assert admin_browser.find("#dashboard").get_attribute("data-model") == MODEL
    assert admin_browser.driver.current_url.endswith(f"?model={MODEL}#model-view")


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
