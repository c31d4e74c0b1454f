"""Geometry of the version page's inline SVG charts (pure: no database access).

- `importance_chart`: mean |SHAP contribution| per feature, this version's bar above
  production's, on an x axis of "nice" ticks (1, 2 or 5 × 10^k) with gridlines.
- `distribution_charts`: per input feature, the share of training rows per bin (numeric)
  or per category, this version beside production's, from both reference profiles
  (core/ml/profile.py). Production's numeric values are counted on this version's bins,
  so both bars of a row describe the same interval.

The templates under templates/admin/mlregistry/mlmodelversion/evidence/ draw what these
return; every coordinate is a string with one decimal, ready for an SVG attribute.
"""

import math
from itertools import pairwise

# Importance chart: the feature's name left of the bars, each bar's value right of it.
CHART_WIDTH, CHART_LABEL_WIDTH, CHART_VALUE_WIDTH = 720, 190, 150
CHART_ROW_HEIGHT, CHART_BAR_HEIGHT, CHART_TOP = 30, 11, 26
CHART_AXIS_HEIGHT = 44  # tick labels and the axis title below the last row
# A bar this many times longer than every other feature's squashes them into slivers:
# the chart then says so and the printed values carry the comparison.
DOMINANCE_RATIO = 5.0
# A non-zero bar is drawn at least this wide, so it is never mistaken for a zero.
MIN_BAR_WIDTH = 1.0

# Distribution charts: bin (or category) labels left, bars, share printed right of each bar.
DIST_WIDTH, DIST_LABEL_WIDTH, DIST_VALUE_WIDTH = 400, 118, 56
DIST_BAR_HEIGHT, DIST_BAR_GAP, DIST_ROW_GAP, DIST_TOP = 8, 1, 6, 4
# More categories than this: the largest are drawn and the rest summed in one row.
DIST_MAX_CATEGORIES = 12

NICE_MANTISSAS = (1, 2, 5)
NUMERIC, CATEGORICAL = "numeric", "categorical"  # core.ml.profile's entry kinds


def significant(value: float | None, digits: int = 3) -> str:
    """`value` rounded to `digits` significant digits, in fixed notation between 0.001 and a
    million (thousands separated), scientific outside; "–" for None."""
    if value is None:
        return "–"
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    rounded = round(value, digits - 1 - math.floor(math.log10(abs(value))))
    magnitude = math.floor(math.log10(abs(rounded)))  # 9.996 rounds up to 10.0
    if not -3 <= magnitude < 6:
        return f"{rounded:.{digits - 1}e}"
    return f"{rounded:,.{max(0, digits - 1 - magnitude)}f}"


def edge_label(value: float) -> str:
    """A bin edge: three significant digits without trailing zeros ("2", not "2.00")."""
    text = significant(value)
    if "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return text


def nice_ticks(largest: float, *, most_intervals: int = 5) -> tuple[list[float], int]:
    """Ticks 0, s, 2s, ... up to the first at or beyond `largest`, for the smallest step s
    of the form 1, 2 or 5 × 10^k that needs at most `most_intervals` intervals.

    With steps growing by at most 2.5 times, the chosen one needs at least 3 intervals:
    4 to 6 ticks. Returns the ticks and k (the decimals a tick label needs when k < 0).
    """
    if not largest > 0:
        largest = 1.0

    def intervals(mantissa: int, power: int) -> int:
        # A hair below 1: 4.0 / 1.0 must not count as a little more than 4 intervals.
        return max(1, math.ceil(largest / (mantissa * 10.0 ** power) * (1 - 1e-12)))

    exponent = math.floor(math.log10(largest / most_intervals))
    # 10^(exponent + 1) is at least largest / most_intervals: some step always fits.
    mantissa, power = next((mantissa, power) for power in (exponent, exponent + 1)
                           for mantissa in NICE_MANTISSAS
                           if intervals(mantissa, power) <= most_intervals)
    # Built from decimal text: 3 * 0.1 is 0.30000000000000004, "3e-1" is 0.3.
    return ([float(f"{i * mantissa}e{power}") for i in range(intervals(mantissa, power) + 1)],
            power)


def tick_label(value: float, power: int) -> str:
    if not -4 < power < 6:
        return f"{value:g}"
    return f"{value:,.{max(0, -power)}f}"


def _coordinate(value: float) -> str:
    return f"{value:.1f}"


def _bar_width(value: float | None, scale: float, area: float) -> float:
    if not value or not scale:
        return 0.0
    return max(MIN_BAR_WIDTH, area * value / scale)


def _dominance(features: list[dict]) -> dict | None:
    """The feature whose importance (the longer of its two bars) is at least
    DOMINANCE_RATIO times every other feature's, with that ratio (None when all others are
    zero)."""
    peaks = sorted(((max(row["candidate"] or 0.0, row["production"] or 0.0), row["feature"])
                    for row in features), reverse=True)
    if len(peaks) < 2 or peaks[0][0] <= 0:
        return None
    (top, name), (runner_up, _) = peaks[0], peaks[1]
    if runner_up > 0 and top / runner_up < DOMINANCE_RATIO:
        return None
    return {"feature": name, "ratio": significant(top / runner_up) if runner_up > 0 else None}


def importance_chart(importance: dict | None) -> dict | None:
    """Geometry of the horizontal bar chart of mean |contribution| per feature (this
    version's bar above production's; `importance` as model_card.importance_table gives
    it), drawn as inline SVG by evidence/importance.html. Bars are scaled to the last tick,
    which is at or beyond the largest value of either version."""
    if not importance or not importance["features"]:
        return None
    largest = max((value for row in importance["features"]
                   for value in (row["candidate"], row["production"]) if value), default=0.0)
    ticks, power = nice_ticks(largest)
    scale = ticks[-1]
    area = CHART_WIDTH - CHART_LABEL_WIDTH - CHART_VALUE_WIDTH

    def bar(value: float | None, y: float) -> dict:
        width = _bar_width(value, scale, area)
        return {"y": _coordinate(y), "width": _coordinate(width), "label": significant(value),
                "text_x": _coordinate(CHART_LABEL_WIDTH + width + 4),
                "text_y": _coordinate(y + CHART_BAR_HEIGHT - 1)}

    rows = []
    for i, row in enumerate(importance["features"]):
        top = CHART_TOP + i * CHART_ROW_HEIGHT
        rows.append({"feature": row["feature"], "label_y": _coordinate(top + CHART_BAR_HEIGHT + 3),
                     "candidate": bar(row["candidate"], top),
                     "production": bar(row["production"], top + CHART_BAR_HEIGHT + 2)})
    axis_y = CHART_TOP + len(rows) * CHART_ROW_HEIGHT
    return {
        "width": CHART_WIDTH, "height": axis_y + CHART_AXIS_HEIGHT,
        "label_x": CHART_LABEL_WIDTH - 6, "bar_x": CHART_LABEL_WIDTH, "rows": rows,
        "bar_height": CHART_BAR_HEIGHT,
        "axis": {"y": axis_y, "grid_top": CHART_TOP - 4, "label_y": axis_y + 16,
                 "title_x": _coordinate(CHART_LABEL_WIDTH + area / 2), "title_y": axis_y + 36,
                 "end_x": CHART_LABEL_WIDTH + area,
                 "ticks": [{"value": tick, "label": tick_label(tick, power),
                            "x": _coordinate(CHART_LABEL_WIDTH + area * tick / scale)}
                           for tick in ticks]},
        "dominant": _dominance(importance["features"]),
    }


# --- distributions ---------------------------------------------------------------------


def _share_label(share: float | None) -> str:
    if share is None:
        return "–"
    if 0 < share < 0.001:
        return "<0.1 %"
    return f"{share * 100:.1f} %"


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [count / total if total else 0.0 for count in counts]


def _entry(profile: dict | None, name: str) -> dict | None:
    """A feature's profile entry, or None when it was not profiled (personal, not an
    input, or a profile from before entries had a kind)."""
    entry = ((profile or {}).get("features") or {}).get(name)
    if not isinstance(entry, dict) or entry.get("kind") not in (NUMERIC, CATEGORICAL):
        return None
    return entry


def _input_features(schema: dict | None) -> list[dict]:
    return [feature for feature in (schema or {}).get("features", [])
            if feature.get("input", True)]


def _bin_labels(edges: list[float], *, integer: bool) -> list[str | None]:
    """A label per bin (-inf, e1], (e1, e2], ..., (ek, +inf). For an integer feature, the
    integers a bin holds ("3", "4 – 6", "≥ 9"), and None for a bin that holds none (deciles
    of integers fall between them: (0.8, 1] holds 1, (0, 0.8] nothing)."""
    if not integer:
        return ([f"≤ {edge_label(edges[0])}"]
                + [f"{edge_label(low)} – {edge_label(high)}" for low, high in pairwise(edges)]
                + [f"> {edge_label(edges[-1])}"])
    labels: list[str | None] = [f"≤ {math.floor(edges[0]):,}"]
    for low, high in pairwise(edges):
        first, last = math.floor(low) + 1, math.floor(high)
        labels.append(None if first > last else f"{first:,}" if first == last
                      else f"{first:,} – {last:,}")
    return [*labels, f"≥ {math.floor(edges[-1]) + 1:,}"]


def _numeric_rows(candidate: dict | None, production: dict | None, *,
                  integer: bool) -> list[dict] | None:
    """Shares per bin of the candidate's deciles (or of production's, when only production
    profiled the feature). Production's sample is counted on the candidate's edges."""
    # numpy and pandas come with core.ml.profile: imported when a chart is drawn, not with
    # the admin at start-up (tests/test_startup_imports.py).
    from core.ml.profile import bin_counts  # noqa: PLC0415

    edges = (candidate or production)["edges"]
    if not edges:
        return None
    labels = _bin_labels(edges, integer=integer)
    mine = _shares(candidate["counts"]) if candidate else [None] * len(labels)
    if production is None:
        theirs = [None] * len(labels)
    elif candidate is None:
        theirs = _shares(production["counts"])
    else:
        theirs = _shares([int(count) for count in bin_counts(production["sample"], edges)])
    # A bin no integer falls in is left out, unless a non-integer value did land there.
    return [{"label": label or f"{edge_label(low)} – {edge_label(high)}",
             "candidate": share, "production": other}
            for label, share, other, (low, high)
            in zip(labels, mine, theirs, [(None, edges[0]), *pairwise(edges), (edges[-1], None)],
                   strict=True)
            if label is not None or share or other]


def _categorical_rows(candidate: dict | None, production: dict | None) -> list[dict] | None:
    """Shares per category of either version, in the profile's (sorted) order; beyond
    DIST_MAX_CATEGORIES the largest are kept and the rest summed into one row."""
    mine = (candidate or {}).get("counts") or {}
    theirs = (production or {}).get("counts") or {}
    names = sorted(set(mine) | set(theirs))
    if not names:
        return None
    mine_total, theirs_total = sum(mine.values()), sum(theirs.values())

    def share(counts: dict, total: int, keys: list[str], entry: dict | None) -> float | None:
        if entry is None:
            return None
        return sum(counts.get(key, 0) for key in keys) / total if total else 0.0

    groups = [[name] for name in names]
    if len(names) > DIST_MAX_CATEGORIES:
        by_size = sorted(names, key=lambda name: -(mine.get(name, 0) / (mine_total or 1)
                                                   + theirs.get(name, 0) / (theirs_total or 1)))
        kept = set(by_size[:DIST_MAX_CATEGORIES - 1])
        rest = [name for name in names if name not in kept]
        groups = [[name] for name in names if name in kept] + [rest]
    return [{"label": group[0] if len(group) == 1 else f"{len(group)} other values",
             "candidate": share(mine, mine_total, group, candidate),
             "production": share(theirs, theirs_total, group, production)}
            for group in groups]


def _distribution_geometry(rows: list[dict], *, both: bool) -> dict:
    area = DIST_WIDTH - DIST_LABEL_WIDTH - DIST_VALUE_WIDTH
    scale = max((value for row in rows for value in (row["candidate"], row["production"])
                 if value), default=0.0)
    bars = 2 if both else 1
    pitch = bars * DIST_BAR_HEIGHT + (bars - 1) * DIST_BAR_GAP + DIST_ROW_GAP

    def bar(share: float | None, y: float) -> dict:
        width = _bar_width(share, scale, area)
        return {"y": _coordinate(y), "width": _coordinate(width), "label": _share_label(share),
                "text_x": _coordinate(DIST_LABEL_WIDTH + width + 3),
                "text_y": _coordinate(y + DIST_BAR_HEIGHT - 0.5)}

    drawn = []
    for i, row in enumerate(rows):
        top = DIST_TOP + i * pitch
        second = top + DIST_BAR_HEIGHT + DIST_BAR_GAP
        drawn.append({
            "label": row["label"],
            "label_y": _coordinate(top + (pitch - DIST_ROW_GAP) / 2 + 3.5),
            "candidate": bar(row["candidate"], top) if row["candidate"] is not None else None,
            "production": (bar(row["production"], second if both else top)
                           if row["production"] is not None else None),
        })
    return {"width": DIST_WIDTH, "height": DIST_TOP + len(rows) * pitch, "rows": drawn,
            "label_x": DIST_LABEL_WIDTH - 5, "bar_x": DIST_LABEL_WIDTH,
            "bar_height": DIST_BAR_HEIGHT}


def _summary(entry: dict | None) -> dict | None:
    if entry is None:
        return None
    summary = {"n": f"{entry.get('n', 0):,}", "missing": f"{entry.get('missing', 0):,}"}
    if entry["kind"] == NUMERIC:
        summary.update(mean=significant(entry.get("mean")), std=significant(entry.get("std")))
    return summary


def _feature_distribution(name: str, dtype: str, candidate: dict | None,
                          production: dict | None, *, has_production: bool,
                          in_candidate: bool, in_production: bool) -> dict:
    """One feature's chart, with a mark when it is missing (or cannot be compared) in one
    of the two versions; then only the version that has it is drawn."""
    mark = ""
    if has_production and not in_production:
        mark = "not in production"
    elif not in_candidate:
        mark = "not in this version"
    elif candidate and production and candidate["kind"] != production["kind"]:
        mark = f"production profiled it as {production['kind']}"
        production = None
    elif candidate and production and candidate["kind"] == NUMERIC and not production.get(
            "sample"):
        mark = "production's profile holds no values to count on these bins"
        production = None
    elif has_production and (candidate is None) != (production is None):
        mark = "profiled in one version only"
    kind = (candidate or production or {}).get("kind")
    if kind == NUMERIC:
        rows = _numeric_rows(candidate, production, integer=dtype == "int")
    elif kind == CATEGORICAL:
        rows = _categorical_rows(candidate, production)
    else:
        rows = None
    both = candidate is not None and production is not None
    return {
        "name": name, "dtype": dtype, "kind": kind, "mark": mark, "personal": False,
        "chart": _distribution_geometry(rows, both=both) if rows else None,
        "candidate": _summary(candidate), "production": _summary(production),
    }


def distribution_charts(*, schema: dict | None, profile: dict | None,
                        production_schema: dict | None = None,
                        production_profile: dict | None = None,
                        production_version: str | None = None) -> dict:
    """Per input feature of this version (then those only production takes), this
    version's training distribution beside production's, from the reference profiles
    stored on both versions (no artifact is read). Without a production version (or when
    this version is it) each feature shows this version's alone."""
    has_production = production_version is not None
    mine = {feature["name"]: feature for feature in _input_features(schema)}
    theirs = {feature["name"]: feature for feature in _input_features(production_schema)}
    names = list(mine) + [name for name in theirs if name not in mine]
    features = []
    for name in names:
        feature = mine.get(name) or theirs[name]
        if feature.get("pii"):
            features.append({"name": name, "dtype": feature.get("dtype"), "personal": True,
                             "mark": "", "chart": None})
            continue
        features.append(_feature_distribution(
            name, feature.get("dtype"), _entry(profile, name) if name in mine else None,
            _entry(production_profile, name) if name in theirs else None,
            has_production=has_production, in_candidate=name in mine,
            in_production=name in theirs))
    return {"production_version": production_version, "features": features}
