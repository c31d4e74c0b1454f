"""Turning rows into the frame a model takes (pure: no database access).

One canonical representation, used for training and for serving, so a model always sees
what it was fitted on: numeric and bool features as float64 (bool as 0.0/1.0), categories
as Python strings (object dtype), missing values as NaN / None. Counts of what had to be
treated as missing are returned for the training report.
"""

from dataclasses import dataclass, field

import numpy
import pandas

NUMERIC_DTYPES = ("float", "int")
BOOL_STRINGS = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "yes": 1.0, "no": 0.0}


@dataclass
class CoercionReport:
    """Per feature: values that were NaN, infinite or unparseable, and unknown categories."""

    missing: dict[str, int] = field(default_factory=dict)
    infinite: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)
    unknown_categories: dict[str, int] = field(default_factory=dict)

    def imputed(self) -> dict[str, int]:
        """Values the pipeline treats as missing (imputed, or a category of their own)."""
        names = set(self.missing) | set(self.infinite) | set(self.invalid)
        return {name: self.missing.get(name, 0) + self.infinite.get(name, 0)
                + self.invalid.get(name, 0) for name in sorted(names)}

    def as_dict(self) -> dict:
        return {"imputed": self.imputed(), "missing": self.missing, "infinite": self.infinite,
                "invalid": self.invalid, "unknown_categories": self.unknown_categories}


def bool_column(series: pandas.Series) -> pandas.Series:
    """Bools as 1.0/0.0 from bools, 0/1 numbers or true/false-like strings; else NaN."""
    if pandas.api.types.is_bool_dtype(series):
        return series.astype(float)
    if pandas.api.types.is_numeric_dtype(series):
        return series.astype(float).where(series.isin([0, 1]) | series.isna())
    return series.map(
        lambda v: BOOL_STRINGS.get(str(v).strip().lower()) if pandas.notna(v) else None
    ).astype(float)


def model_frame(frame: pandas.DataFrame, schema: dict, *, inputs_only: bool = True
                ) -> tuple[pandas.DataFrame, CoercionReport]:
    """The schema's features of `frame` in canonical dtypes, with what was coerced.

    Non-finite numbers become NaN (the pipeline's imputer fills them); unparseable values
    become NaN too and are counted as invalid.
    """
    report = CoercionReport()
    columns = {}
    for feature in schema["features"]:
        if inputs_only and not feature.get("input", True):
            continue
        name, dtype = feature["name"], feature["dtype"]
        raw = frame[name]
        was_missing = raw.isna()
        if dtype in NUMERIC_DTYPES or dtype == "bool":
            values = (bool_column(raw) if dtype == "bool"
                      else pandas.to_numeric(raw, errors="coerce").astype(float))
            infinite = numpy.isinf(values.to_numpy())
            invalid = values.isna() & ~was_missing
            values = values.mask(infinite)
            counts = {"missing": int(was_missing.sum()), "infinite": int(infinite.sum()),
                      "invalid": int(invalid.sum())}
            for kind, count in counts.items():
                if count:
                    getattr(report, kind)[name] = count
        else:
            # Object dtype on purpose: pandas would infer its own string dtype, whose
            # missing value is NaN, not None.
            values = pandas.Series([None if missing else str(value) for value, missing
                                    in zip(raw.tolist(), was_missing.tolist(), strict=True)],
                                   index=raw.index, dtype=object)
            declared = feature.get("categories")
            if declared:
                unknown = int((~values.isin(declared) & values.notna()).sum())
                if unknown:
                    report.unknown_categories[name] = unknown
            if was_missing.any():
                report.missing[name] = int(was_missing.sum())
        columns[name] = values
    return pandas.DataFrame(columns, index=frame.index), report
