"""Reference profiles for drift monitoring (docs/monitoring.md#reference-profile). Pure: no database
access.

A profile describes the rows a version was trained on (for `register_model`, every row of
the given file): each input feature of the schema but the personal ones, and the model's
output on those rows.
It is stored as the version's `reference_profile` and as a JSON artifact. Shape:

    {
      "format": 1,
      "seed": 0,                        # the seed the samples were drawn with
      "rows": 569,                      # rows profiled
      "features": {                     # every input feature that is not personal
        "<name>": <entry>, ...          # (`pii`: its values are never kept), schema order
      },
      "output": <entry>,                # the model's output (see below)
      "target": <entry>                 # the training target's values, when given (outcome
    }                                   # drift: regression numeric, classification categorical)

A numeric entry (schema dtype `float` or `int`):

    {"kind": "numeric",
     "n": 569,                          # finite values profiled
     "missing": 0,                      # NaN, inf or empty values, left out of all figures
     "edges": [e1, ..., ek],            # numpy.quantile(values, [0.1, ..., 0.9]), duplicates
                                        # removed (numpy.unique), ascending, k <= 9
     "counts": [c0, ..., ck],           # values in (-inf, e1], (e1, e2], ..., (ek, +inf):
                                        # k + 1 bins, summing to n
     "mean": 14.1, "std": 3.5,          # numpy.mean and numpy.std (ddof=0); null when n = 0
     "sample": [...]}                   # all values (in row order) when n <= 5000, else
                                        # numpy.random.default_rng(seed).choice(values, 5000,
                                        # replace=False): a fresh generator per entry, so each
                                        # sample can be redrawn on its own

A categorical entry (schema dtype `category` or `bool`; a bool is a category, because
its two values have no bins worth speaking of):

    {"kind": "categorical",
     "n": 569, "missing": 0,
     "counts": {"<str(value)>": count, ...}}   # keys are str() of the values ("True",
                                               # "False" for bools), sorted; summing to n

The output entry is numeric for regression (the predicted value), binary classification
(the positive-class probability) and anomaly detection (the anomaly score); categorical
for multiclass classification (the predicted class).
"""

from collections.abc import Sequence
from typing import Any

import numpy
import pandas

from core.ml.features import bool_column
from core.ml.kinds import REGRESSION

PROFILE_FORMAT = 1
DECILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
SAMPLE_SIZE = 5000
NUMERIC = "numeric"
CATEGORICAL = "categorical"
NUMERIC_DTYPES = ("float", "int")


def bin_edges(values: numpy.ndarray) -> numpy.ndarray:
    """Decile edges with duplicates removed (empty for no values)."""
    if values.size == 0:
        return numpy.array([], dtype=float)
    return numpy.unique(numpy.quantile(values, DECILES))


def bin_counts(values: numpy.ndarray, edges: Sequence[float]) -> numpy.ndarray:
    """Counts over (-inf, e1], (e1, e2], ..., (ek, +inf): len(edges) + 1 bins."""
    # side="left" gives the number of edges strictly below a value: its bin index.
    index = numpy.searchsorted(numpy.asarray(edges, dtype=float), values, side="left")
    return numpy.bincount(index, minlength=len(edges) + 1)


def numeric_entry(*, values: Any, seed: int) -> dict:
    raw = pandas.Series(values).to_numpy(dtype=float, na_value=numpy.nan)
    finite = raw[numpy.isfinite(raw)]
    edges = bin_edges(finite)
    if finite.size > SAMPLE_SIZE:
        sample = numpy.random.default_rng(seed).choice(finite, size=SAMPLE_SIZE, replace=False)
    else:
        sample = finite
    return {
        "kind": NUMERIC,
        "n": int(finite.size),
        "missing": int(raw.size - finite.size),
        "edges": [float(edge) for edge in edges],
        "counts": [int(count) for count in bin_counts(finite, edges)],
        "mean": float(numpy.mean(finite)) if finite.size else None,
        "std": float(numpy.std(finite)) if finite.size else None,
        "sample": [float(value) for value in sample],
    }


def categorical_entry(*, values: Any) -> dict:
    series = pandas.Series(values)
    present = series[series.notna()]
    counts = present.map(str).value_counts()
    return {
        "kind": CATEGORICAL,
        "n": int(present.size),
        "missing": int(series.size - present.size),
        "counts": {str(key): int(counts[key]) for key in sorted(counts.index)},
    }


def bool_labels(values: Any) -> pandas.Series:
    """"True"/"False" (None when missing) from bools, 0/1 numbers (the canonical training
    frame holds bools as 0.0/1.0) or true/false-like strings: the keys a bool feature's
    counts use, and the form the drift check reads logged JSON booleans in."""
    flags = bool_column(pandas.Series(values))
    return pandas.Series([None if pandas.isna(flag) else str(bool(flag)) for flag in flags],
                         index=flags.index, dtype=object)


def target_kind(task: str) -> str:
    """How a task's target is profiled: regression values in numeric bins, class labels
    (and anything else) as categories."""
    return NUMERIC if task == REGRESSION else CATEGORICAL


def reference_profile_build(
    *, frame: pandas.DataFrame, schema: dict, outputs: Any, seed: int,
    output_kind: str = NUMERIC, target: Any = None, target_kind: str = NUMERIC,
) -> dict:
    """Profile the schema's input features in `frame` (personal ones left out), the
    model's `outputs` on its rows and, when given, the training `target` (any length:
    its known values), against which live outcomes are compared (outcome drift).

    `outputs` holds one value per row of `frame`; `output_kind` is "numeric" (regression
    value, positive-class probability, anomaly score) or "categorical" (multiclass class);
    `target_kind` the same for the target (numeric for regression, categorical for class
    labels).
    """
    if output_kind not in (NUMERIC, CATEGORICAL):
        raise ValueError(f"output_kind must be {NUMERIC!r} or {CATEGORICAL!r}, not {output_kind!r}")
    outputs = numpy.asarray(outputs)
    if len(outputs) != len(frame):
        raise ValueError(f"{len(outputs)} outputs for {len(frame)} rows")
    features = {}
    for feature in schema["features"]:
        if not feature.get("input", True) or feature.get("pii"):
            continue
        values = frame[feature["name"]]
        if feature["dtype"] in NUMERIC_DTYPES:
            features[feature["name"]] = numeric_entry(values=values, seed=seed)
        elif feature["dtype"] == "bool":
            features[feature["name"]] = categorical_entry(values=bool_labels(values))
        else:
            features[feature["name"]] = categorical_entry(values=values)
    output = (numeric_entry(values=outputs, seed=seed) if output_kind == NUMERIC
              else categorical_entry(values=outputs))
    profile = {
        "format": PROFILE_FORMAT,
        "seed": int(seed),
        "rows": len(frame),
        "features": features,
        "output": output,
    }
    if target is not None:
        profile["target"] = (numeric_entry(values=numpy.asarray(target, dtype=float), seed=seed)
                             if target_kind == NUMERIC else categorical_entry(values=target))
    return profile
