"""Serving benchmark: the governed predict/explain API against a bare DRF endpoint and
MLflow's scoring server, all around the same model.

    .venv/bin/python bench/serving.py [--model engagement-likes] [--quick] [--json FILE]

Everything runs on this machine, on 127.0.0.1, and is cleaned up at the end (or on
Ctrl-C / SIGTERM): a throwaway PostgreSQL server (tests.servers.start_postgres) with a
fresh database, migrated and seeded with `seed_demo` (every recipe trained, approved and
deployed, as `make run` does) in a temp folder that also holds the artifacts, then two
gunicorn servers with 2 sync workers each:

- governed: the project as `make run` serves it (scripts/local_wsgi.py), DEBUG off,
  persistent database connections (CONN_MAX_AGE, 60 s by default), INFO JSON logs to a
  file, API-key auth, throttling (at a rate the bench never reaches), validation,
  routing, a PredictionLog insert per request, metrics;
- bare: bench/bare_app.py, one DRF APIView around the same estimator (exported from the
  verified bundle of the model's production version), with none of that;
- mlflow: the peer a user would pick instead, `mlflow models serve --env-manager local
  -w 2` on the same estimator saved as an MLflow model, from a bench-only virtualenv
  (bench/.venv-mlflow, built from bench/requirements-mlflow.txt on first use: MLflow
  pins an older gunicorn than the project). It takes MLflow's `dataframe_records` in the
  canonical form the pipeline is fitted on (flags as 0/1). Predict only (no explain).

A Python load generator (threads, one http.client connection each; gunicorn's sync
workers close the connection after each response, so every request connects) measures,
for each app: single-row predict latency at concurrency 1, single-row throughput at
concurrency 8, 2000-row batch latency, and (governed only) single-row explain latency,
after a warm-up that loads the model (and builds the explainer) in both workers. Before
measuring, the three servers' answers to the same rows are checked to agree. Every
loop is bounded by a request count and a time limit. The client shares the 2 cores with
the servers and PostgreSQL, as the servers share them with each other.
"""

import argparse
import contextlib
import http.client
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
sys.path.insert(0, str(ROOT))

import venvs  # noqa: E402 - beside this script (bench/ is on the path)

from tests import servers  # noqa: E402 - needs ROOT on the path

BATCH_ROWS = 2000
MLFLOW_VENV = ROOT / "bench" / ".venv-mlflow"
MLFLOW_REQUIREMENTS = ROOT / "bench" / "requirements-mlflow.txt"
APPS = ("governed", "bare", "mlflow")
# Ratios in the same run (docs: bench/RESULTS.md); each "at least" or "at most".
TARGETS = {
    "c8_vs_mlflow": 3.0,         # governed single-row req/s at c=8 >= 3x MLflow's
    "c8_vs_bare": 1.5,           # ... and >= 1.5x the bare endpoint's
    "single_p95_vs_bare": 0.5,   # governed single-row p95 at c=1 <= 0.5x bare's
    "batch_p50_vs_bare": 2.0,    # governed 2000-row logged batch p50 <= 2x bare's
    "explain_p95_vs_bare": 0.6,  # governed single-row explain p95 <= 0.6x bare's predict p95
}


@dataclass
class Plan:
    single_requests: int = 1000
    throughput_seconds: float = 6.0
    throughput_rounds: int = 5
    batch_requests: int = 40
    explain_requests: int = 400
    warmup_requests: int = 100
    max_seconds: float = 90.0  # no loop runs longer than this, whatever happens


QUICK = Plan(single_requests=200, throughput_seconds=4.0, throughput_rounds=1,
             batch_requests=10, explain_requests=100, warmup_requests=40)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- load generation -----------------------------------------------------------------------


@dataclass
class Run:
    latencies_ms: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]

    @property
    def throughput(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0


def load(*, port: int, path: str, bodies: list[bytes], headers: dict, concurrency: int,
         requests: int | None = None, seconds: float | None = None, max_seconds: float) -> Run:
    """POST the bodies (cycled) with `concurrency` threads until `requests` or `seconds`."""
    counter = itertools.count()  # next() is atomic under the GIL
    run = Run()
    lock = threading.Lock()
    started = time.perf_counter()
    deadline = started + min(seconds or max_seconds, max_seconds)

    def client() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        latencies, failures = [], {}
        try:
            while time.perf_counter() < deadline:
                index = next(counter)
                if requests is not None and index >= requests:
                    break
                body = bodies[index % len(bodies)]
                t0 = time.perf_counter()
                try:
                    conn.request("POST", path, body, headers)
                    response = conn.getresponse()
                    response.read()  # closes the connection when the server said so
                    status = str(response.status)
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    status = type(exc).__name__
                elapsed_ms = (time.perf_counter() - t0) * 1000
                if status == "200":
                    latencies.append(elapsed_ms)
                else:
                    failures[status] = failures.get(status, 0) + 1
        finally:
            conn.close()
            with lock:
                run.latencies_ms.extend(latencies)
                for status, count in failures.items():
                    run.failures[status] = run.failures.get(status, 0) + count

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max_seconds + 60)
    run.elapsed = time.perf_counter() - started
    return run


# --- set-up --------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path


class Bench:
    def __init__(self, *, model: str, plan: Plan) -> None:
        self.model = model
        self.plan = plan
        self.tmp = Path(tempfile.mkdtemp(prefix="pulselytics-bench-"))
        self.servers: list[Server] = []

    # The database, the models, the key -------------------------------------------------

    def prepare(self) -> None:
        import psycopg

        log("starting a throwaway PostgreSQL server")
        # start_postgres stops its server and removes its folder when this process exits.
        admin_url = servers.start_postgres()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE pulselytics_bench")
        self.database_url = admin_url.rsplit("/", 1)[0] + "/pulselytics_bench"
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in {"DEBUG", "TEST_DATABASE_URL"}},
            "DJANGO_SETTINGS_MODULE": "pulselytics.settings.base",
            "DATABASE_URL": self.database_url,
            "PULSELYTICS_VAR_DIR": str(self.tmp / "var"),
            "ALLOWED_HOSTS": HOST,
            "API_KEY_THROTTLE_RATE": "100000000/min",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        os.environ.update(self.env)
        os.environ.pop("DEBUG", None)
        import django
        django.setup()
        import logging
        logging.getLogger().setLevel(logging.WARNING)  # this process only: no training logs
        from django.core.management import call_command
        from django.db import connection

        from demo.services import demo_seed
        from mlregistry import artifacts
        from mlregistry.models import MLModelVersion, Status
        from predictions.services import api_key_create

        log("migrating and seeding the demo models (about 20 s)")
        call_command("migrate", verbosity=0)
        demo_seed(data_dir=self.tmp / "demo")
        _, self.key = api_key_create(name="bench")
        version = MLModelVersion.objects.select_related("model").get(
            model__name=self.model, status=Status.PRODUCTION)
        self.version = version.version
        self.task = version.model.task
        self.schema = version.feature_schema
        bundle = artifacts.bundle_load(manifest=version.artifact_manifest,
                                       model_sha256=version.model_sha256)
        import joblib
        joblib.dump(bundle.estimator, self.tmp / "bare-model.joblib")
        (self.tmp / "bare-schema.json").write_text(json.dumps(self.schema))
        connection.close()
        self._bodies()

    def _bodies(self) -> None:
        from demo import data as demo_data

        inputs = [f["name"] for f in self.schema["features"] if f.get("input", True)]
        frame = (demo_data.demo_leads(seed=7, n=4000) if self.task == "binary_classification"
                 else demo_data.demo_posts(seed=7, n=4000))
        rows = json.loads(frame[inputs].to_json(orient="records"))
        from core.ml.features import model_frame

        canonical = json.loads(model_frame(frame[inputs], self.schema)[0].to_json(
            orient="records"))
        self.mlflow_single = [json.dumps({"dataframe_records": [row]}).encode()
                              for row in canonical[:500]]
        self.mlflow_batches = [json.dumps({"dataframe_records": canonical[i:i + BATCH_ROWS]})
                               .encode() for i in (0, 1000, 2000)]
        self.agreement_rows = (rows[:20], canonical[:20])
        self.single = [json.dumps({"instances": [row]}).encode() for row in rows[:500]]
        self.explain = [json.dumps({"instance": row}).encode() for row in rows[:500]]
        self.batches = [json.dumps({"instances": rows[i:i + BATCH_ROWS]}).encode()
                        for i in (0, 1000, 2000)]

    # Servers -----------------------------------------------------------------------------

    def start(self, name: str, app: str, pythonpath: str, env: dict) -> Server:
        return self._start(name, env, lambda port: [
            str(BIN / "gunicorn"), app, "--pythonpath", pythonpath, "--bind", f"{HOST}:{port}",
            "--workers", "2", "--graceful-timeout", "5", "--no-control-socket"])

    def start_mlflow(self) -> Server:
        """MLflow's scoring server on the same estimator, saved as an MLflow model by the
        bench-only virtualenv's own MLflow (as a cloudpickle: MLflow's skops default
        refuses tree models unless told which types to trust, and this file is our own)."""
        python = mlflow_python()
        model_dir = self.tmp / "mlflow-model"
        subprocess.run([str(python), "-c", (
            "import joblib, sys, mlflow.sklearn; "
            "mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2], "
            "serialization_format='cloudpickle')"),
            str(self.tmp / "bare-model.joblib"), str(model_dir)], check=True, cwd=self.tmp)
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("DJANGO", "DATABASE"))}
        env["MLFLOW_TRACKING_URI"] = (self.tmp / "mlruns").as_uri()
        # `mlflow models serve` starts its web server by name: the virtualenv's own.
        env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
        return self._start("mlflow", env, lambda port: [
            str(python.parent / "mlflow"), "models", "serve", "-m", str(model_dir),
            "--env-manager", "local", "-w", "2", "-h", HOST, "-p", str(port)])

    def _start(self, name: str, env: dict, command) -> Server:
        port = servers.free_port()
        log_path = self.tmp / f"{name}.log"
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(
                command(port), cwd=ROOT, env=env, start_new_session=True, stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        server = Server(name, port, process, log_path)
        self.servers.append(server)
        return server

    def wait_up(self, server: Server, path: str, method: str = "GET", body: bytes = b"") -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} exited; see {server.log_path}:\n"
                                   f"{server.log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection(HOST, server.port, timeout=5)
                try:
                    conn.request(method, path, body, {"Content-Type": "application/json"})
                    if conn.getresponse().status in (200, 405):
                        return
                finally:
                    conn.close()
            time.sleep(0.2)
        raise RuntimeError(f"{server.name} did not answer on port {server.port}:\n"
                           f"{server.log_path.read_text()[-2000:]}")

    def stop_all(self) -> None:
        for server in self.servers:
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
        for server in self.servers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.process.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGKILL)  # workers left behind, if any
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.process.wait(timeout=10)

    def cleanup(self) -> None:
        self.stop_all()
        from django.db import connections
        with contextlib.suppress(Exception):
            connections.close_all()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # Measurements ------------------------------------------------------------------------

    def measure(self) -> dict:
        plan = self.plan
        governed = self.start("governed", "local_wsgi:application",
                              f"{ROOT},{ROOT / 'scripts'}", self.env)
        bare = self.start("bare", "bare_app:application", str(ROOT / "bench"), {
            **self.env, "DJANGO_SETTINGS_MODULE": "bare_app",
            "BARE_MODEL_PATH": str(self.tmp / "bare-model.joblib"),
            "BARE_SCHEMA_PATH": str(self.tmp / "bare-schema.json"),
        })
        mlflow = self.start_mlflow()
        self.wait_up(governed, "/api/v1/health")
        self.wait_up(bare, "/predict")
        self.wait_up(mlflow, "/ping")
        log(f"serving {self.model} {self.version}: governed on :{governed.port}, "
            f"bare on :{bare.port}, mlflow on :{mlflow.port}")
        json_headers = {"Content-Type": "application/json"}
        apps = {
            "governed": (governed.port, f"/api/v1/models/{self.model}/predict",
                         {"Authorization": f"Api-Key {self.key}", **json_headers}),
            "bare": (bare.port, "/predict", json_headers),
            "mlflow": (mlflow.port, "/invocations", json_headers),
        }
        single = {"governed": self.single, "bare": self.single, "mlflow": self.mlflow_single}
        batches = {"governed": self.batches, "bare": self.batches, "mlflow": self.mlflow_batches}

        def go(app: str, bodies: list[bytes], *, path: str | None = None, **kwargs) -> Run:
            port, predict_path, headers = apps[app]
            run = load(port=port, path=path or predict_path, bodies=bodies, headers=headers,
                       max_seconds=plan.max_seconds, **kwargs)
            if run.failures:
                log(f"{app}: failures {run.failures}")
            return run

        explain_path = f"/api/v1/models/{self.model}/explain"
        log("warming up both workers of each server")
        for app in apps:
            go(app, single[app], concurrency=4, requests=plan.warmup_requests)
            go(app, batches[app], concurrency=2, requests=4)
        go("governed", self.explain, path=explain_path, concurrency=4,
           requests=plan.warmup_requests)
        self.agreement = self._agreement(apps)
        log(f"answers on {self.agreement['rows']} rows: governed-bare max relative "
            f"difference {self.agreement['governed_bare']:.3g}, governed-mlflow "
            f"{self.agreement['governed_mlflow']:.3g}")

        results: dict[str, dict] = {app: {} for app in apps}
        log(f"single-row predict at c=1 ({plan.single_requests} requests each)")
        for app in apps:
            results[app]["single"] = go(app, single[app], concurrency=1,
                                        requests=plan.single_requests)
        log(f"single-row throughput at c=8 ({plan.throughput_rounds} x "
            f"{plan.throughput_seconds:g} s each, alternating)")
        rounds: dict[str, list[Run]] = {app: [] for app in apps}
        for _ in range(plan.throughput_rounds):
            for app in apps:
                rounds[app].append(go(app, single[app], concurrency=8,
                                      seconds=plan.throughput_seconds))
        for app in apps:
            results[app]["c8"] = _merged(rounds[app])
        self.c8_rounds = [tuple(r.throughput for r in paired)
                          for paired in zip(*(rounds[app] for app in APPS), strict=True)]
        log("c=8 req/s per round (governed / bare / mlflow): " + ", ".join(
            "/".join(f"{value:.0f}" for value in paired) for paired in self.c8_rounds))
        log(f"{BATCH_ROWS}-row batch at c=1 ({plan.batch_requests} requests each)")
        for app in apps:
            results[app]["batch"] = go(app, batches[app], concurrency=1,
                                       requests=plan.batch_requests)
        log(f"single-row explain at c=1 ({plan.explain_requests} requests, governed only)")
        results["governed"]["explain"] = go("governed", self.explain, path=explain_path,
                                            concurrency=1, requests=plan.explain_requests)
        return results

    def _agreement(self, apps: dict) -> dict:
        """The largest relative difference between the governed answers and each other
        server's, on the same rows (0.0: identical)."""
        rows, canonical = self.agreement_rows
        bodies = {"governed": {"instances": rows}, "bare": {"instances": rows},
                  "mlflow": {"dataframe_records": canonical}}
        values = {}
        for app, (port, path, headers) in apps.items():
            conn = http.client.HTTPConnection(HOST, port, timeout=60)
            try:
                conn.request("POST", path, json.dumps(bodies[app]).encode(), headers)
                answer = json.loads(conn.getresponse().read())
            finally:
                conn.close()
            predictions = answer["predictions"]
            values[app] = [p["value"] if isinstance(p, dict) else p for p in predictions]

        def differs(other: str) -> float:
            if self.task != "regression":
                return float(sum(str(a) != str(b) for a, b in
                                 zip(values["governed"], values[other], strict=True)))
            return max(abs(a - b) / max(abs(a), 1e-12)
                       for a, b in zip(values["governed"], values[other], strict=True))

        return {"rows": len(rows), "governed_bare": differs("bare"),
                "governed_mlflow": differs("mlflow")}


def mlflow_python() -> Path:
    """bench/.venv-mlflow's interpreter, built first when needed (venvs.venv_python)."""
    return venvs.venv_python(MLFLOW_VENV, MLFLOW_REQUIREMENTS, log)


def _merged(runs: list[Run]) -> Run:
    merged = Run(elapsed=sum(r.elapsed for r in runs))
    for run in runs:
        merged.latencies_ms += run.latencies_ms
        for status, count in run.failures.items():
            merged.failures[status] = merged.failures.get(status, 0) + count
    return merged


# --- report --------------------------------------------------------------------------------


def report(results: dict, *, model: str, version: str, c8_rounds: list[tuple[float, ...]],
           agreement: dict) -> tuple[str, dict]:
    """The table, the targets and the figures as data.

    Throughput ratios are medians over the alternating c=8 rounds of governed/peer req/s
    (each governed round paired with the bare and MLflow rounds that follow it): this
    machine's speed drifts by tens of percent over minutes, and a paired median is far
    steadier than a ratio of totals.
    """
    g, b, m = results["governed"], results["bare"], results["mlflow"]

    def paired(peer: int) -> float:
        ratios = [r[0] / r[peer] for r in c8_rounds if r[peer]]
        return statistics.median(ratios) if ratios else 0.0

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    def ratio(x: float, y: float | None) -> str:
        return f"{x / y:.2f}" if y else "-"

    rows = [
        ("single-row p50 ms (c=1)", *(r["single"].percentile(50) for r in (g, b, m))),
        ("single-row p95 ms (c=1)", *(r["single"].percentile(95) for r in (g, b, m))),
        ("single-row p99 ms (c=1)", *(r["single"].percentile(99) for r in (g, b, m))),
        ("single-row req/s (c=8)", *(r["c8"].throughput for r in (g, b, m))),
        ("single-row p95 ms (c=8)", *(r["c8"].percentile(95) for r in (g, b, m))),
        (f"{BATCH_ROWS}-row batch p50 ms", *(r["batch"].percentile(50) for r in (g, b, m))),
        (f"{BATCH_ROWS}-row batch p95 ms", *(r["batch"].percentile(95) for r in (g, b, m))),
        ("single-row explain p50 ms", g["explain"].percentile(50), None, None),
        ("single-row explain p95 ms", g["explain"].percentile(95), None, None),
    ]
    lines = [f"model: {model} {version}", "",
             "| measure | governed | bare | mlflow | governed/bare | governed/mlflow |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, governed, bare, mlflow in rows:
        lines.append(f"| {name} | {cell(governed)} | {cell(bare)} | {cell(mlflow)} | "
                     f"{ratio(governed, bare)} | {ratio(governed, mlflow)} |")
    figures = {
        "c8_vs_mlflow": paired(2),
        "c8_vs_bare": paired(1),
        "single_p95_vs_bare": g["single"].percentile(95) / b["single"].percentile(95),
        "batch_p50_vs_bare": g["batch"].percentile(50) / b["batch"].percentile(50),
        "explain_p95_vs_bare": g["explain"].percentile(95) / b["single"].percentile(95),
    }
    at_least = {"c8_vs_mlflow", "c8_vs_bare"}
    passed = {name: (figures[name] >= target if name in at_least else figures[name] <= target)
              for name, target in TARGETS.items()}
    lines += ["", "c=8 rounds, governed/bare/mlflow req/s: " + ", ".join(
        "/".join(f"{value:.0f}" for value in r) for r in c8_rounds)]
    lines += ["", f"answers agree on {agreement['rows']} rows: governed-bare max relative "
              f"difference {agreement['governed_bare']:.3g}, governed-mlflow "
              f"{agreement['governed_mlflow']:.3g}"]
    lines += ["", "| target (same run) | figure | result |", "| --- | ---: | --- |"]
    for name, target in TARGETS.items():
        sense = ">=" if name in at_least else "<="
        lines.append(f"| {name} {sense} {target:g} | {figures[name]:.2f} | "
                     f"{'PASS' if passed[name] else 'FAIL'} |")
    failures = {app: {k: r.failures for k, r in res.items() if r.failures}
                for app, res in results.items()}
    if any(failures.values()):
        lines += ["", f"failed requests: {failures}"]
    counts = {app: {k: {"ok": r.ok, "failed": r.failures} for k, r in res.items()}
              for app, res in results.items()}
    data = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "model": model,
            "version": version, "cores": os.cpu_count(), "figures": figures, "passed": passed,
            "requests": counts, "c8_rounds": c8_rounds, "agreement": agreement,
            "table": {name: {"governed": governed, "bare": bare, "mlflow": mlflow}
                      for name, governed, bare, mlflow in rows}}
    return "\n".join(lines), data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="engagement-likes",
                        help="a demo model: engagement-likes (default), engagement-comments "
                             "or lead-conversion")
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)  # unwinds through the clean-up below

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # also when started with SIGINT ignored (`&`)
    bench = Bench(model=args.model, plan=QUICK if args.quick else Plan())
    try:
        bench.prepare()
        results = bench.measure()
    finally:
        log("stopping the servers and PostgreSQL, removing the temp folder")
        bench.cleanup()
    table, data = report(results, model=args.model, version=bench.version,
                         c8_rounds=bench.c8_rounds, agreement=bench.agreement)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
