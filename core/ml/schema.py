"""Feature schemas and semantic versions (pure: no database access).

A schema is stored as JSON on each version:

    {"target": "converted",
     "features": [{"name": "pages_viewed", "dtype": "int", "categories": null,
                   "min": null, "max": null, "pii": false, "protected": false,
                   "input": true}, ...]}

`input` is false for a protected attribute the model does not take as input (kept for
fairness audits only). `categories` null means any string is taken: a personal (`pii`)
feature never lists its values, nor does a data-derived category with more distinct
values than the caller's maximum (docs/registry.md#personal-data).

A regression version whose target is a count also holds `"output_bounds": {"lower": 0}`:
it is never answered below 0 (`output_lower_bound`, docs/training.md#count-targets).
Schemas stored without the key declare no bound.
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas

DTYPES = ("float", "int", "bool", "category")


def feature_spec(
    *, name: str, dtype: str, categories: list | None = None, minimum: float | None = None,
    maximum: float | None = None, pii: bool = False, protected: bool = False, input: bool = True,
) -> dict:
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r} for feature {name!r}")
    listed = dtype == "category" and categories is not None and not pii
    return {
        "name": name, "dtype": dtype,
        "categories": sorted(str(c) for c in categories) if listed else None,
        "min": minimum, "max": maximum, "pii": pii, "protected": protected, "input": input,
    }


def _dtype_of(series: "pandas.Series") -> str:
    # Imported here: the registry imports this module at start-up, with no frame to read.
    import pandas  # noqa: PLC0415

    if pandas.api.types.is_bool_dtype(series):
        return "bool"
    if pandas.api.types.is_integer_dtype(series):
        return "int"
    if pandas.api.types.is_float_dtype(series):
        return "float"
    return "category"


def schema_from_frame(
    frame: "pandas.DataFrame", *, target: str, input_features: Iterable[str] | None = None,
    protected: Iterable[str] = (), pii: Iterable[str] = (),
    category_enum_max: int | None = None,
) -> dict:
    """Derive a schema from training data.

    `input_features` (in order) are what the model takes; by default every column but the
    target and the protected ones. Protected columns that are not inputs are kept as
    non-input features for fairness audits. A category column with more distinct values
    than `category_enum_max` (None: no maximum) gets no allowed list.
    """
    protected, pii = list(protected), set(pii)
    missing = [c for c in [target, *protected] if c not in frame.columns]
    if missing:
        raise KeyError(f"column(s) not in the data: {', '.join(missing)}")
    if input_features is None:
        input_features = [c for c in frame.columns if c != target and c not in protected]
    input_features = list(input_features)
    absent = [c for c in input_features if c not in frame.columns]
    if absent:
        raise KeyError(f"the model expects column(s) the data lacks: {', '.join(absent)}")
    columns = input_features + [c for c in protected if c not in input_features]
    features = []
    for name in columns:
        series = frame[name]
        dtype = _dtype_of(series)
        categories = (series.dropna().astype(str).unique().tolist()
                      if dtype == "category" else None)
        if categories and category_enum_max is not None and len(categories) > category_enum_max:
            categories = None
        features.append(feature_spec(
            name=name, dtype=dtype, categories=categories,
            pii=name in pii, protected=name in protected, input=name in input_features,
        ))
    return {"target": target, "features": features}


# The bounds of a count target's output: a count is never below 0.
COUNT_OUTPUT_BOUNDS = {"lower": 0}


def output_lower_bound(schema: dict | None) -> float | None:
    """The lowest value a regression version answers (its schema's `output_bounds`), or
    None when it declares none (every schema stored before bounds existed)."""
    lower = ((schema or {}).get("output_bounds") or {}).get("lower")
    return None if lower is None else float(lower)


def input_feature_names(schema: dict) -> list[str]:
    return [f["name"] for f in schema["features"] if f.get("input", True)]


def schema_signature(schema: dict) -> list[tuple]:
    """What makes two schemas the same for versioning: inputs, types and categories."""
    return [
        (f["name"], f["dtype"], tuple(f.get("categories") or ()))
        for f in schema.get("features", []) if f.get("input", True)
    ]


def parse_semver(version: str) -> tuple[int, int, int]:
    major, minor, patch = (int(part) for part in version.split("."))
    return major, minor, patch


def next_version(existing: list[dict], schema: dict) -> str:
    """Minor bump when the schema is unchanged, major bump when it changed
    (docs/registry.md#versioning).

    `existing` holds {"version", "feature_schema"} of the model's versions.
    """
    if not existing:
        return "1.0.0"
    latest = max(existing, key=lambda v: parse_semver(v["version"]))
    major, minor, _ = parse_semver(latest["version"])
    if schema_signature(latest["feature_schema"]) == schema_signature(schema):
        return f"{major}.{minor + 1}.0"
    return f"{major + 1}.0.0"
