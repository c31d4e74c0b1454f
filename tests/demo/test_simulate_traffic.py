"""`manage.py simulate_traffic` and demo.traffic: request bodies from the demo data
generators (with drift and feedback shares), local targets only, bounded count and rate,
and real predictions and feedback logged by a live server."""

import json
import os
import sqlite3
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from core.errors import ValidationError
from core.ml.recipes import recipe_get
from demo import traffic
from demo.data import DEFAULT_SEED, demo_leads
from mlregistry import selectors
from mlregistry import services as registry
from monitoring.models import DriftReport
from predictions import services as serving
from predictions.api import auth
from predictions.loader import model_cache
from predictions.models import SCOPES, PredictionLog
from training.services import model_train

ALL_DEMO = list(traffic.DEFAULT_MODELS)


def feature_names(recipe: str) -> list[str]:
    return [feature.name for feature in recipe_get(recipe).features]


# -- the plan (pure) -------------------------------------------------------------------------

def test_plan_takes_turns_over_the_models_for_exactly_count_requests():
    plan = traffic.traffic_plan(models=ALL_DEMO, count=10)

    assert [request.model for request in plan] == (ALL_DEMO * 3)[:10]


def test_plan_bodies_hold_the_recipes_features_as_json():
    plan = traffic.traffic_plan(models=ALL_DEMO, count=8)

    for request in plan:
        instances = json.loads(json.dumps(request.body))["instances"]
        assert len(instances) == 1
        assert list(instances[0]) == feature_names(request.model)


def test_plan_outcomes_have_the_models_types():
    plan = traffic.traffic_plan(models=ALL_DEMO, count=40)

    by_model = {model: {type(r.actual) for r in plan if r.model == model} for model in ALL_DEMO}
    assert by_model == {"engagement-likes": {int}, "engagement-comments": {int},
                        "engagement-anomaly": {bool}, "lead-conversion": {int}}
    assert {r.actual for r in plan if r.model == "lead-conversion"} <= {0, 1}


def test_plan_is_the_same_for_the_same_seed_and_differs_for_another():
    first = traffic.traffic_plan(models=ALL_DEMO, count=12, seed=3)

    assert traffic.traffic_plan(models=ALL_DEMO, count=12, seed=3) == first
    assert traffic.traffic_plan(models=ALL_DEMO, count=12, seed=4) != first


def test_drift_shifts_the_drift_features_of_half_the_requests_by_one_std():
    plain = traffic.traffic_plan(models=["lead-conversion"], count=40, seed=5)
    drifted = traffic.traffic_plan(models=["lead-conversion"], count=40, seed=5, drift=True)
    leads = demo_leads(seed=DEFAULT_SEED, n=traffic.POOL_ROWS)  # the pool the rows come from

    assert sum(request.drifted for request in drifted) == 20
    for before, after in zip(plain, drifted, strict=True):
        assert after.actual == before.actual
        for name in feature_names("lead-conversion"):
            delta = after.instance[name] - before.instance[name] if name in (
                "pages_viewed", "days_since_first_touch") else None
            if delta is None:
                assert after.instance[name] == before.instance[name]
            elif after.drifted:
                assert abs(delta - leads[name].std()) <= 0.5  # rounded to a whole count
            else:
                assert delta == 0
        assert isinstance(after.instance["pages_viewed"], int)


def test_feedback_marks_that_share_of_each_models_requests():
    plan = traffic.traffic_plan(models=["engagement-likes", "lead-conversion"], count=20,
                                feedback=0.3)

    assert sum(r.feedback for r in plan if r.model == "engagement-likes") == 3
    assert sum(r.feedback for r in plan if r.model == "lead-conversion") == 3


def test_plan_for_a_client_model_uses_the_recipes_features():
    plan = traffic.traffic_plan(models=["engagement-likes--acme-outdoor"], count=2)

    assert list(plan[0].instance) == feature_names("engagement-likes")


@pytest.mark.parametrize("kwargs", [
    {"models": ["churn"], "count": 5},
    {"models": ["engagement-likes--nobody"], "count": 5},
    {"models": ALL_DEMO, "count": 0},
    {"models": ALL_DEMO, "count": traffic.MAX_COUNT + 1},
    {"models": ALL_DEMO, "count": 5, "feedback": 1.5},
    {"models": [], "count": 5},
])
def test_plan_refuses_what_it_cannot_or_may_not_send(kwargs):
    with pytest.raises(ValidationError):
        traffic.traffic_plan(**kwargs)


# -- where it may send ------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "base"), [
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("http://localhost:8123/", "http://localhost:8123"),
    ("http://[::1]:8000", "http://[::1]:8000"),
    ("https://localhost", "https://localhost"),
])
def test_local_urls_are_accepted(url, base):
    assert traffic.local_base_url(url) == base


@pytest.mark.parametrize("url", [
    "http://example.com:8000", "http://10.0.0.1:8000", "http://127.0.0.1.nip.io:8000",
    "http://127.0.0.1@example.com/", "ftp://127.0.0.1/", "127.0.0.1:8000",
    "http://127.0.0.1:99999", "http://localhost:8000/?next=http://example.com",
])
def test_other_urls_are_refused(url):
    with pytest.raises(traffic.NonLocalTargetError):
        traffic.local_base_url(url)


# -- sending (a fake server and a fake clock) ---------------------------------------------------

class FakeServer:
    """Answers predict requests from a list of statuses; records every call."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.calls = list(statuses), []

    def __call__(self, url: str, payload: dict, key: str):
        self.calls.append((url, payload, key))
        if url.endswith("/feedback"):
            return 200, {"actual": payload["actual"]}
        status = self.statuses.pop(0)
        if status == 0:
            raise ConnectionRefusedError("connection refused")
        if status != 200:
            return status, {"error": {"code": "model_not_ready"}}
        return 200, {"predictions": [{"prediction_id": f"id-{len(self.calls)}"}]}


class FakeClock:
    def __init__(self) -> None:
        self.now, self.slept = 100.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def send(plan, server, *, rate=10.0, clock=None):
    clock = clock or FakeClock()
    return traffic.traffic_send(plan=plan, base_url="http://127.0.0.1:8000/", key="k",
                                rate=rate, post=server, clock=clock, sleep=clock.sleep)


def test_send_paces_requests_at_the_rate():
    plan = traffic.traffic_plan(models=["engagement-likes"], count=5)
    clock = FakeClock()

    send(plan, FakeServer([200] * 5), rate=4.0, clock=clock)

    assert clock.slept == [0.25, 0.25, 0.25, 0.25]  # the requests themselves take no time here


def test_send_posts_feedback_for_the_marked_answered_predictions():
    plan = traffic.traffic_plan(models=["lead-conversion"], count=4, feedback=0.5)
    server = FakeServer([200, 200, 503, 200])

    summary = send(plan, server)

    assert (summary.sent, summary.ok, dict(summary.errors)) == (4, 3, {"503 model_not_ready": 1})
    feedback = [(url, payload) for url, payload, _ in server.calls if url.endswith("/feedback")]
    marked = [r for r, status in zip(plan, [200, 200, 503, 200], strict=True)
              if r.feedback and status == 200]
    assert [payload for _, payload in feedback] == [{"actual": r.actual} for r in marked]
    assert summary.feedback_sent == summary.feedback_ok == len(marked)
    assert server.calls[0][0] == "http://127.0.0.1:8000/api/v1/models/lead-conversion/predict"
    assert server.calls[0][1] == plan[0].body


def test_send_stops_when_the_server_cannot_be_reached():
    plan = traffic.traffic_plan(models=["engagement-likes"], count=5)

    summary = send(plan, FakeServer([200, 0, 200, 200, 200]))

    assert (summary.sent, summary.ok) == (1, 1)
    assert summary.unreachable == "ConnectionRefusedError: connection refused"


@pytest.mark.parametrize("rate", [0, -1, traffic.MAX_RATE + 1, float("inf")])
def test_send_refuses_a_rate_out_of_bounds(rate):
    with pytest.raises(ValidationError):
        send([], FakeServer([]), rate=rate)


# -- the command ------------------------------------------------------------------------------

def test_command_refuses_a_non_local_url():
    with pytest.raises(CommandError, match=r"non_local_target: .*http://example\.com"):
        call_command("simulate_traffic", "--url", "http://example.com:8000", "--key", "k")


def test_command_refuses_a_count_above_the_maximum():
    with pytest.raises(CommandError, match="count must be between 1 and 10000"):
        call_command("simulate_traffic", "--count", "10001", "--key", "k")


def test_command_without_a_key_needs_the_demo_key_file(settings, tmp_path):
    settings.VAR_DIR = tmp_path

    with pytest.raises(CommandError, match=r"instance_not_found: no demo API key in .*give --key"):
        call_command("simulate_traffic", "--count", "1")


def simulate_traffic_in(var_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """The command as run from a terminal whose PULSELYTICS_VAR_DIR is `var_dir` (and none
    of the suite's settings)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(var_dir),
           "PULSELYTICS_VAR_DIR": str(var_dir)}
    return subprocess.run([sys.executable, "manage.py", "simulate_traffic", *args],
                          cwd=Path(__file__).resolve().parents[2], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_command_refuses_a_var_dir_without_a_database_and_creates_none(tmp_path):
    result = simulate_traffic_in(tmp_path, "--check", "--key", "k", "--count", "1")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"CommandError: instance_not_found: no database at {tmp_path / 'pulselytics.sqlite3'}: "
        "run it with the server's PULSELYTICS_VAR_DIR and DATABASE_URL (as the command "
        "`make run` printed does)"]
    assert not (tmp_path / "pulselytics.sqlite3").exists()


def test_command_refuses_an_unmigrated_database_in_one_line(tmp_path):
    sqlite3.connect(tmp_path / "pulselytics.sqlite3").close()  # an empty file

    result = simulate_traffic_in(tmp_path, "--check", "--key", "k", "--count", "1")

    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"CommandError: instance_not_found: "
                           f"{tmp_path / 'pulselytics.sqlite3'} is not migrated: ")
    assert result.stdout == ""  # nothing was sent


# -- against a live server ----------------------------------------------------------------------

@pytest.fixture
def served_lead_model(governance_groups, groups_restored_after_module, people, tmp_path,
                      settings):
    """lead-conversion trained on a few demo leads, approved and deployed (committed rows,
    flushed after the test), with the serving process' caches emptied around it."""
    settings.REGISTRY_POLL_SECONDS = 0
    data = tmp_path / "leads.csv"
    demo_leads(n=300).to_csv(data, index=False)
    version = model_train(recipe_name="lead-conversion", user=people["user"], data_path=data)
    failed = selectors.failed_gates(version)
    version = registry.model_version_approve(
        version=version, user=people["reviewer"], notes="approved for traffic",
        override_justification="small test sample" if failed else "")
    version = registry.model_version_deploy(version=version, user=people["deployer"],
                                            notes="deployed for traffic")
    model_cache.clear()
    auth._verified.clear()
    yield version
    model_cache.clear()
    auth._verified.clear()


@pytest.mark.django_db(transaction=True)
def test_command_logs_predictions_and_feedback_on_a_live_server(live_server,
                                                                served_lead_model):
    _, key = serving.api_key_create(name="traffic", scopes=SCOPES)
    out = StringIO()

    call_command("simulate_traffic", "--model", "lead-conversion", "--count", "12",
                 "--rate", "200", "--feedback", "0.5", "--drift", "--check",
                 "--url", live_server.url, "--key", key, stdout=out)

    logs = PredictionLog.objects.filter(model_name="lead-conversion")
    assert logs.count() == 12
    assert logs.filter(actual_at__isnull=False).count() == 6
    assert "predict: sent 12, ok 12, errors 0" in out.getvalue()
    assert "feedback: sent 6, ok 6, errors 0" in out.getvalue()
    # --check ran the drift check: too few rows for figures, but a report per live version
    report = DriftReport.objects.get(model_version=served_lead_model)
    assert (report.status, report.n_current) == ("insufficient_data", 12)
