"""Soak benchmark: a sustained mixed load on the governed API, then a consistency audit.

    .venv/bin/python bench/soak.py [--minutes 10] [--concurrency 8] [--json FILE]

The set-up is bench/serving.py's (its Bench class): a throwaway PostgreSQL server with a
fresh database, migrated and seeded with `seed_demo` in a temp folder, and the governed
app (scripts/local_wsgi.py) under gunicorn with 2 sync workers on 127.0.0.1, here with
PROMETHEUS_MULTIPROC_DIR set as `make run` and production set it.

After a warm-up that loads every model used (and its explainer) in both workers, the
workers' resident memory (VmRSS in /proc/<pid>/status, the master's children) is read,
then `--concurrency` client threads run for `--minutes` a weighted mix of

- single-row predict (most requests), over four demo models;
- 100-row batch predict;
- single-row explain, over the three tree-model demo models;
- outcome feedback on a prediction this run answered earlier (each at most once),

and the workers' memory is read again. The audit then compares the database with what
the clients saw: the PredictionLog rows written during the run against the instances
answered with 200 (plus a copy per live shadow version, if any), and the rows given an
outcome against the feedback answered with 200. Any answer that is not 2xx, and any
connection error, counts as an error and is printed by endpoint, status and error code.

Every loop is bounded (time and a request cap); the server, PostgreSQL and the temp folder
are removed at the end, on Ctrl-C and on SIGTERM.
"""

import argparse
import contextlib
import http.client
import itertools
import json
import os
import random
import signal
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serving import HOST, ROOT, Bench, Plan, log

PREDICT_MODELS = ("engagement-likes", "engagement-comments", "lead-conversion",
                  "engagement-anomaly")
EXPLAIN_MODELS = ("engagement-likes", "engagement-comments", "lead-conversion")
# Share of requests per kind; feedback falls back to a predict while a thread has no
# answered prediction left to give an outcome for.
MIX = {"predict": 0.72, "batch": 0.06, "explain": 0.10, "feedback": 0.12}
BATCH_ROWS = 100
# No run sends more than this, whatever the duration (a bound on the loop, not a target).
MAX_REQUESTS_PER_MINUTE = 60_000
TARGETS = {"errors": 0, "rss_growth_pct": 10.0}
SEED = 20261124


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


# --- traffic ---------------------------------------------------------------------------


@dataclass
class Traffic:
    """Request bodies per model, and the outcome to report for each single-row body."""

    single: dict[str, list[bytes]] = field(default_factory=dict)
    outcomes: dict[str, list] = field(default_factory=dict)
    batch: dict[str, list[bytes]] = field(default_factory=dict)
    explain: dict[str, list[bytes]] = field(default_factory=dict)


def traffic_build() -> Traffic:
    """Bodies from demo rows the models were not trained on (seed 7, as bench/serving.py)."""
    from demo import data as demo_data
    from mlregistry.models import MLModelVersion, Status

    posts = demo_data.demo_posts(seed=7, n=2000)
    leads = demo_data.demo_leads(seed=7, n=2000)
    traffic = Traffic()
    for version in MLModelVersion.objects.filter(model__name__in=PREDICT_MODELS,
                                                 status=Status.PRODUCTION).select_related("model"):
        name, schema = version.model.name, version.feature_schema
        inputs = [f["name"] for f in schema["features"] if f.get("input", True)]
        frame = leads if version.model.task == "binary_classification" else posts
        rows = json.loads(frame[inputs].to_json(orient="records"))
        if version.model.task == "anomaly_detection":
            outcomes = [bool(v) for v in frame["planted_anomaly"]]
        elif version.model.task == "binary_classification":
            outcomes = [str(int(v)) for v in frame[schema["target"]]]
        else:
            outcomes = [float(v) for v in frame[schema["target"]]]
        traffic.single[name] = [json.dumps({"instances": [row]}).encode() for row in rows]
        traffic.outcomes[name] = outcomes
        traffic.batch[name] = [json.dumps({"instances": rows[i:i + BATCH_ROWS]}).encode()
                               for i in range(0, len(rows) - BATCH_ROWS + 1, BATCH_ROWS)]
        if name in EXPLAIN_MODELS:
            traffic.explain[name] = [json.dumps({"instance": row}).encode() for row in rows[:500]]
    missing = set(PREDICT_MODELS) - set(traffic.single)
    if missing:
        raise RuntimeError(f"no production version of {sorted(missing)} after seed_demo")
    return traffic


@dataclass
class Tally:
    """What one client thread saw (merged at the end)."""

    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter = field(default_factory=Counter)  # (endpoint, status, code) -> count
    answered: Counter = field(default_factory=Counter)  # model -> instances answered (200)
    feedback_ok: int = 0

    def merge(self, other: "Tally") -> None:
        for endpoint, values in other.latencies_ms.items():
            self.latencies_ms.setdefault(endpoint, []).extend(values)
        self.errors.update(other.errors)
        self.answered.update(other.answered)
        self.feedback_ok += other.feedback_ok


def _error_code(body: bytes) -> str:
    with contextlib.suppress(ValueError, AttributeError, KeyError, TypeError):
        return json.loads(body)["error"]["code"]
    return "-"


def client(*, port: int, key: str, traffic: Traffic, seed: int, deadline: float,
           budget: itertools.count, max_requests: int, tally: Tally) -> None:
    """One client thread: a seeded mix of requests until the deadline or the shared budget."""
    rng = random.Random(seed)
    kinds, weights = list(MIX), list(MIX.values())
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    # Predictions this thread got answered and may report an outcome for, oldest first.
    pending: deque[tuple[str, object]] = deque(maxlen=5000)
    try:
        while time.perf_counter() < deadline and next(budget) < max_requests:
            kind = rng.choices(kinds, weights)[0]
            if kind == "feedback" and not pending:
                kind = "predict"
            model = outcome = None
            if kind == "feedback":
                prediction_id, actual = pending.popleft()
                path = f"/api/v1/predictions/{prediction_id}/feedback"
                body = json.dumps({"actual": actual}).encode()
            else:
                model = rng.choice(EXPLAIN_MODELS if kind == "explain" else PREDICT_MODELS)
                bodies = {"predict": traffic.single, "batch": traffic.batch,
                          "explain": traffic.explain}[kind][model]
                index = rng.randrange(len(bodies))
                body = bodies[index]
                if kind == "predict":
                    outcome = traffic.outcomes[model][index]
                path = f"/api/v1/models/{model}/{'explain' if kind == 'explain' else 'predict'}"
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body, headers)
                response = conn.getresponse()
                payload = response.read()  # closes the connection when the server said so
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                tally.errors[(kind, type(exc).__name__, "-")] += 1
                continue
            elapsed_ms = (time.perf_counter() - t0) * 1000
            if not 200 <= response.status < 300:
                tally.errors[(kind, response.status, _error_code(payload))] += 1
                continue
            tally.latencies_ms.setdefault(kind, []).append(elapsed_ms)
            if kind == "feedback":
                tally.feedback_ok += 1
            elif kind != "explain":
                predictions = json.loads(payload)["predictions"]
                tally.answered[model] += len(predictions)
                if kind == "predict":
                    pending.append((predictions[0]["prediction_id"], outcome))
    finally:
        conn.close()


def run_load(*, port: int, key: str, traffic: Traffic, seconds: float, concurrency: int,
             seed: int) -> tuple[Tally, float]:
    """`concurrency` client threads for `seconds` (at most MAX_REQUESTS_PER_MINUTE a minute)."""
    budget = itertools.count()  # next() is atomic under the GIL
    max_requests = max(1, round(MAX_REQUESTS_PER_MINUTE * seconds / 60))
    tallies = [Tally() for _ in range(concurrency)]
    started = time.perf_counter()
    threads = [threading.Thread(target=client, daemon=True, kwargs={
        "port": port, "key": key, "traffic": traffic, "seed": seed + i,
        "deadline": started + seconds, "budget": budget, "max_requests": max_requests,
        "tally": tallies[i]}) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)  # a request times out after 60 s
    elapsed = time.perf_counter() - started
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    return total, elapsed


# --- the workers' memory and the database ---------------------------------------------------


def worker_pids(master: int) -> list[int]:
    """The gunicorn master's child processes (its workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):  # a process that just ended
            # The command name in parentheses may hold spaces: split after the last ')'.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == master:
                pids.append(int(entry.name))
    return sorted(pids)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def workers_rss(master: int) -> dict[int, int]:
    return {pid: rss_kib(pid) for pid in worker_pids(master)}


def log_counts() -> dict[str, int]:
    """PredictionLog rows by arm, rows with an outcome, and recorded 5xx failures."""
    from django.db import connection
    from django.db.models import Count

    from predictions.models import PredictionFailure, PredictionLog

    counts = {f"log_{row['arm']}": row["n"] for row in
              PredictionLog.objects.values("arm").annotate(n=Count("pk")).order_by()}
    counts["log_total"] = sum(counts.values())
    counts["feedback"] = (PredictionLog.objects.exclude(arm=PredictionLog.Arm.SHADOW)
                          .filter(actual_at__isnull=False).count())
    counts["failures"] = PredictionFailure.objects.count()
    connection.close()
    return counts


def live_shadows() -> dict[str, int]:
    """Live shadow versions per predict model: each logs a copy of every answered instance."""
    from django.db import connection

    from mlregistry.models import MLModelVersion, Status

    shadows = Counter(MLModelVersion.objects.filter(
        model__name__in=PREDICT_MODELS, status=Status.STAGING,
        is_shadow=True).values_list("model__name", flat=True))
    connection.close()
    return dict(shadows)


# --- report ------------------------------------------------------------------------------


def report(*, tally: Tally, elapsed: float, rss_start: dict[int, int], rss_end: dict[int, int],
           before: dict[str, int], after: dict[str, int], shadows: dict[str, int],
           minutes: float, concurrency: int, load_start: tuple, load_end: tuple
           ) -> tuple[str, dict]:
    """The tables, the targets and the figures as data."""
    requests_ok = sum(len(v) for v in tally.latencies_ms.values())
    errors = sum(tally.errors.values())
    answered = sum(tally.answered.values())
    expected_shadow = sum(n * shadows.get(model, 0) for model, n in tally.answered.items())

    def delta(key: str) -> int:
        return after.get(key, 0) - before.get(key, 0)

    logged_live = delta("log_champion") + delta("log_challenger")
    logged_shadow = delta("log_shadow")
    start_total, end_total = sum(rss_start.values()), sum(rss_end.values())
    growth = (end_total - start_total) / start_total * 100 if start_total else float("nan")
    same_workers = sorted(rss_start) == sorted(rss_end)

    lines = [(f"duration {elapsed / 60:.1f} min at concurrency {concurrency}; "
             f"{requests_ok + errors} requests, {(requests_ok + errors) / elapsed:.1f} req/s; "
             f"errors {errors}"),
             (f"load average (1/5/15 min) at start {'/'.join(f'{x:.2f}' for x in load_start)}, "
             f"at end {'/'.join(f'{x:.2f}' for x in load_end)}; {os.cpu_count()} cores"), "",
             "| endpoint | answered 2xx | req/s | p50 ms | p95 ms | p99 ms |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    names = {"predict": "predict, 1 row", "batch": f"predict, {BATCH_ROWS} rows",
             "explain": "explain, 1 row", "feedback": "feedback"}
    for kind, name in names.items():
        values = tally.latencies_ms.get(kind, [])
        lines.append(f"| {name} | {len(values)} | {len(values) / elapsed:.1f} | "
                     f"{percentile(values, 50):.1f} | {percentile(values, 95):.1f} | "
                     f"{percentile(values, 99):.1f} |")
    if tally.errors:
        lines += ["", "| endpoint | status | code | count |", "| --- | --- | --- | ---: |"]
        for (kind, status, code), count in sorted(tally.errors.items(), key=str):
            lines.append(f"| {kind} | {status} | {code} | {count} |")
    lines += ["", "| gunicorn worker | VmRSS after warm-up | VmRSS at end | growth |",
              "| --- | ---: | ---: | ---: |"]
    for pid in sorted(set(rss_start) | set(rss_end)):
        first, last = rss_start.get(pid), rss_end.get(pid)
        change = f"{(last - first) / first * 100:+.1f} %" if first and last else "-"
        lines.append(f"| {pid} | {_mib(first)} | {_mib(last)} | {change} |")
    lines.append(f"| both | {_mib(start_total)} | {_mib(end_total)} | {growth:+.1f} % |")
    lines += ["", (f"instances answered (200): {answered} "
                  f"({', '.join(f'{m} {n}' for m, n in sorted(tally.answered.items()))}); "
                  f"PredictionLog rows written: {logged_live} champion/challenger + "
                  f"{logged_shadow} shadow (expected shadow rows: {expected_shadow}); "
                  f"feedback answered 200: {tally.feedback_ok}, rows given an outcome: "
                  f"{delta('feedback')}; PredictionFailure rows: {delta('failures')}")]
    passed = {
        "errors": errors == TARGETS["errors"],
        "prediction_log": logged_live == answered and logged_shadow == expected_shadow,
        "feedback": delta("feedback") == tally.feedback_ok,
        "rss_growth": same_workers and growth < TARGETS["rss_growth_pct"],
    }
    lines += ["", "| target | figure | result |", "| --- | ---: | --- |",
              (f"| 0 errors (any non-2xx or connection error) | {errors} | "
              f"{_verdict(passed['errors'])} |"),
              (f"| PredictionLog rows = instances answered (+ shadow copies) | "
              f"{logged_live + logged_shadow} = {answered + expected_shadow} | "
              f"{_verdict(passed['prediction_log'])} |"),
              (f"| outcome rows = feedback answered | {delta('feedback')} = {tally.feedback_ok} | "
              f"{_verdict(passed['feedback'])} |"),
              (f"| worker RSS growth < {TARGETS['rss_growth_pct']:g} % (same workers) | "
              f"{growth:+.1f} % | {_verdict(passed['rss_growth'])} |")]
    if not same_workers:
        lines.append(f"\nworkers changed during the run: {sorted(rss_start)} -> {sorted(rss_end)}")
    data = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "minutes": minutes,
        "concurrency": concurrency, "cores": os.cpu_count(), "elapsed_seconds": elapsed,
        "load_average_start": load_start, "load_average_end": load_end,
        "requests": requests_ok + errors, "errors": errors,
        "errors_by_kind": {f"{k} {s} {c}": n for (k, s, c), n in tally.errors.items()},
        "endpoints": {kind: {"ok": len(v), "p50_ms": percentile(v, 50),
                             "p95_ms": percentile(v, 95), "p99_ms": percentile(v, 99)}
                      for kind, v in tally.latencies_ms.items()},
        "answered_instances": dict(tally.answered), "logged_live": logged_live,
        "logged_shadow": logged_shadow, "expected_shadow": expected_shadow,
        "feedback_ok": tally.feedback_ok, "feedback_rows": delta("feedback"),
        "rss_kib_start": rss_start, "rss_kib_end": rss_end, "rss_growth_pct": growth,
        "passed": passed,
    }
    return "\n".join(lines), data


def _mib(kib: int | None) -> str:
    return f"{kib / 1024:.1f} MiB" if kib else "-"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="length of the measured run (default 10; 1 for a quick run)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup-seconds", type=float, default=60.0,
                        help="the same mix before memory is first read (default 60)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if not 0 < args.minutes <= 120 or not 1 <= args.concurrency <= 64:
        parser.error("--minutes must be in (0, 120] and --concurrency in [1, 64]")

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)  # unwinds through the clean-up below

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # also when started with SIGINT ignored (`&`)
    bench = Bench(model=PREDICT_MODELS[0], plan=Plan())
    try:
        bench.prepare()
        traffic = traffic_build()
        metrics_dir = bench.tmp / "prometheus"
        metrics_dir.mkdir()
        server = bench.start("governed", "local_wsgi:application", f"{ROOT},{ROOT / 'scripts'}",
                             {**bench.env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
        bench.wait_up(server, "/api/v1/health")
        log(f"governed app on :{server.port} (gunicorn pid {server.process.pid}); warm-up "
            f"{args.warmup_seconds:g} s of the mix")
        warm, _ = run_load(port=server.port, key=bench.key, traffic=traffic,
                           seconds=args.warmup_seconds, concurrency=args.concurrency,
                           seed=SEED - 1000)
        if warm.errors:
            log(f"warm-up errors: {dict(warm.errors)}")
        rss_start = workers_rss(server.process.pid)
        before = log_counts()
        shadows = live_shadows()
        load_start = os.getloadavg()
        log(f"workers {sorted(rss_start)}: VmRSS "
            f"{', '.join(_mib(v) for v in rss_start.values())}; soak {args.minutes:g} min "
            f"at concurrency {args.concurrency}")
        tally, elapsed = run_load(port=server.port, key=bench.key, traffic=traffic,
                                  seconds=args.minutes * 60, concurrency=args.concurrency,
                                  seed=SEED)
        load_end = os.getloadavg()
        rss_end = workers_rss(server.process.pid)
        after = log_counts()
    finally:
        log("stopping the server and PostgreSQL, removing the temp folder")
        bench.cleanup()
    table, data = report(tally=tally, elapsed=elapsed, rss_start=rss_start, rss_end=rss_end,
                         before=before, after=after, shadows=shadows, minutes=args.minutes,
                         concurrency=args.concurrency, load_start=load_start,
                         load_end=load_end)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return 0 if all(data["passed"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
