"""The version page's validation diagnostics (core.ml.diagnostics) as chart geometry.

`validation_diagnostics_chart` turns the `training_report["validation_diagnostics"]` of a
version into what evidence/validation.html draws as inline SVG (no script): for a
regressor, residuals against predicted values with the zero line, each bin's 10-90 %
band and the binned mean residual; for a binary classifier, the reliability diagram
(observed positive rate against mean predicted probability, the diagonal being perfect
calibration); for every classifier, the confusion matrix as a table. Reads the recorded
figures only: no artifact is loaded.
"""

import math

from mlregistry.evidence_charts import nice_ticks, tick_label

# One chart's frame: the plot area sits inside these margins (axis labels and ticks).
WIDTH, HEIGHT = 640, 340
SQUARE = 340  # the reliability diagram: both axes are probabilities
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 12, 46
TICKS = 5  # at most this many tick intervals per axis
PADDING = 0.04  # share of the data's range left free at each end of an axis
PROBABILITY_TICKS, PROBABILITY_POWER = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], -1
# core.ml.diagnostics.NOT_APPLICABLE, spelled here: that module brings scikit-learn, which
# the admin must not import when a process starts (tests/test_startup_imports.py).
NOT_APPLICABLE = "not_applicable"


def axis_domain(values: list[float]) -> tuple[float, float]:
    """The range an axis shows: the values' with PADDING on each side (a unit around a
    single value)."""
    low, high = min(values), max(values)
    if not high > low:
        spread = abs(low) * 0.5 or 1.0
        return low - spread, high + spread
    pad = (high - low) * PADDING
    return low - pad, high + pad


def range_ticks(low: float, high: float) -> tuple[list[float], int]:
    """Ticks inside [low, high] at the round step (1, 2 or 5 × 10^k) evidence_charts picks
    for the range's width, and k (for `tick_label`). The step fits the width at most
    TICKS times, so at least two ticks fall inside."""
    steps, power = nice_ticks(high - low, most_intervals=TICKS)
    step, decimals = steps[1], max(0, -power)
    return [round(i * step, decimals)
            for i in range(math.ceil(low / step), math.floor(high / step) + 1)], power


class _Frame:
    """Maps data values to SVG coordinates of one plot area (y grows downwards)."""

    def __init__(self, *, width: int, height: int, x_domain: tuple[float, float],
                 y_domain: tuple[float, float]):
        self.left, self.right = MARGIN_LEFT, width - MARGIN_RIGHT
        self.top, self.bottom = MARGIN_TOP, height - MARGIN_BOTTOM
        self.x_low, self.x_high = x_domain
        self.y_low, self.y_high = y_domain

    def x(self, value: float) -> float:
        share = (value - self.x_low) / (self.x_high - self.x_low)
        return self.left + share * (self.right - self.left)

    def y(self, value: float) -> float:
        share = (self.y_high - value) / (self.y_high - self.y_low)
        return self.top + share * (self.bottom - self.top)


def _coordinate(value: float) -> str:
    return f"{value:.1f}"


def _axes(frame: _Frame, *, width: int, height: int, x_ticks: list[float], x_power: int,
          y_ticks: list[float], y_power: int, x_label: str, y_label: str) -> dict:
    middle_y = (frame.top + frame.bottom) / 2
    return {
        "width": width, "height": height,
        "left": _coordinate(frame.left), "right": _coordinate(frame.right),
        "top": _coordinate(frame.top), "bottom": _coordinate(frame.bottom),
        "x_ticks": [{"x": _coordinate(frame.x(v)), "label": tick_label(v, x_power)}
                    for v in x_ticks],
        "y_ticks": [{"y": _coordinate(frame.y(v)), "label": tick_label(v, y_power)}
                    for v in y_ticks],
        "x_tick_end": _coordinate(frame.bottom + 4), "tick_label_y": _coordinate(frame.bottom + 17),
        "y_tick_start": _coordinate(frame.left - 4), "tick_label_x": _coordinate(frame.left - 7),
        "x_label": x_label, "x_label_x": _coordinate((frame.left + frame.right) / 2),
        "x_label_y": _coordinate(height - 8),
        "y_label": y_label, "y_label_x": "14", "y_label_y": _coordinate(middle_y),
    }


def residual_chart(residuals: dict) -> dict:
    """Scatter of the sampled (predicted, residual) pairs with the zero line, and per bin
    the 10-90 % band of residuals over the bin's predicted range and the mean residual."""
    bins, sample = residuals["bins"], residuals["sample"]
    xs = ([predicted for predicted, _ in sample] + [row["lower"] for row in bins]
          + [row["upper"] for row in bins])
    ys = ([residual for _, residual in sample] + [0.0] + [row["residual_p10"] for row in bins]
          + [row["residual_p90"] for row in bins])
    x_domain, y_domain = axis_domain(xs), axis_domain(ys)
    x_ticks, x_power = range_ticks(*x_domain)
    y_ticks, y_power = range_ticks(*y_domain)
    frame = _Frame(width=WIDTH, height=HEIGHT, x_domain=x_domain, y_domain=y_domain)
    bands = []
    for row in bins:
        top, bottom = frame.y(row["residual_p90"]), frame.y(row["residual_p10"])
        left, right = frame.x(row["lower"]), frame.x(row["upper"])
        bands.append({
            "x": _coordinate(left), "y": _coordinate(top),
            "width": _coordinate(max(right - left, 1.0)),
            "height": _coordinate(max(bottom - top, 1.0)),
            "cx": _coordinate(frame.x(row["predicted_mean"])),
            "cy": _coordinate(frame.y(row["residual_mean"])), **row})
    return {
        **_axes(frame, width=WIDTH, height=HEIGHT, x_ticks=x_ticks, x_power=x_power,
                y_ticks=y_ticks, y_power=y_power, x_label="Predicted value",
                y_label="Residual (actual − predicted)"),
        "zero_y": _coordinate(frame.y(0.0)),
        "points": [{"cx": _coordinate(frame.x(predicted)), "cy": _coordinate(frame.y(residual))}
                   for predicted, residual in sample],
        "bands": bands,
        "mean_line": " ".join(f"{band['cx']},{band['cy']}" for band in bands),
        "sampled": len(sample),
    }


def reliability_chart(calibration: dict) -> dict:
    """Observed positive rate against mean predicted probability per bin, beside the
    diagonal of perfect calibration; both axes 0-1."""
    frame = _Frame(width=SQUARE, height=SQUARE, x_domain=(0.0, 1.0), y_domain=(0.0, 1.0))
    positive = calibration["positive_label"]
    points = [{"cx": _coordinate(frame.x(row["mean_predicted"])),
               "cy": _coordinate(frame.y(row["observed_rate"])), **row}
              for row in calibration["bins"]]
    return {
        **_axes(frame, width=SQUARE, height=SQUARE, x_ticks=PROBABILITY_TICKS,
                x_power=PROBABILITY_POWER, y_ticks=PROBABILITY_TICKS, y_power=PROBABILITY_POWER,
                x_label=f"Mean predicted probability of {positive}",
                y_label=f"Observed rate of {positive}"),
        "diagonal": {"x1": _coordinate(frame.x(0.0)), "y1": _coordinate(frame.y(0.0)),
                     "x2": _coordinate(frame.x(1.0)), "y2": _coordinate(frame.y(1.0))},
        "points": points,
        "line": " ".join(f"{point['cx']},{point['cy']}" for point in points),
        "positive_label": str(positive),
    }


def confusion_table(confusion: dict) -> dict:
    """Rows: actual labels; columns: predicted labels; with totals."""
    labels = [str(label) for label in confusion["labels"]]
    counts = confusion["counts"]
    rows = [{"label": label, "total": sum(row),
             "cells": [{"count": count, "correct": i == j, "predicted": labels[j]}
                       for j, count in enumerate(row)]}
            for i, (label, row) in enumerate(zip(labels, counts, strict=True))]
    return {"labels": labels, "rows": rows,
            "column_totals": [sum(column) for column in zip(*counts, strict=True)],
            "total": sum(sum(row) for row in counts),
            "correct": sum(counts[i][i] for i in range(len(labels)))}


def validation_diagnostics_chart(diagnostics: dict | None) -> dict | None:
    """What evidence/validation.html draws; None when the version has no diagnostics
    recorded (registered before they were)."""
    if not diagnostics:
        return None
    chart = {"kind": diagnostics.get("kind"), "task": diagnostics.get("task"),
             "rows": diagnostics.get("rows"), "reason": "", "residuals": None,
             "reliability": None, "confusion": None}
    if chart["kind"] == NOT_APPLICABLE:
        return {**chart, "reason": diagnostics.get("reason", "")}
    if diagnostics.get("residuals"):
        chart["residuals"] = residual_chart(diagnostics["residuals"])
    if diagnostics.get("calibration"):
        chart["reliability"] = reliability_chart(diagnostics["calibration"])
    if diagnostics.get("confusion"):
        chart["confusion"] = confusion_table(diagnostics["confusion"])
    return chart
