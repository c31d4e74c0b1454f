"""The version page's training details as table rows (pure: no database access).

From what a version stores: its `training_report` (training/trainer.py `prepare` and
`train_recipe`, training/services.py `model_train`: docs/training.md), its
`hyperparameters` and its `feature_schema` (docs/registry.md#feature-schema). A report
shows only what it holds: a version registered from outside the project
(training/registration.py) has none, and its row counts come from its evaluation (the
version's `training_samples`, `metrics["rows_without_target"]`).
"""

import json

# The report's row counts, in the order the rows went through training, with their labels.
DATA_ROWS = [
    ("dataset", "Dataset file"),
    ("dataset_rows", "Dataset rows"),
    ("feedback_rows", "Feedback rows used (labelled predictions)"),
    ("feedback_rows_skipped_as_anomalies", "Feedback rows skipped (outcome was an anomaly)"),
    ("feedback_rows_over_client_share", "Feedback rows skipped (beyond a client's share)"),
    ("feedback_sha256", "Feedback rows SHA256"),
    ("rows_read", "Rows read"),
    ("rows_for_client", "Rows of this client"),
    ("rows_without_target", "Rows without target (dropped)"),
    ("rows_used", "Rows used"),
    ("train_rows", "Training rows"),
    ("validation_rows", "Validation rows"),
]
HASH_KEYS = {"feedback_sha256"}
SPLIT_KEYS = ("train_rows", "validation_rows")
# core.ml.features.CoercionReport.as_dict(): per feature, values treated as missing.
COERCION_COLUMNS = [
    ("missing", "Missing"),
    ("infinite", "Infinite"),
    ("invalid", "Unparseable"),
    ("unknown_categories", "Unknown category"),
    ("imputed", "Imputed (total)"),
]
# Shown elsewhere on the page: production's metrics on these validation rows in "Metrics
# against production" (evidence/metrics.html), the diagnostics in "Validation diagnostics"
# (evidence/validation.html).
SHOWN_ELSEWHERE = {"production_comparison", "validation_diagnostics"}
NOTES_KEY = "notes"


def readable(value) -> str:
    """A stored value as a reviewer reads it: plain numbers and words, lists joined; JSON
    only for what has no plainer form (a list of objects)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        if all(not isinstance(item, dict | list | tuple) for item in value):
            return ", ".join(readable(item) for item in value) or "(empty)"
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, dict):
        return "; ".join(f"{key}: {readable(item)}" for key, item in value.items()) or "(empty)"
    return str(value)


def flattened(values: dict, prefix: str = "") -> list[dict]:
    """Name/value rows of a (nested) dict, by name: nested keys joined with dots
    ("calibration.method"), so no value is a JSON object. Sorted because PostgreSQL's
    jsonb keeps no key order."""
    rows = []
    for key, value in sorted(values.items()):
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows.extend(flattened(value, f"{name}."))
        else:
            rows.append({"name": name, "value": readable(value)})
    return rows


def _count(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return readable(value)


def data_rows(report: dict) -> list[dict]:
    """Label/value rows of the report's row counts; the train/validation split with each
    side's share of the rows used."""
    split = [report.get(key) for key in SPLIT_KEYS]
    split_total = sum(split) if all(isinstance(rows, int) for rows in split) else 0
    rows = []
    for key, label in DATA_ROWS:
        if key not in report:
            continue
        value = _count(report[key])
        if key in SPLIT_KEYS and split_total:
            value += f" ({report[key] / split_total * 100:.0f} % of rows used)"
        rows.append({"key": key, "label": label, "value": value, "hash": key in HASH_KEYS})
    return rows


def coercion_table(report: dict, feature_order: list[str]) -> dict | None:
    """Per feature, the values training treated as missing (core.ml.features.model_frame):
    None when the report does not record them; no rows when nothing had to be."""
    recorded = [key for key, _ in COERCION_COLUMNS if isinstance(report.get(key), dict)]
    if not recorded:
        return None
    named = {name for key in recorded for name in report[key]}
    names = [name for name in feature_order if name in named] + sorted(
        named - set(feature_order))
    return {
        "columns": [label for key, label in COERCION_COLUMNS if key in recorded],
        "rows": [{"feature": name,
                  "counts": [_count(report[key].get(name, 0)) if report[key].get(name)
                             else "–" for key in recorded]}
                 for name in names],
    }


def other_rows(report: dict) -> list[dict]:
    """What the report holds beyond the known keys (a newer trainer's additions), readable,
    so nothing recorded is hidden."""
    known = ({key for key, _ in DATA_ROWS} | {key for key, _ in COERCION_COLUMNS}
             | SHOWN_ELSEWHERE | {NOTES_KEY})
    return [{"name": key.replace("_", " "), "value": readable(value)}
            for key, value in report.items() if key not in known]


def allowed_values(feature: dict) -> str:
    """What serving accepts for a feature: its categories, its range, or any value."""
    dtype = feature.get("dtype")
    if dtype == "bool":
        return "true, false"
    if dtype == "category":
        if feature.get("pii"):
            return "any (personal: values never listed)"
        return ", ".join(feature.get("categories") or []) or "any (not enumerated)"
    low, high = feature.get("min"), feature.get("max")
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None:
        return f"≥ {low}"
    if high is not None:
        return f"≤ {high}"
    return "any number"


def feature_rows(schema: dict) -> list[dict]:
    return [{"name": feature.get("name"), "dtype": feature.get("dtype"),
             "input": feature.get("input", True), "protected": feature.get("protected", False),
             "pii": feature.get("pii", False), "allowed": allowed_values(feature)}
            for feature in schema.get("features", [])]


def training_details_build(*, training_report: dict | None, hyperparameters: dict | None,
                           feature_schema: dict | None, metrics: dict | None,
                           training_samples: int | None) -> dict:
    """The tables of the version page's "Training details" (evidence/training_details.html)."""
    report = training_report or {}
    hyperparameters = hyperparameters or {}
    schema = feature_schema or {}
    external = bool(hyperparameters.get("external"))
    data = data_rows(report)
    if not data:
        # No row counts recorded (registered from outside, or before reports existed): the
        # count the registration itself stored.
        data = [{"key": "training_samples", "hash": False,
                 "label": "Labelled rows (metrics computed on)" if external
                 else "Training samples", "value": _count(training_samples)}]
    left_out = (metrics or {}).get("rows_without_target")
    if "rows_without_target" not in report and left_out is not None:
        # register_model keeps unlabelled rows in the profile and counts them with the metrics.
        data.append({"key": "rows_without_target", "hash": False, "value": _count(left_out),
                     "label": "Rows without target (left out of the metrics)"})
    notes = report.get(NOTES_KEY)
    return {
        "external": external,
        "has_report": bool(report),
        "data": data,
        "coercion": coercion_table(report, [f.get("name") for f in schema.get("features", [])]),
        "notes": (flattened(notes) if isinstance(notes, dict)
                  else [{"name": "notes", "value": readable(notes)}] if notes else []),
        "other": other_rows(report),
        "hyperparameters": flattened(hyperparameters),
        "target": schema.get("target"),
        "features": feature_rows(schema),
    }
