"""Drift checks (docs/monitoring.md#drift): a live version's logged inputs and outputs over a window
against its reference profile, stored as one `DriftReport` per check.

The window is [now - DRIFT_WINDOW_HOURS, now] of the version's prediction log, every live
arm (champion, challenger, shadow); pinned requests (docs/api.md#version-pinning) are
backtests and reports, not the traffic the version serves, and are left out. Its rows go
through one accumulator per feature (monitoring.stats) in chunks, so memory does not grow
with the window. Feature values are extracted inside the database (the JSON key as text),
which spares decoding each row's whole JSON document in Python. Two ways to read them, with
the same figures:

- PostgreSQL: `COPY ... TO STDOUT` parsed by pandas' C parser (monitoring.pg_copy),
  `COPY_CHUNK_ROWS` rows at a time: numbers arrive as float64 columns and categories are
  counted per distinct text, so no Python object is made per number;
- other databases (SQLite, the embedded default): the queryset streamed in chunks of
  MONITORING_CHUNK_SIZE, one Python value per field.

The output compared is the one the profile holds (core.ml.metrics.
model_outputs): the regression value, the positive-class probability of a binary
classifier, the predicted class of a multiclass one, the anomaly score. PII features are
never logged, so they are not checked.
"""

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

import numpy
import pandas
from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, Func, QuerySet, TextField
from django.utils import timezone

from core.errors import VersionNotFoundError
from core.ml import kinds
from mlregistry import selectors as registry
from mlregistry.models import MLModelVersion
from monitoring import pg_copy, stats
from monitoring.alerts import alert_raise
from monitoring.models import Alert, DriftReport
from predictions.models import PredictionLog
from predictions.routing import PINNED_ARM

logger = logging.getLogger("pulselytics.monitoring")

# A bool feature comes back from the database as JSON text ('true', PostgreSQL) or as an
# integer (SQLite); the profile keys it as str(bool). (1 and 0 hash as True and False.)
_BOOL_TEXT = {"true": "True", "false": "False", True: "True", False: "False"}
# Rows per parsed COPY chunk. pandas' parser holds a chunk's text and a pointer per field
# outside Python's heap (about 0.5 MiB per 1,000 rows of 13 columns, measured): 20,000
# rows keep that near 10 MiB; 10,000 cost 20 % more time on 1M rows, 50,000 add 13 MiB.
COPY_CHUNK_ROWS = 20_000


class JSONText(Func):
    """A JSON column's member `key` (or, without a key, the whole value) as text on
    PostgreSQL and as its SQL value on SQLite; NULL when absent.

    Django's key transforms read a digit-only key ("0", "1": class labels) as an array
    index; here the key is always a member name.
    """

    output_field = TextField()

    def __init__(self, column: str, key: str | None = None) -> None:
        super().__init__(F(column))
        self.key = key

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "postgresql":
            if self.key is None:
                return f"({sql} #>> '{{}}')", params
            return f"({sql} ->> %s::text)", [*params, self.key]
        path = "$" if self.key is None else "$." + json.dumps(self.key)
        return f"JSON_EXTRACT({sql}, %s)", [*params, path]


def _as_numbers(values: tuple) -> numpy.ndarray:
    """Numbers, from JSON text or numbers; anything unparseable becomes NaN (missing)."""
    return pandas.to_numeric(pandas.Series(values, dtype=object), errors="coerce").to_numpy(
        dtype=float, na_value=numpy.nan)


def _as_bool_text(values: tuple) -> list:
    return [None if value is None else _BOOL_TEXT.get(value, str(value)) for value in values]


def _as_given(values: tuple) -> tuple:
    return values


def _bool_from_text(text: str) -> str:
    return _BOOL_TEXT.get(text, text)


def _text_as_given(text: str) -> str:
    return text


@dataclass
class _Column:
    """One figure set of the report: what to select, how to decode it, where to count it.

    `decode` turns a chunk of the values the queryset gives into what the window counts;
    `from_text` does the same for one category as PostgreSQL prints it (the COPY path)."""

    name: str
    expression: object
    decode: Callable[[tuple], object]
    window: stats.NumericWindow | stats.CategoricalWindow
    from_text: Callable[[str], object] = _text_as_given


def _feature_columns(version: MLModelVersion) -> list[_Column]:
    profile = (version.reference_profile or {}).get("features") or {}
    columns = []
    for feature in version.feature_schema.get("features", []):
        name, entry = feature["name"], profile.get(feature["name"])
        if entry is None or not feature.get("input", True) or feature.get("pii"):
            continue
        window = stats.window_for(entry)
        if window.kind == stats.NUMERIC:
            column = _Column(name, JSONText("features", name), _as_numbers, window)
        elif feature["dtype"] == "bool":
            column = _Column(name, JSONText("features", name), _as_bool_text, window,
                             _bool_from_text)
        else:
            column = _Column(name, JSONText("features", name), _as_given, window)
        columns.append(column)
    return columns


def _positive_class(value, keys) -> str:
    """The probabilities key of `classes_[1]`: the greater of the two labels, compared as
    the labels' own type (the logged `value` is one of them), as scikit-learn sorts them."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(keys, key=float)
    return max(keys)  # strings; "True" > "False" as True > False


def _output_column(version: MLModelVersion, logs: QuerySet) -> _Column | None:
    entry = (version.reference_profile or {}).get("output")
    if not entry:
        return None
    window = stats.window_for(entry)
    task = version.model.task
    if task == kinds.BINARY:
        first = logs.filter(probabilities__isnull=False).values_list("value", "probabilities")[:1]
        if not first:
            return None
        value, probabilities = first[0]
        expression = JSONText("probabilities", _positive_class(value, list(probabilities)))
        return _Column("output", expression, _as_numbers, window)
    if task == kinds.MULTICLASS:
        # The queryset decodes the JSON value; PostgreSQL prints it as JSON.
        return _Column("output", F("value"), _as_given, window, json.loads)
    if task == kinds.ANOMALY:
        return _Column("output", F("anomaly_score"), _as_numbers, window)
    return _Column("output", JSONText("value"), _as_numbers, window)


def _chunks(queryset: QuerySet, size: int) -> Iterator[list[tuple]]:
    rows = queryset.iterator(chunk_size=size)
    while chunk := list(islice(rows, size)):
        yield chunk


def _stream(logs: QuerySet, columns: list[_Column]) -> int:
    """Feed every row of `logs` to the columns' windows, one Python value per field;
    returns the number of rows."""
    rows = 0
    selected = logs.values_list(*[column.expression for column in columns])
    for chunk in _chunks(selected, settings.MONITORING_CHUNK_SIZE):
        rows += len(chunk)
        for column, values in zip(columns, zip(*chunk, strict=True), strict=True):
            column.window.add(column.decode(values))
    return rows


def _copy(logs: QuerySet, columns: list[_Column]) -> int:
    """Feed every row of `logs` to the columns' windows through PostgreSQL's COPY:
    numbers as float64 columns, categories as counts per distinct text; returns the number
    of rows."""
    rows = 0
    names = list(range(len(columns)))
    frames = pg_copy.queryset_frames(
        queryset=logs.values_list(*[column.expression for column in columns]), names=names,
        text_names=[name for name, column in zip(names, columns, strict=True)
                    if column.window.kind == stats.CATEGORICAL],
        chunk_rows=COPY_CHUNK_ROWS)
    for frame in frames:
        rows += len(frame)
        for name, column in zip(names, columns, strict=True):
            if column.window.kind == stats.NUMERIC:
                column.window.add(pg_copy.numbers(frame[name]))
                continue
            counts = frame[name].value_counts(dropna=False)
            column.window.add_counts(
                (None if not isinstance(text, str)
                 else column.from_text(pg_copy.copy_text_unescape(text)), int(count))
                for text, count in counts.items())
    return rows


def _count(logs: QuerySet, columns: list[_Column]) -> int:
    """Feed the window's rows to the columns' windows; returns the number of rows."""
    if not columns:
        return logs.count()
    if connections[logs.db].vendor == "postgresql":
        return _copy(logs, columns)
    return _stream(logs, columns)


def _alert(report: DriftReport) -> None:
    drifted = {name: {"severity": figures["severity"], "psi": figures["psi"]}
               for name, figures in report.features.items() if figures["drifted"]}
    critical = any(f["severity"] == stats.SEVERITY_CRITICAL for f in drifted.values())
    if not (report.dataset_drift or critical):
        return
    what = "dataset drift" if report.dataset_drift else "critical drift"
    alert_raise(
        kind=Alert.Kind.DRIFT,
        severity=Alert.Severity.CRITICAL if critical else Alert.Severity.WARNING,
        model_name=report.model_name, version=report.version,
        message=(f"{report.model_name} {report.version}: {what} in {len(drifted)} of "
                 f"{len(report.features)} features ({', '.join(sorted(drifted))}) over "
                 f"{report.n_current} predictions"),
        payload={"report_id": report.pk, "window_start": report.window_start.isoformat(),
                 "window_end": report.window_end.isoformat(), "n_current": report.n_current,
                 "dataset_drift": report.dataset_drift, "drifted": drifted,
                 "prediction": None if report.prediction is None else {
                     key: report.prediction[key] for key in ("drifted", "severity", "psi")}},
    )


@dataclass(frozen=True)
class DriftFigures:
    """A version's logged inputs and outputs over a window against its reference profile.
    `features` and `prediction` are empty while fewer than DRIFT_MIN_SAMPLES rows say
    anything (`sufficient` false)."""

    n_current: int
    sufficient: bool
    features: dict
    prediction: dict | None
    dataset_drift: bool

    @property
    def drifted_features(self) -> list[str]:
        return sorted(name for name, figures in self.features.items() if figures["drifted"])

    @property
    def critical(self) -> bool:
        return any(figures["drifted"] and figures["severity"] == stats.SEVERITY_CRITICAL
                   for figures in self.features.values())


def drift_figures(*, version: MLModelVersion, window_start: datetime, window_end: datetime,
                  arms: list[str] | None = None) -> DriftFigures:
    """The drift statistics of `version`'s rows in [window_start, window_end] (of the given
    arms; default: every arm but pinned), without storing anything."""
    logs = PredictionLog.objects.filter(
        model_version_id=version.pk, created_at__gte=window_start, created_at__lte=window_end,
    ).order_by()
    logs = logs.filter(arm__in=arms) if arms is not None else logs.exclude(arm=PINNED_ARM)
    columns = _feature_columns(version)
    output = _output_column(version, logs)
    n_current = _count(logs, columns + ([output] if output else []))
    sufficient = n_current >= settings.DRIFT_MIN_SAMPLES
    features = {column.name: column.window.result() for column in columns} if sufficient else {}
    return DriftFigures(n_current=n_current, sufficient=sufficient, features=features,
                        prediction=output.window.result() if sufficient and output else None,
                        dataset_drift=stats.dataset_drift(features))


def drift_check(*, version_id: int, now: datetime | None = None) -> DriftReport:
    """Check one version's window ending at `now` (default: now), store the report, and
    raise a drift alert on dataset drift or a critical feature."""
    try:
        version = MLModelVersion.objects.select_related("model").get(pk=version_id)
    except MLModelVersion.DoesNotExist:
        raise VersionNotFoundError(f"no model version with id {version_id}",
                                   details={"version_id": version_id}) from None
    window_end = now or timezone.now()
    window_start = window_end - timedelta(hours=settings.DRIFT_WINDOW_HOURS)
    figures = drift_figures(version=version, window_start=window_start, window_end=window_end)
    with transaction.atomic():
        report = DriftReport.objects.create(
            model_version=version, model_name=version.model.name, version=version.version,
            window_start=window_start, window_end=window_end,
            n_reference=int((version.reference_profile or {}).get("rows") or 0),
            n_current=figures.n_current,
            status=(DriftReport.Status.OK if figures.sufficient
                    else DriftReport.Status.INSUFFICIENT_DATA),
            dataset_drift=figures.dataset_drift, features=figures.features,
            prediction=figures.prediction, created_at=timezone.now(),
        )
        _alert(report)
    logger.info("drift check", extra={"model": report.model_name, "version": report.version,
                                      "status": report.status, "n_current": figures.n_current,
                                      "dataset_drift": report.dataset_drift})
    return report


def drift_check_all(*, now: datetime | None = None, model_name: str | None = None
                    ) -> list[DriftReport]:
    """Check every live version (champion, challengers, shadows), or those of one model,
    over the same window."""
    if model_name is not None:
        registry.model_get(name=model_name)  # an unknown name is an error, not "nothing live"
    now = now or timezone.now()
    return [drift_check(version_id=live.version_id, now=now)
            for live in registry.live_versions_all()
            if model_name is None or live.model_name == model_name]
