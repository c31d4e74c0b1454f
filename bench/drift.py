"""Drift check benchmark: time and peak memory of one check by window size, beside
Evidently's DataDriftPreset on the same generated data.

    .venv/bin/python bench/drift.py [--rows 10000,100000,300000,1000000] [--chunk-size N]
                                    [--no-evidently]

On a throwaway PostgreSQL server (tests.servers.start_postgres; binaries as for the tests,
`make ci-deps`) with a fresh, migrated database in a temp folder, it registers, approves
and deploys a 12-feature regression version (8 numeric, 3 categorical and 1 bool input
feature) whose reference profile describes 5,000 training rows, then grows its
prediction log to each window size in turn (COPY, rows drawn from a partly shifted
training distribution, all inside the last 24 hours) and runs `drift_check` over it:
once timed, once under tracemalloc for the peak of Python allocations (tracemalloc slows
Python code down, so the two are separate runs), and once in a fresh Python process whose
peak resident set size (VmHWM: the whole check, C libraries and the database driver
included) is reported beside the same process's size before the check. On PostgreSQL the
check reads the window through COPY in chunks of monitoring.drift.COPY_CHUNK_ROWS rows
(`--chunk-size` sets MONITORING_CHUNK_SIZE, the streamed path's chunk, which other
databases use). Everything is removed at the end, also on Ctrl-C and SIGTERM.

The peer: Evidently's DataDriftPreset over the same 13 columns (the 12 features and the
output; the window regenerated from the same seeds, the reference the same 5,000 rows) in
a fresh process of a bench-only virtualenv, bench/.venv, which the script builds from
bench/requirements-evidently.txt on first use (Evidently needs pandas < 3, which the
project does not use). Its time covers building the datasets and running the report on
frames already in memory; its peak RSS is the whole process's, frames included, because
Evidently needs them there.
"""

import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import timedelta
from pathlib import Path

import numpy
import pandas

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import venvs  # noqa: E402 - beside this script (bench/ is on the path)

from tests import servers  # noqa: E402 - after sys.path is set

EVIDENTLY_VENV = ROOT / "bench" / ".venv"
EVIDENTLY_REQUIREMENTS = ROOT / "bench" / "requirements-evidently.txt"
REFERENCE_ROWS = 5000
REFERENCE_SEED = 3
# The window moves followers and caption length by half a standard deviation; every other
# feature keeps its training distribution.
WINDOW_SHIFT = 0.5
NUMERIC = ["followers", "following", "caption_length", "hashtags", "mentions", "hour",
           "sentiment", "engagement_30d"]
CATEGORIES = {"platform": ["instagram", "tiktok", "x", "linkedin"],
              "media_type": ["image", "video", "carousel", "text"],
              "weekday": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def posts(*, n: int, seed: int, shift: float = 0.0) -> pandas.DataFrame:
    """Synthetic post features; `shift` moves the means of followers (log scale) and
    caption length by that many standard deviations."""
    rng = numpy.random.default_rng(seed)
    frame = pandas.DataFrame({
        "followers": rng.lognormal(8.0 + shift, 1.0, n),
        "following": rng.lognormal(6.0, 0.8, n),
        "caption_length": rng.normal(180.0 + 60.0 * shift, 60.0, n),
        "hashtags": rng.poisson(4.0, n),
        "mentions": rng.poisson(1.0, n),
        "hour": rng.integers(0, 24, n),
        "sentiment": rng.normal(0.2, 0.3, n),
        "engagement_30d": rng.gamma(2.0, 0.02, n),
        **{name: rng.choice(values, n) for name, values in CATEGORIES.items()},
        "has_link": rng.random(n) < 0.3,
    })
    return frame


def outputs(frame: pandas.DataFrame) -> numpy.ndarray:
    return (numpy.log1p(frame["followers"].to_numpy()) * 3.0 + frame["hashtags"].to_numpy()
            + 10.0 * frame["sentiment"].to_numpy())


def window_batch(*, offset: int, n: int) -> pandas.DataFrame:
    """The logged rows `offset` to `offset + n` of the window (one COPY batch)."""
    return posts(n=n, seed=1000 + offset, shift=WINDOW_SHIFT)


def evidently_run(batches: list[tuple[int, int]]) -> dict:
    """Evidently's DataDriftPreset over the window made of `batches` (offset, rows) against
    the reference rows; run in the bench-only virtualenv."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    def with_output(frame: pandas.DataFrame) -> pandas.DataFrame:
        return frame.assign(output=outputs(frame))

    reference = with_output(posts(n=REFERENCE_ROWS, seed=REFERENCE_SEED))
    current = pandas.concat([with_output(window_batch(offset=offset, n=n))
                             for offset, n in batches], ignore_index=True)
    definition = DataDefinition(numerical_columns=[*NUMERIC, "output"],
                                categorical_columns=[*CATEGORIES, "has_link"])
    rss_before = _vm_hwm_mib()
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition))
    seconds = time.perf_counter() - started
    drifted = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if not config["type"].endswith(":ValueDrift") or config["column"] == "output":
            continue
        # p-value methods drift below the threshold, distances at or above it.
        below = "p_value" in config["method"]
        if (metric["value"] < config["threshold"]) == below:
            drifted.append(config["column"])
    return {"rows": len(current), "seconds": seconds, "rss_before_mib": rss_before,
            "rss_peak_mib": _vm_hwm_mib(), "drifted": sorted(drifted)}


def _vm_hwm_mib() -> float:
    """This process's own peak RSS (VmHWM); ru_maxrss would carry over the forking
    parent's high-water mark across exec on Linux."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def evidently_python() -> Path:
    """bench/.venv's interpreter, built first when needed (venvs.venv_python)."""
    return venvs.venv_python(EVIDENTLY_VENV, EVIDENTLY_REQUIREMENTS, log)


def evidently_measure(batches: list[tuple[int, int]]) -> dict:
    """evidently_run in a fresh process of the bench-only virtualenv."""
    script = ("import json, sys; sys.path.insert(0, 'bench'); import drift; "
              f"print(json.dumps(drift.evidently_run({json.dumps(batches)})))")
    result = subprocess.run([str(evidently_python()), "-c", script], cwd=ROOT,
                            capture_output=True, text=True, timeout=1800, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the Evidently process failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.splitlines()[-1])


class Bench:
    def __init__(self, *, chunk_size: int | None) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="pulselytics-drift-bench-"))
        self.chunk_size = chunk_size
        self.inserted = 0
        self.batches: list[tuple[int, int]] = []  # (offset, rows) of each COPY batch

    def prepare(self) -> None:
        import psycopg

        log("starting a throwaway PostgreSQL server")
        admin_url = servers.start_postgres()  # stopped and removed when this process exits
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE pulselytics_drift_bench")
        env = {"DJANGO_SETTINGS_MODULE": "pulselytics.settings.base",
               "DATABASE_URL": admin_url.rsplit("/", 1)[0] + "/pulselytics_drift_bench",
               "PULSELYTICS_VAR_DIR": str(self.tmp / "var"), "LOG_LEVEL": "WARNING"}
        if self.chunk_size:
            env["MONITORING_CHUNK_SIZE"] = str(self.chunk_size)
        os.environ.update(env)
        os.environ.pop("DEBUG", None)
        import django
        django.setup()
        from django.contrib.auth.models import Group, User
        from django.core.management import call_command

        from core.ml.profile import reference_profile_build
        from core.ml.schema import feature_spec
        from mlregistry import registration, services
        from tests.factories import tiny_estimator

        log("migrating")
        call_command("migrate", verbosity=0)
        people = {}
        for role, group in (("user", "Data scientists"), ("reviewer", "Reviewers"),
                            ("deployer", "Deployers")):
            people[role] = User.objects.create(username=f"bench-{role}")
            people[role].groups.add(Group.objects.get(name=group))
        schema = {"target": "likes", "features": [
            *[feature_spec(name=name, dtype="int" if name in ("hashtags", "mentions", "hour")
                           else "float") for name in NUMERIC],
            *[feature_spec(name=name, dtype="category", categories=values)
              for name, values in CATEGORIES.items()],
            feature_spec(name="has_link", dtype="bool"),
        ]}
        frame = posts(n=REFERENCE_ROWS, seed=REFERENCE_SEED)
        profile = reference_profile_build(frame=frame, schema=schema, outputs=outputs(frame),
                                          seed=REFERENCE_SEED)
        version = registration.model_version_register(
            name="bench-likes", task="regression", user=people["user"],
            estimator=tiny_estimator(), feature_schema=schema, training_dataset_sha256="0" * 64,
            training_samples=REFERENCE_ROWS, training_duration_seconds=0.0, hyperparameters={},
            metrics={}, reference_profile=profile)
        version = services.model_version_approve(version=version, user=people["reviewer"],
                                                 notes="bench")
        self.version = services.model_version_deploy(version=version, user=people["deployer"],
                                                     notes="bench")

    def grow_log(self, rows: int) -> None:
        """Append rows (COPY, in batches) until the version's log holds `rows`."""
        from django.db import connection
        from django.utils import timezone

        from predictions.models import PredictionLog

        now = timezone.now()
        columns = ("prediction_id", "model_version_id", "model_name", "arm", "request_id",
                   "routing_key_sha256", "client_id", "features", "features_sha256", "value",
                   "latency_ms", "created_at")
        table = PredictionLog._meta.db_table
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        while self.inserted < rows:
            n = min(50_000, rows - self.inserted)
            frame = window_batch(offset=self.inserted, n=n)
            self.batches.append((self.inserted, n))
            features = json.loads(frame.to_json(orient="records", double_precision=15))
            values = outputs(frame)
            ages = numpy.random.default_rng(self.inserted).uniform(0, 23 * 3600, n)
            with connection.cursor() as cursor, cursor.copy(sql) as copy:
                for row, value, age in zip(features, values, ages, strict=True):
                    copy.write_row((uuid.uuid4(), self.version.pk, "bench-likes", "champion",
                                    "bench", "0" * 64, "", json.dumps(row), "0" * 64,
                                    json.dumps(float(value)), 1.0,
                                    now - timedelta(seconds=float(age))))
            self.inserted += n
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {table}")

    def measure(self, rows: int) -> dict:
        from monitoring.drift import drift_check

        started = time.perf_counter()
        report = drift_check(version_id=self.version.pk)
        seconds = time.perf_counter() - started
        tracemalloc.start()
        drift_check(version_id=self.version.pk)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        drifted = sorted(name for name, f in report.features.items() if f["drifted"])
        return {"rows": rows, "n_current": report.n_current, "seconds": seconds,
                "peak_mib": peak / 2**20, "drifted": drifted}

    def measure_process(self) -> tuple[float, float]:
        """(RSS MiB after Django and the check's imports, peak RSS MiB of the whole check),
        in a fresh process on the same database."""
        # VmHWM (/proc/self/status) is this process image's own peak RSS; ru_maxrss would
        # carry over the forking parent's high-water mark across exec on Linux.
        script = (
            "import re, django; django.setup(); "
            "from monitoring.drift import drift_check; "
            "hwm = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', "
            "open('/proc/self/status').read())[1]); "
            "before = hwm(); "
            f"drift_check(version_id={self.version.pk}); "
            "print(before, hwm())"
        )
        result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=os.environ,
                                capture_output=True, text=True, timeout=600, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"the measuring process failed:\n{result.stderr[-3000:]}")
        before_kib, peak_kib = (int(field) for field in result.stdout.split()[-2:])
        return before_kib / 1024, peak_kib / 1024

    def cleanup(self) -> None:
        from django.db import connections
        with contextlib.suppress(Exception):
            connections.close_all()
        shutil.rmtree(self.tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="10000,100000,300000,1000000",
                        help="comma-separated window sizes, ascending (default %(default)s)")
    parser.add_argument("--chunk-size", type=int,
                        help="MONITORING_CHUNK_SIZE, the streamed path's chunk (not used on "
                             "PostgreSQL; default: the setting's default)")
    parser.add_argument("--no-evidently", action="store_true",
                        help="skip the Evidently peer (and building bench/.venv)")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.rows.split(","))

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)  # unwinds through the clean-up below

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    bench = Bench(chunk_size=args.chunk_size)
    results = []
    try:
        bench.prepare()
        from monitoring.drift import COPY_CHUNK_ROWS
        bench.measure(0)  # warm-up: imports, first queries
        for rows in sizes:
            log(f"growing the prediction log to {rows:,} rows")
            bench.grow_log(rows)
            log(f"drift check over {rows:,} rows")
            result = bench.measure(rows)
            result["rss_before_mib"], result["rss_peak_mib"] = bench.measure_process()
            if not args.no_evidently:
                log(f"Evidently's DataDriftPreset over {rows:,} rows")
                result["evidently"] = evidently_measure(bench.batches)
            results.append(result)
    finally:
        log("stopping PostgreSQL, removing the temp folder")
        bench.cleanup()
    out = io.StringIO()
    out.write(f"drift check, 12 input features + output, reference {REFERENCE_ROWS:,} rows, "
              f"COPY chunk {COPY_CHUNK_ROWS:,} rows, {os.cpu_count()} cores\n\n")
    out.write("| logged rows in window | check (s) | rows/s | peak Python memory (MiB) | "
              "process RSS before / peak (MiB) | drifted features |\n"
              "| ---: | ---: | ---: | ---: | ---: | --- |\n")
    for r in results:
        out.write(f"| {r['n_current']:,} | {r['seconds']:.2f} "
                  f"| {r['n_current'] / r['seconds']:,.0f} "
                  f"| {r['peak_mib']:.1f} | {r['rss_before_mib']:.0f} / {r['rss_peak_mib']:.0f} "
                  f"| {', '.join(r['drifted']) or 'none'} |\n")
    peers = [r for r in results if "evidently" in r]
    if peers:
        out.write("\n| logged rows in window | check (s) | Evidently preset (s) | Evidently / "
                  "check | Evidently RSS frames built / peak (MiB) | Evidently drifted |\n"
                  "| ---: | ---: | ---: | ---: | ---: | --- |\n")
    for r in peers:
        peer = r["evidently"]
        out.write(f"| {peer['rows']:,} | {r['seconds']:.2f} | {peer['seconds']:.2f} "
                  f"| {peer['seconds'] / r['seconds']:.1f}x "
                  f"| {peer['rss_before_mib']:.0f} / {peer['rss_peak_mib']:.0f} "
                  f"| {', '.join(peer['drifted']) or 'none'} |\n")
    print(out.getvalue(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
