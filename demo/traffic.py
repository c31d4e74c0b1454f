"""Synthetic traffic for the demo models (`manage.py simulate_traffic`), so that the
dashboard has something to show.

`traffic_plan` is pure: it draws one instance per predict request from the demo data generators
(demo.data) run with the demo's own seed but another row count than seed_demo trained on: the same
clients and accounts (whose followers and usual engagement are drawn per seed, so another seed would
look like drift by itself), new posts and leads. It shifts two numeric features of some requests by
about one standard deviation when asked to (input drift the drift check flags), and keeps each row's
true outcome from the same generator for the feedback. `traffic_send` sends the plan over HTTP at a
bounded rate, to this machine only (`local_base_url`), and posts the outcomes of a share of the
answered predictions as feedback.
"""

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy
import pandas

from core.errors import ValidationError
from core.ml.recipes import recipe_get
from demo import data as demo_data

MAX_COUNT = 10_000
MAX_RATE = 200.0
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_SEED = 1  # picks the rows of each request from the pool
# Rows generated per dataset (with demo_data.DEFAULT_SEED); requests draw from them. Not
# seed_demo's row counts (the generators' defaults), so these are not its training rows.
POOL_ROWS = 2000
DRIFT_SHARE = 0.5  # share of each model's requests shifted under --drift
REQUEST_TIMEOUT_SECONDS = 10


class NonLocalTargetError(ValidationError):
    code = "non_local_target"


class UnsupportedModelError(ValidationError):
    code = "unsupported_model"


@dataclass(frozen=True)
class DemoSource:
    """Where a demo recipe's traffic comes from: its dataset, the outcome column, and the
    two numeric features that drift."""

    dataset: str  # "posts" or "leads"
    target: str
    drift: tuple[str, str]


DEMO_SOURCES = {
    "engagement-likes": DemoSource("posts", "likes", ("caption_length", "hashtags")),
    "engagement-comments": DemoSource("posts", "comments", ("caption_length", "hashtags")),
    "engagement-anomaly": DemoSource("posts", "planted_anomaly", ("likes", "comments")),
    "lead-conversion": DemoSource("leads", "converted",
                                  ("pages_viewed", "days_since_first_touch")),
}
DEFAULT_MODELS = tuple(DEMO_SOURCES)
GENERATORS = {"posts": demo_data.demo_posts, "leads": demo_data.demo_leads}


@dataclass(frozen=True)
class PlannedRequest:
    """One predict request and what to do with its answer."""

    model: str
    instance: dict
    actual: Any  # the true outcome, posted as feedback when `feedback` is set
    drifted: bool
    feedback: bool

    @property
    def body(self) -> dict:
        return {"instances": [self.instance]}


def spread(n: int, share: float) -> numpy.ndarray:
    """`n` flags of which floor(n * share) are set, spread evenly (deterministic)."""
    steps = numpy.floor(numpy.arange(n + 1) * share)
    return numpy.diff(steps) > 0


def _native(value):
    return value.item() if isinstance(value, numpy.generic) else value


def _model_source(model: str) -> tuple[DemoSource, str, str]:
    """(source, recipe, client) of a demo model name: a recipe, or `<recipe>--<client>`."""
    recipe, _, client = model.partition("--")
    if recipe not in DEMO_SOURCES:
        raise UnsupportedModelError(
            f"simulate_traffic knows the demo models only ({', '.join(DEFAULT_MODELS)}, "
            f"or <model>--<client>), not {model!r}", details={"model": model})
    return DEMO_SOURCES[recipe], recipe, client


def _model_requests(*, model: str, n: int, frames: dict[str, pandas.DataFrame],
                    rng: numpy.random.Generator, drift: bool, feedback: float
                    ) -> list[PlannedRequest]:
    source, recipe, client = _model_source(model)
    frame = frames[source.dataset]
    if client:
        frame = frame[frame["client_id"] == client]
        if frame.empty:
            raise UnsupportedModelError(f"the demo data has no rows of client {client!r}",
                                        details={"model": model})
    features = {f.name: f for f in recipe_get(recipe).features}
    rows = frame.iloc[rng.integers(0, len(frame), size=n)].reset_index(drop=True)
    inputs = rows[list(features)].copy()
    shifted = spread(n, DRIFT_SHARE) if drift else numpy.zeros(n, dtype=bool)
    for name in source.drift:
        feature = features[name]
        moved = inputs.loc[shifted, name] + frame[name].std()
        moved = moved.clip(lower=feature.minimum, upper=feature.maximum)
        inputs[name] = inputs[name].astype(float)
        inputs.loc[shifted, name] = moved
        if feature.dtype == "int":
            inputs[name] = inputs[name].round().astype(numpy.int64)
    with_feedback = spread(n, feedback)
    return [
        PlannedRequest(model=model, instance={k: _native(v) for k, v in instance.items()},
                       actual=_native(actual), drifted=bool(moved_row),
                       feedback=bool(asked))
        for instance, actual, moved_row, asked in zip(
            inputs.to_dict("records"), rows[source.target].tolist(), shifted, with_feedback,
            strict=True)
    ]


def traffic_plan(*, models: Sequence[str], count: int, seed: int = DEFAULT_SEED,
                 drift: bool = False, feedback: float = 0.0) -> list[PlannedRequest]:
    """`count` single-instance predict requests taking turns over `models`, each with its
    true outcome; with `drift`, DRIFT_SHARE of each model's requests have their two drift
    features shifted by one standard deviation; `feedback` of each model's requests are
    marked for feedback. Deterministic for a seed."""
    if not 1 <= count <= MAX_COUNT:
        raise ValidationError(f"count must be between 1 and {MAX_COUNT}, got {count}")
    if not 0.0 <= feedback <= 1.0:
        raise ValidationError(f"feedback must be a fraction between 0 and 1, got {feedback}")
    models = list(dict.fromkeys(models))
    if not models:
        raise ValidationError("name at least one model")
    for model in models:
        _model_source(model)
    datasets = sorted({_model_source(model)[0].dataset for model in models})
    frames = {name: GENERATORS[name](seed=demo_data.DEFAULT_SEED, n=POOL_ROWS)
              for name in datasets}
    rng = numpy.random.default_rng(seed)
    queues = [
        _model_requests(model=model, n=len(range(i, count, len(models))), frames=frames,
                        rng=rng, drift=drift, feedback=feedback)
        for i, model in enumerate(models)
    ]
    return [queues[i % len(models)][i // len(models)] for i in range(count)]


def local_base_url(url: str) -> str:
    """The server's base URL without a trailing slash; anything but plain http(s) to
    127.0.0.1, localhost or ::1 is refused (the generator must not load someone else's
    server)."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - parsing the port validates it
    except ValueError as exc:
        raise NonLocalTargetError(f"not a valid URL: {url!r} ({exc})") from None
    if (parts.scheme not in ("http", "https") or parts.hostname not in LOCAL_HOSTS
            or parts.username or parts.password or parts.query or parts.fragment):
        raise NonLocalTargetError(
            f"simulate_traffic only sends to http://127.0.0.1, http://localhost or "
            f"http://[::1] (any port), not {url!r}", details={"url": url})
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead off this machine with the API key: it is an error."""

    def redirect_request(self, *args, **kwargs):
        return None


# No proxies either: a proxy from the environment would carry the requests elsewhere.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def post_json(url: str, payload: dict, key: str) -> tuple[int, Any]:
    """POST JSON with the API key; returns (status, parsed body or None). Network failures
    raise OSError."""
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST",
        headers={"Authorization": f"Api-Key {key}", "Content-Type": "application/json"})
    try:
        with _opener.open(request, timeout=REQUEST_TIMEOUT_SECONDS) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as answer:
        status, raw = answer.code, answer.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def _outcome(status: int, body: Any) -> str:
    """"ok", or the error as "<status> <code>"."""
    if 200 <= status < 300:
        return "ok"
    code = body.get("error", {}).get("code") if isinstance(body, dict) else None
    return f"{status} {code}" if code else str(status)


@dataclass
class TrafficSummary:
    sent: int = 0
    ok: int = 0
    errors: Counter = field(default_factory=Counter)  # "<status> <code>" -> requests
    feedback_sent: int = 0
    feedback_ok: int = 0
    feedback_errors: Counter = field(default_factory=Counter)
    elapsed_seconds: float = 0.0
    unreachable: str = ""  # why sending stopped early: the server could not be reached


def traffic_send(*, plan: Sequence[PlannedRequest], base_url: str, key: str, rate: float,
                 post: Callable[[str, dict, str], tuple[int, Any]] = post_json,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> TrafficSummary:
    """Send the plan's predict requests one after another, the i-th not before i / rate
    seconds; after each answered one marked for feedback, post its true outcome. Stops at
    the first network error (the server is gone)."""
    if not (0 < rate <= MAX_RATE and math.isfinite(rate)):
        raise ValidationError(f"rate must be above 0 and at most {MAX_RATE:g} requests per "
                              f"second, got {rate}")
    base_url = local_base_url(base_url)
    summary, start = TrafficSummary(), clock()
    for i, planned in enumerate(plan):
        delay = start + i / rate - clock()
        if delay > 0:
            sleep(delay)
        model = urllib.parse.quote(planned.model, safe="")
        try:
            status, body = post(f"{base_url}/api/v1/models/{model}/predict", planned.body, key)
            summary.sent += 1
            outcome = _outcome(status, body)
            if outcome != "ok":
                summary.errors[outcome] += 1
                continue
            summary.ok += 1
            if planned.feedback:
                _feedback(summary, base_url=base_url, key=key, post=post, body=body,
                          actual=planned.actual)
        except OSError as exc:
            summary.unreachable = f"{type(exc).__name__}: {exc}"
            break
    summary.elapsed_seconds = clock() - start
    return summary


def _feedback(summary: TrafficSummary, *, base_url: str, key: str, post, body: dict,
              actual) -> None:
    for prediction in body["predictions"]:
        prediction_id = urllib.parse.quote(str(prediction["prediction_id"]), safe="")
        status, answer = post(f"{base_url}/api/v1/predictions/{prediction_id}/feedback",
                              {"actual": actual}, key)
        summary.feedback_sent += 1
        outcome = _outcome(status, answer)
        if outcome == "ok":
            summary.feedback_ok += 1
        else:
            summary.feedback_errors[outcome] += 1
