"""The monitoring report (monitoring.report): the same data as JSON and as one HTML file that
loads nothing, from the command and from the version page's download."""

import json
import re

import pytest

from tests.commands import command_output
from tests.monitoring.report_data import reported_version

pytestmark = pytest.mark.django_db
# Anything the HTML could fetch: a src, href or url() that names a scheme or a host.
REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?(?:[a-z]+:|//)|url\(|<script|<link|@import""",
                    re.IGNORECASE)


@pytest.fixture
def version(people):
    return reported_version(people)


def test_json_report_holds_every_section(version):
    report = json.loads(command_output("monitoring_report", version.model.name,
                                       version.version, "--out", "-", "--format", "json"))

    assert (report["model"], report["version"], report["format"]) == (
        version.model.name, version.version, 1)
    assert report["evidence"]["model_sha256"] == version.model_sha256
    followers = next(f for f in report["drift"]["features"] if f["name"] == "followers")
    assert followers["drifted"] is True
    distribution = followers["distribution"]
    assert len(distribution["labels"]) == len(distribution["reference"]) == len(
        distribution["current"])
    assert sum(distribution["reference"]) == pytest.approx(1.0)
    assert sum(distribution["current"]) == pytest.approx(1.0)
    assert report["drift"]["output"] is not None
    [check] = report["performance"]["checks"]
    assert (check["n_labelled"], report["performance"]["metric"]) == (40, "r2")
    [estimate] = report["performance"]["estimated"]
    assert estimate["metrics"]["mae"] == {"value": 2.1, "lower": 1.7, "upper": 2.5,
                                          "method": "dle"}
    assert report["fairness"]["source"] == "validation"
    assert report["fairness"]["table"]["attributes"][0]["name"] == "region"
    assert report["tests"]["shadow"]["pairs"] == 12


def test_html_report_is_one_file_that_loads_nothing(version, tmp_path):
    out = tmp_path / "report.html"

    printed = command_output("monitoring_report", version.model.name, version.version,
                             "--out", str(out))

    html = out.read_text()
    assert printed.strip() == f"wrote the html report of {version} to {out}"
    assert REMOTE.search(html) is None
    for section in ("evidence", "drift", "performance", "fairness", "tests"):
        assert f'<section id="{section}">' in html
    assert html.count('class="chart chart-bars"') == len(version.reference_profile[
        "features"]) + 1  # every feature and the prediction


def test_the_version_page_downloads_the_report(version, reviewer, outsider, client):
    client.force_login(reviewer)
    page = client.get(f"/admin/mlregistry/mlmodelversion/{version.pk}/change/")
    url = f"/admin/monitoring/dashboard/report/{version.pk}/"

    download = client.get(url)

    assert f'href="{url}"' in page.content.decode()
    assert download.status_code == 200
    assert download["Content-Disposition"] == (
        f'attachment; filename="monitoring-report-{version.model.name}-{version.version}.html"')
    assert b'<section id="drift">' in download.content
    client.force_login(outsider)
    assert client.get(url).status_code == 403
