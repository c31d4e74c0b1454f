"""The monitoring dashboard in the admin: the overview of every live model, every chart
drawn from what the real checks stored (with PSI printed in the heat map, objective and
baseline lines, times with their zone), permissions, acknowledging alerts, the link from the
admin index, and a query count that grows neither with the data nor with the models."""

import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitoring.ab import ab_evaluate
from monitoring.alerts import alert_raise
from monitoring.drift import drift_check
from monitoring.models import Alert, DriftReport
from monitoring.performance import performance_evaluate
from monitoring.slo import slo_check
from tests.factories import (
    drift_frame,
    drift_outputs,
    labelled_logs_create,
    prediction_logs_create,
    register_deployed_version,
    register_profiled_version,
)

DASHBOARD = "/admin/monitoring/dashboard/"
SVG = "{http://www.w3.org/2000/svg}"
SECTIONS = ["dashboard", "overview", "traffic-split", "predictions-per-hour", "latency",
            "error-rate", "drift-heatmap", "metric-trend", "open-alerts"]
MODEL = "drift-likes"
BOUNDARIES = [*SECTIONS, "model-view", "ab-test"]


@pytest.fixture
def monitored(people):
    """A live version with logged predictions in two hours, two drift checks, two live
    performance evaluations, two SLO checks in different hours and an open alert."""
    version = register_profiled_version(**people, name=MODEL, rows=400)
    now = timezone.now()
    frame = drift_frame(n=120, seed=1, shift={"followers": 400.0})
    prediction_logs_create(version=version, frame=frame, values=drift_outputs(frame),
                           created_at=now - timedelta(hours=2))
    drift_check(version_id=version.pk)
    drift_check(version_id=version.pk)
    labelled_logs_create(version=version, values=[float(i) for i in range(40)],
                         actuals=[i + 0.5 for i in range(40)],
                         created_at=now - timedelta(minutes=30))
    performance_evaluate(version_id=version.pk, now=now - timedelta(minutes=5))
    performance_evaluate(version_id=version.pk, now=now)
    slo_check(model_name=MODEL, now=now - timedelta(hours=1, minutes=45))
    slo_check(model_name=MODEL, now=now)
    alert = alert_raise(kind="slo", severity="warning", model_name=MODEL,
                        message="p95 <b>slow</b> & rising")
    return {"version": version, "alert": alert, "now": now}


def section(page, element_id: str) -> str:
    """The HTML from the element with `element_id` to the next dashboard section."""
    html = page.content.decode()
    start = html.index(f'id="{element_id}"')
    following = [html.find(f'id="{other}"', start + 1) for other in BOUNDARIES]
    ends = [index for index in following if index > start]
    return html[start:min(ends)] if ends else html[start:]


def svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(match) for match in re.findall(r"<svg.*?</svg>", html, re.DOTALL)]


def marks(html: str, tag: str, cls: str) -> list[ET.Element]:
    return [element for svg in svgs(html) for element in svg.iter(f"{SVG}{tag}")
            if element.get("class") == cls]


def texts(element: ET.Element) -> list[str]:
    return [text.text for text in element.iter(f"{SVG}text")]


def overview_rows(page) -> dict[str, str]:
    """The overview's rows by model, as text with one space between cells."""
    rows = re.findall(r'<tr class="overview-model" data-model="([^"]+)">(.*?)</tr>',
                      section(page, "overview"), re.DOTALL)
    return {model: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
            for model, row in rows}


def test_dashboard_shows_every_section_with_its_data_points(client, reviewer, monitored):
    client.force_login(reviewer)

    page = client.get(DASHBOARD, {"model": MODEL})

    assert page.status_code == 200
    for element_id in SECTIONS:
        assert f'id="{element_id}"'.encode() in page.content
    bars = marks(section(page, "predictions-per-hour"), "rect", "bar")
    assert len(bars) == 24
    assert sum(int(bar.find(f"{SVG}title").text.split(": ")[1].split()[0])
               for bar in bars) == 160
    assert len(marks(section(page, "latency"), "circle", "point")) == 4  # p50, p95 x 2 hours
    assert len(marks(section(page, "error-rate"), "circle", "point")) == 2
    # 2 reports x (4 features + the output)
    assert len(marks(section(page, "drift-heatmap"), "rect", "cell")) == 10
    assert len(marks(section(page, "metric-trend"), "circle", "point")) == 2


def test_dashboard_shows_the_live_versions_and_their_traffic(client, reviewer, monitored):
    client.force_login(reviewer)

    split = section(client.get(DASHBOARD, {"model": MODEL}), "traffic-split")

    assert monitored["version"].version in split
    assert "champion" in split and "100%" in split
    assert "<td>160</td>" in split


def test_traffic_split_shows_each_arm_with_its_observed_share(client, reviewer, people):
    champion = register_deployed_version(**people, slope=1.0)
    challenger = register_deployed_version(**people, slope=2.0, traffic=30)
    shadow = register_deployed_version(**people, slope=3.0, shadow=True)
    now = timezone.now()
    for version, arm, n in [(champion, "champion", 7), (challenger, "challenger", 3),
                            (shadow, "shadow", 10)]:
        labelled_logs_create(version=version, arm=arm, values=[1.0] * n, actuals=[None] * n,
                             created_at=now)
    client.force_login(reviewer)

    split = section(client.get(DASHBOARD), "traffic-split")

    rows = re.findall(r'<tr class="arm-(\w+)">(.*?)</tr>', split, re.DOTALL)
    cells = {role: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "|", row)) for role, row in rows}
    assert list(cells) == ["champion", "challenger", "shadow"]
    assert "|70%|" in cells["champion"] and "|70.0%|" in cells["champion"]
    assert "|30%|" in cells["challenger"] and "|30.0%|" in cells["challenger"]
    assert "copies of every request" in cells["shadow"] and "|–|" in cells["shadow"]


def test_drift_heat_map_flags_the_shifted_feature(client, reviewer, monitored):
    client.force_login(reviewer)

    cells = marks(section(client.get(DASHBOARD, {"model": MODEL}), "drift-heatmap"), "rect",
                  "cell")

    levels = {cell.find(f"{SVG}title").text.split(",")[0]: cell.get("data-level")
              for cell in cells}
    assert levels["followers"] == "critical"
    assert levels["platform"] == "ok"


def test_drift_heat_map_prints_each_psi_in_its_cell(client, reviewer, monitored):
    client.force_login(reviewer)

    heat_map = svgs(section(client.get(DASHBOARD, {"model": MODEL}), "drift-heatmap"))[0]

    cells = heat_map.find(f"{SVG}g[@class='cells']")
    printed = {}
    for rect, text in zip(cells[::2], cells[1::2], strict=True):
        assert (rect.get("class"), text.get("class")) == ("cell", "cell-value")
        printed.setdefault(rect.find(f"{SVG}title").text.split(",")[0], []).append(text.text)
    reports = DriftReport.objects.filter(model_name=MODEL).order_by("created_at", "pk")
    assert printed["followers"] == [f"{r.features['followers']['psi']:.2f}" for r in reports]
    assert printed["(prediction)"] == [f"{r.prediction['psi']:.2f}" for r in reports]


def test_latency_chart_draws_the_p95_objective(client, reviewer, monitored, settings):
    settings.SLO_P95_LATENCY_MS = 250
    client.force_login(reviewer)

    objectives = marks(section(client.get(DASHBOARD, {"model": MODEL}), "latency"), "g",
                       "objective")

    assert [line.get("data-value") for line in objectives] == ["250"]
    assert texts(objectives[0]) == ["p95 objective: 250 ms"]
    assert objectives[0].find(f"{SVG}line").get("stroke-dasharray")


def test_error_rate_chart_draws_its_objective(client, reviewer, monitored, settings):
    settings.SLO_MAX_ERROR_RATE = 0.05
    client.force_login(reviewer)

    error_rate = section(client.get(DASHBOARD, {"model": MODEL}), "error-rate")

    objectives = marks(error_rate, "g", "objective")
    assert [line.get("data-value") for line in objectives] == ["5"]
    assert texts(objectives[0]) == ["objective: 5 %"]
    points = marks(error_rate, "circle", "point")
    assert points[-1].find(f"{SVG}title").text.startswith("error rate: 0 % at ")


def test_metric_trend_draws_the_validation_baseline(client, reviewer, people):
    version = register_deployed_version(**people)  # validated at r2 0.9
    labelled_logs_create(version=version, values=[float(i) for i in range(40)],
                         actuals=[i + 0.5 for i in range(40)],
                         created_at=timezone.now() - timedelta(minutes=30))
    performance_evaluate(version_id=version.pk)
    client.force_login(reviewer)

    trend = section(client.get(DASHBOARD), "metric-trend")

    baselines = marks(trend, "g", "baseline")
    assert [line.get("data-value") for line in baselines] == ["0.9"]
    assert texts(baselines[0]) == [f"{version.version} validation: 0.9 r2"]
    assert len(marks(trend, "circle", "point")) == 1


def test_times_are_shown_in_the_time_zone_with_its_name(client, reviewer, monitored,
                                                         settings):
    settings.TIME_ZONE = "Asia/Tokyo"  # JST all year: no summer time to trip on
    client.force_login(reviewer)
    tokyo = ZoneInfo("Asia/Tokyo")
    local = monitored["now"].astimezone(tokyo)

    page = client.get(DASHBOARD, {"model": MODEL})

    bars = marks(section(page, "predictions-per-hour"), "rect", "bar")
    assert bars[-1].find(f"{SVG}title").text.startswith(f"{local:%H}:00 JST: ")
    latency = marks(section(page, "latency"), "circle", "point")
    assert latency[-1].find(f"{SVG}title").text.endswith(f" at {local:%b %d %H:%M} JST")
    heat_map = svgs(section(page, "drift-heatmap"))[0]
    columns = texts(heat_map.find(f"{SVG}g[@class='axis axis-columns']"))
    assert columns and all(label.endswith(" JST") for label in columns)
    last_seen = monitored["alert"].last_seen.astimezone(tokyo)
    assert f"<td>{last_seen:%Y-%m-%d %H:%M} JST</td>" in section(page, "open-alerts")


def test_overview_lists_every_live_model_with_its_open_alerts_and_link(
        client, reviewer, people, monitored):
    register_deployed_version(**people)  # engagement-likes: no traffic, no alert
    client.force_login(reviewer)

    page = client.get(DASHBOARD, {"model": "engagement-likes"})

    rows = overview_rows(page)
    assert list(rows) == ["drift-likes", "engagement-likes"]
    open_alerts = Alert.objects.filter(model_name=MODEL, resolved_at__isnull=True).count()
    overview = section(page, "overview")
    cells = dict(re.findall(r'<tr class="overview-model" data-model="([^"]+)">.*?'
                            r'class="overview-alerts">(\d+)<', overview, re.DOTALL))
    assert cells == {"drift-likes": str(open_alerts), "engagement-likes": "0"}
    for model in rows:
        assert f'href="{DASHBOARD}?model={model}#model-view"' in overview
    assert "1.0.0 champion 100% 160 " in rows["drift-likes"]
    assert "1.0.0 champion 100% 0 " in rows["engagement-likes"]
    assert page.content.index(b'id="overview"') < page.content.index(b'id="model-view"')


def test_overview_shows_the_last_drift_check_of_each_live_version(client, reviewer, people,
                                                                 monitored):
    register_deployed_version(**people)  # engagement-likes: never checked
    client.force_login(reviewer)
    latest = DriftReport.objects.filter(model_name=MODEL).order_by("created_at", "pk").last()

    rows = overview_rows(client.get(DASHBOARD))

    drifted = [name for name, figures in latest.features.items() if figures["drifted"]]
    assert "followers" in drifted
    assert (f"1.0.0: drift in {', '.join(drifted[:3])}" in rows["drift-likes"])
    assert f"{latest.created_at:%Y-%m-%d %H:%M} UTC" in rows["drift-likes"]
    assert rows["engagement-likes"].endswith("never checked")


def test_open_alerts_are_listed_escaped(client, reviewer, monitored):
    client.force_login(reviewer)

    alerts = section(client.get(DASHBOARD, {"model": MODEL}), "open-alerts")

    assert "p95 &lt;b&gt;slow&lt;/b&gt; &amp; rising" in alerts
    assert f'id="alert-{monitored["alert"].pk}"' in alerts


def test_dashboard_without_data_says_so(client, reviewer, champion):
    client.force_login(reviewer)

    page = client.get(DASHBOARD)

    assert page.status_code == 200
    assert "no predictions in the last 24 h" in section(page, "predictions-per-hour")
    assert marks(section(page, "predictions-per-hour"), "rect", "bar") == []
    assert "No drift check of a live version" in section(page, "drift-heatmap")
    assert "No open alerts" in section(page, "open-alerts")


def test_dashboard_without_live_models_says_so(client, reviewer):
    client.force_login(reviewer)

    page = client.get(DASHBOARD)

    assert page.status_code == 200
    assert b'id="no-live-models"' in page.content


def test_model_selector_offers_every_live_model_and_shows_the_chosen_one(
        client, reviewer, people, monitored):
    register_deployed_version(**people)  # engagement-likes
    client.force_login(reviewer)

    page = client.get(DASHBOARD, {"model": "engagement-likes"})

    selector = page.content.decode().split('id="model-selector"')[1].split("</form>")[0]
    assert re.findall(r'<option value="([^"]+)"', selector) == ["drift-likes", "engagement-likes"]
    open_alerts = Alert.objects.filter(model_name=MODEL, resolved_at__isnull=True).count()
    assert f"drift-likes ({open_alerts} open alerts)" in selector  # the drift and SLO alerts
    assert b'data-model="engagement-likes"' in page.content


def test_unknown_model_falls_back_to_the_first_with_a_warning(client, reviewer, monitored):
    client.force_login(reviewer)

    page = client.get(DASHBOARD, {"model": "nope"})

    assert b'data-model="drift-likes"' in page.content
    assert [str(m) for m in page.context["messages"]] == [
        "No live model named 'nope': showing drift-likes."]


def test_ab_verdict_is_shown_while_a_test_runs(client, reviewer, people):
    register_deployed_version(**people, slope=1.0)
    challenger = register_deployed_version(**people, slope=2.0, traffic=30)
    ab_evaluate(model_name="engagement-likes")
    client.force_login(reviewer)

    ab_test = section(client.get(DASHBOARD), "ab-test")

    assert 'id="ab-verdict">Inconclusive<' in ab_test
    assert f"<td>challenger</td><td>{challenger.version}</td>" in ab_test


def test_dashboard_refuses_staff_without_the_permission(client, outsider, monitored):
    client.force_login(outsider)

    assert client.get(DASHBOARD).status_code == 403


def test_dashboard_sends_anonymous_visitors_to_the_login(client, monitored):
    response = client.get(DASHBOARD)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_reviewer_acknowledges_an_alert_from_the_dashboard(client, reviewer, monitored):
    alert = monitored["alert"]
    client.force_login(reviewer)

    page = client.get(DASHBOARD, {"model": MODEL})
    assert b'value="Acknowledge"' in page.content
    response = client.post(f"{DASHBOARD}alerts/{alert.pk}/acknowledge/", {"model": MODEL})

    assert response.status_code == 302
    assert response["Location"] == f"{DASHBOARD}?model={MODEL}"
    after = client.get(response["Location"])
    assert [str(m) for m in after.context["messages"]] == [
        f"Alert {alert.pk} (slo on {MODEL}) acknowledged."]
    alert.refresh_from_db()
    assert (alert.acknowledged_by, alert.resolved_at) == (reviewer, None)
    row = section(after, "open-alerts").split(f'id="alert-{alert.pk}"')[1].split("</tr>")[0]
    assert 'value="Acknowledge"' not in row
    assert "by rita" in row


def test_data_scientist_sees_no_acknowledge_button(client, data_scientist, monitored):
    client.force_login(data_scientist)

    page = client.get(DASHBOARD, {"model": MODEL})

    assert page.status_code == 200
    assert b'value="Acknowledge"' not in page.content


def test_acknowledge_posted_by_a_data_scientist_changes_nothing(client, data_scientist,
                                                                monitored):
    alert = monitored["alert"]
    client.force_login(data_scientist)

    response = client.post(f"{DASHBOARD}alerts/{alert.pk}/acknowledge/", {"model": MODEL},
                           follow=True)

    messages = [str(m) for m in response.context["messages"]]
    assert len(messages) == 1 and messages[0].startswith("permission_denied: ")
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


def test_acknowledge_needs_a_post(client, reviewer, monitored):
    client.force_login(reviewer)

    response = client.get(f"{DASHBOARD}alerts/{monitored['alert'].pk}/acknowledge/")

    assert response.status_code == 405
    assert Alert.objects.get(pk=monitored["alert"].pk).acknowledged_at is None


def test_admin_index_links_to_the_dashboard(client, reviewer):
    client.force_login(reviewer)

    page = client.get("/admin/")

    assert page.status_code == 200
    assert f'href="{DASHBOARD}"'.encode() in page.content
    assert b"Monitoring dashboard" in page.content


def test_admin_index_leaves_the_link_out_for_staff_who_may_not_see_it(client, outsider):
    client.force_login(outsider)

    assert f'href="{DASHBOARD}"'.encode() not in client.get("/admin/").content


def test_query_count_does_not_grow_with_the_data(client, reviewer, monitored):
    client.force_login(reviewer)
    client.get(DASHBOARD, {"model": MODEL})  # session and permission caches warmed alike

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(DASHBOARD, {"model": MODEL}).status_code == 200
        return len(captured)

    before = queries()
    version, now = monitored["version"], monitored["now"]
    frame = drift_frame(n=150, seed=2)
    for hours_ago in (5, 9, 13):
        prediction_logs_create(version=version, frame=frame, values=drift_outputs(frame),
                               created_at=now - timedelta(hours=hours_ago))
    drift_check(version_id=version.pk)
    slo_check(model_name=MODEL, now=now - timedelta(hours=4))
    performance_evaluate(version_id=version.pk, now=now - timedelta(minutes=10))
    alert_raise(kind="performance", severity="warning", model_name=MODEL, version="1.0.0",
                message="r2 fell")

    assert queries() == before


def test_query_count_does_not_grow_with_the_models(client, reviewer, people, monitored):
    client.force_login(reviewer)
    client.get(DASHBOARD, {"model": MODEL})

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(DASHBOARD, {"model": MODEL}).status_code == 200
        return len(captured)

    before = queries()
    for name, seed in (("churn", 3), ("fraud", 4)):
        version = register_profiled_version(**people, name=name, rows=400, seed=seed)
        frame = drift_frame(n=120, seed=seed)
        prediction_logs_create(version=version, frame=frame, values=drift_outputs(frame),
                               created_at=monitored["now"] - timedelta(hours=1))
        drift_check(version_id=version.pk)
        alert_raise(kind="slo", severity="warning", model_name=name, message="slow")

    assert len(overview_rows(client.get(DASHBOARD, {"model": MODEL}))) == 3
    assert queries() == before
