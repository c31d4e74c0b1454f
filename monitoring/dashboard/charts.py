"""Server-rendered SVG charts for the monitoring dashboard (pure: no database, no
JavaScript, nothing from the network).

Each function returns one `<svg>` element as a SafeString, built with format_html so every
label and tooltip is escaped; numbers are formatted here. Stable classes, for styling and
for tests:

- `chart chart-bars`: one `<rect class="bar">` per data point;
- `chart chart-lines`: one `<polyline class="line">` per series, one `<circle class="point">`
  per point;
- `<g class="objective">` (a target the series should stay under, e.g. the p95 latency
  objective) and `<g class="baseline">` (a level to compare with, e.g. a version's
  validation figure) on a line chart: a dashed `<line>` across the plot, a `<text>` label
  that names the value, and a `<title>`; `data-value` holds the value;
- `chart chart-heatmap`: one `<rect class="cell">` per value, `<rect class="cell-missing">`
  where there is none, and on each a `<text class="cell-value">`: the value printed, or
  "–" where there is none, so that the map is read without telling colours apart.

Every data mark holds a `<title>` (the browser shows it as a tooltip). A chart without
data is a small frame that says so (`chart-empty`). Text is drawn in `currentColor`, so it
follows the admin's light and dark themes, except the values printed on heat-map cells:
those are black, which reads on every band colour (contrast at least 4.5:1, WCAG AA).
Times are formatted as given (`time_format`, with its zone by default): the caller passes
them in the zone it wants shown.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 40
EMPTY_HEIGHT = 64
BAR_COLOUR = "#417690"  # the admin's --secondary
SERIES_COLOURS = ("#417690", "#e08214", "#5aae61", "#9970ab", "#d6604d", "#666666")
TICK_LABEL_WIDTH = 100  # pixels an x-axis label with its zone needs; crowded: fewer shown
TIME_FORMAT = "%b %d %H:%M %Z"
OBJECTIVE_COLOUR = "#ba2121"  # the admin's --error-fg: above the line is a breach
REFERENCE_DASH = "6 4"
REFERENCE_LABEL_GAP = 12  # pixels between the labels of reference lines close in value
# Heat map: colours of the bands below, between and above the two thresholds.
HEAT_COLOURS = ("#c7e9c0", "#fdd49e", "#e34a33")
MISSING_COLOUR = "#d9d9d9"
HEAT_ROW_LABEL_WIDTH = 170
HEAT_CELL_HEIGHT = 20
HEAT_CELL_WIDTH = 30  # room for a printed value such as "0.27" at HEAT_VALUE_FONT_SIZE
HEAT_VALUE_FONT_SIZE = 9
HEAT_VALUE_COLOUR = "#000000"


@dataclass(frozen=True)
class Series:
    """One line of a line chart: a name (legend, tooltips) and (time, value) points."""

    name: str
    points: Sequence[tuple[datetime, float]]


@dataclass(frozen=True)
class Reference:
    """A horizontal line of a line chart at `value`, labelled `label`: an "objective" or a
    "baseline" (`kind`, also its CSS class)."""

    label: str
    value: float
    kind: str = "objective"


def _n(value: float) -> str:
    """A coordinate: one decimal is finer than a pixel."""
    return f"{value:.1f}"


def _figure(value: float) -> str:
    """A value as people read it: at most four significant digits."""
    return f"{value:.4g}"


def _amount(value: float, unit: str) -> str:
    return f"{_figure(value)} {unit}".rstrip()


def _join(parts) -> SafeString:
    # Every part comes from format_html / format_html_join, so it is already escaped.
    return mark_safe("".join(parts))


def _svg(kind: str, title: str, width: int, height: int, body: SafeString) -> SafeString:
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart {}" width="{}" height="{}" '
        'viewBox="0 0 {} {}" role="img" aria-label="{}" font-family="sans-serif" '
        'font-size="11"><title>{}</title>{}</svg>',
        kind, width, height, width, height, title, title, body,
    )


def _empty(kind: str, title: str, message: str) -> SafeString:
    text = format_html('<text class="empty" x="{}" y="{}" text-anchor="middle" '
                       'fill="currentColor">{}</text>', WIDTH // 2, EMPTY_HEIGHT // 2, message)
    return _svg(f"{kind} chart-empty", title, WIDTH, EMPTY_HEIGHT, text)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 x 10^k) covering [low, high]."""
    if not high > low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    start = math.floor(low / step + 1e-9) * step
    steps = math.ceil((high - start) / step - 1e-9)
    return [round(start + i * step, 12) for i in range(steps + 1)]


class _YAxis:
    """Maps values to pixels over nice ticks, and draws the gridlines with their labels."""

    def __init__(self, low: float, high: float, *, top: int, bottom: int) -> None:
        self.ticks = nice_ticks(low, high)
        self.low, self.high = self.ticks[0], self.ticks[-1]
        self.top, self.bottom = top, bottom

    def y(self, value: float) -> float:
        share = (value - self.low) / (self.high - self.low)
        return self.bottom - share * (self.bottom - self.top)

    def draw(self, unit: str) -> SafeString:
        lines = format_html_join(
            "", '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="currentColor" '
                'stroke-opacity="0.15"/><text x="{}" y="{}" text-anchor="end" '
                'fill="currentColor">{}</text>',
            ((LEFT, _n(self.y(t)), WIDTH - RIGHT, _n(self.y(t)), LEFT - 6,
              _n(self.y(t) + 4), _figure(t)) for t in self.ticks),
        )
        caption = format_html('<text x="{}" y="{}" fill="currentColor">{}</text>',
                              4, self.top - 12, unit) if unit else ""
        return format_html('<g class="axis axis-y">{}{}</g>', lines, caption)


def _anchor(x: float) -> str:
    """Labels near an edge grow inwards, so that they are not cut off."""
    if x < LEFT + TICK_LABEL_WIDTH / 2:
        return "start"
    if x > WIDTH - RIGHT - TICK_LABEL_WIDTH / 2:
        return "end"
    return "middle"


def _x_labels(positions: Sequence[tuple[float, str]], *, bottom: float) -> SafeString:
    """Labels under the plot, thinned out so that they do not overlap."""
    every = max(1, math.ceil(len(positions) * TICK_LABEL_WIDTH / (WIDTH - LEFT - RIGHT)))
    shown = [(x, label) for i, (x, label) in enumerate(positions) if i % every == 0]
    labels = format_html_join(
        "", '<text x="{}" y="{}" text-anchor="{}" fill="currentColor">{}</text>',
        ((_n(x), _n(bottom + 16), _anchor(x), label) for x, label in shown))
    return format_html('<g class="axis axis-x"><line x1="{}" y1="{}" x2="{}" y2="{}" '
                       'stroke="currentColor" stroke-opacity="0.5"/>{}</g>',
                       LEFT, _n(bottom), WIDTH - RIGHT, _n(bottom), labels)


def bar_chart(*, labels: Sequence[str], values: Sequence[float], title: str, empty: str,
              unit: str = "") -> SafeString:
    """One bar per (label, value); the tooltip reads "label: value unit". Without a
    non-zero value the chart shows `empty` instead."""
    if len(labels) != len(values):
        raise ValueError("bar_chart needs one label per value")
    if not any(values):
        return _empty("chart-bars", title, empty)
    bottom = HEIGHT - BOTTOM
    axis = _YAxis(min(0.0, *values), max(values), top=TOP, bottom=bottom)
    slot = (WIDTH - LEFT - RIGHT) / len(values)
    width = max(1.0, slot * 0.8)
    bars, positions = [], []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = LEFT + i * slot + (slot - width) / 2
        y0, y1 = axis.y(max(value, 0.0)), axis.y(min(value, 0.0))
        tooltip = f"{label}: {_amount(value, unit)}"
        bars.append(format_html(
            '<rect class="bar" x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title>'
            '</rect>', _n(x), _n(y0), _n(width), _n(y1 - y0), BAR_COLOUR, tooltip))
        positions.append((x + width / 2, label))
    body = format_html('{}<g class="bars">{}</g>{}', axis.draw(unit), _join(bars),
                       _x_labels(positions, bottom=bottom))
    return _svg("chart-bars", title, WIDTH, HEIGHT, body)


def paired_bar_chart(*, labels: Sequence[str], first: Sequence[float],
                     second: Sequence[float], names: tuple[str, str], title: str,
                     empty: str) -> SafeString:
    """Two bars per label, side by side (e.g. the reference's and the window's share of
    rows per bin), with a legend naming them; the tooltip reads "name, label: value".
    Without a non-zero value the chart shows `empty` instead."""
    if not (len(labels) == len(first) == len(second)):
        raise ValueError("paired_bar_chart needs one label per pair of values")
    if not any(first) and not any(second):
        return _empty("chart-bars", title, empty)
    bottom = HEIGHT - BOTTOM
    axis = _YAxis(0.0, max(*first, *second), top=TOP, bottom=bottom)
    slot = (WIDTH - LEFT - RIGHT) / len(labels)
    width = max(1.0, slot * 0.4)
    colours = SERIES_COLOURS[:2]
    bars, positions = [], []
    for i, label in enumerate(labels):
        x = LEFT + i * slot + slot * 0.1
        for offset, (name, values, colour) in enumerate(zip(names, (first, second), colours,
                                                            strict=True)):
            y = axis.y(values[i])
            bars.append(format_html(
                '<rect class="bar bar-{}" x="{}" y="{}" width="{}" height="{}" fill="{}">'
                '<title>{}</title></rect>', offset, _n(x + offset * width), _n(y), _n(width),
                _n(axis.y(0.0) - y), colour, f"{name}, {label}: {_figure(values[i])}"))
        positions.append((x + width, label))
    body = format_html('{}{}<g class="bars">{}</g>{}', axis.draw(""),
                       _legend(list(names), list(colours), x=LEFT + 64), _join(bars),
                       _x_labels(positions, bottom=bottom))
    return _svg("chart-bars", title, WIDTH, HEIGHT, body)


def _legend(names: Sequence[str], colours: Sequence[str], *, x: float) -> SafeString:
    items = []
    for name, colour in zip(names, colours, strict=True):
        items.append(format_html(
            '<rect x="{}" y="6" width="10" height="10" fill="{}"/>'
            '<text x="{}" y="15" fill="currentColor">{}</text>', x, colour, x + 14, name))
        x += 24 + 7 * len(name)
    return format_html('<g class="legend">{}</g>', _join(items))


def _references(references: Sequence[Reference], axis: _YAxis, unit: str) -> SafeString:
    """Dashed lines across the plot, each labelled "label: value unit" at its right end,
    above the line; labels of lines close in value are moved apart so that each is read."""
    drawn, previous = [], None
    for reference in sorted(references, key=lambda r: axis.y(r.value)):  # the top one first
        y = axis.y(reference.value)
        label_y = y - 4 if previous is None else max(y - 4, previous + REFERENCE_LABEL_GAP)
        previous = label_y
        text = f"{reference.label}: {_amount(reference.value, unit)}"
        colour = OBJECTIVE_COLOUR if reference.kind == "objective" else "currentColor"
        drawn.append(format_html(
            '<g class="{}" data-value="{}"><title>{}</title><line x1="{}" y1="{}" x2="{}" '
            'y2="{}" stroke="{}" stroke-width="1.5" stroke-dasharray="{}"/><text x="{}" y="{}" '
            'text-anchor="end" fill="currentColor">{}</text></g>',
            reference.kind, _figure(reference.value), text, LEFT, _n(y), WIDTH - RIGHT, _n(y),
            colour, REFERENCE_DASH, WIDTH - RIGHT - 4, _n(label_y), text))
    return _join(drawn)


def line_chart(*, series: Sequence[Series], title: str, empty: str, unit: str = "",
               time_format: str = TIME_FORMAT, references: Sequence[Reference] = ()
               ) -> SafeString:
    """One line per series over time, a point per value; the tooltip reads
    "series: value unit at time". `references` are drawn as labelled dashed lines, and the
    value axis reaches them. Without points the chart shows `empty` instead."""
    series = [s for s in series if s.points]
    if not series:
        return _empty("chart-lines", title, empty)
    times = sorted({t for s in series for t, _ in s.points})
    values = [v for s in series for _, v in s.points] + [r.value for r in references]
    bottom = HEIGHT - BOTTOM
    axis = _YAxis(min(0.0, *values), max(values), top=TOP, bottom=bottom)
    first, span = times[0], (times[-1] - times[0]).total_seconds()
    plot = WIDTH - LEFT - RIGHT - 20  # keep the first and last points off the edges

    def x_of(moment: datetime) -> float:
        if not span:
            return LEFT + 10 + plot / 2
        return LEFT + 10 + plot * (moment - first).total_seconds() / span

    colours = [SERIES_COLOURS[i % len(SERIES_COLOURS)] for i in range(len(series))]
    drawn = []
    for i, (line, colour) in enumerate(zip(series, colours, strict=True)):
        points = sorted(line.points)
        coordinates = " ".join(f"{_n(x_of(t))},{_n(axis.y(v))}" for t, v in points)
        circles = format_html_join(
            "", '<circle class="point" cx="{}" cy="{}" r="3.5" fill="{}"><title>{}</title>'
                '</circle>',
            ((_n(x_of(t)), _n(axis.y(v)), colour,
              f"{line.name}: {_amount(v, unit)} at {t.strftime(time_format)}")
             for t, v in points))
        drawn.append(format_html(
            '<g class="series series-{}"><polyline class="line" points="{}" fill="none" '
            'stroke="{}" stroke-width="2"/>{}</g>', i, coordinates, colour, circles))
    ends = [times[0]] if not span else [times[0], first + (times[-1] - first) / 2, times[-1]]
    labels = [(x_of(t), t.strftime(time_format)) for t in ends]
    legend = _legend([s.name for s in series], colours, x=LEFT + 64)
    body = format_html("{}{}{}{}{}", axis.draw(unit), legend,
                       _references(references, axis, unit), _join(drawn),
                       _x_labels(labels, bottom=bottom))
    return _svg("chart-lines", title, WIDTH, HEIGHT, body)


def heat_colour(value: float, thresholds: tuple[float, float]) -> tuple[str, str]:
    """(level, fill) of a value: "ok" up to the first threshold, "warn" up to the second,
    "critical" above it."""
    if value > thresholds[1]:
        return "critical", HEAT_COLOURS[2]
    if value > thresholds[0]:
        return "warn", HEAT_COLOURS[1]
    return "ok", HEAT_COLOURS[0]


def _cell_value(value: float) -> str:
    """A value short enough to print in a cell: two decimals, whole numbers from 10."""
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"


def heat_map(*, rows: Sequence[str], columns: Sequence[str],
             values: Sequence[Sequence[float | None]], title: str, empty: str,
             value_name: str = "PSI", thresholds: tuple[float, float] = (0.1, 0.25)
             ) -> SafeString:
    """A grid of rows x columns coloured by value against two thresholds, each value printed
    in its cell; `values[r][c]` is None where there is no figure. The tooltip reads
    "row, column: value_name value (level)". Cells keep their width however many columns
    there are, so the chart grows wider."""
    if len(values) != len(rows) or any(len(line) != len(columns) for line in values):
        raise ValueError("heat_map needs one value per row and column")
    if not rows or not columns:
        return _empty("chart-heatmap", title, empty)
    left, top, cell = HEAT_ROW_LABEL_WIDTH, TOP + 4, HEAT_CELL_WIDTH
    bottom = top + HEAT_CELL_HEIGHT * len(rows)
    cells = []
    for r, (row, line) in enumerate(zip(rows, values, strict=True)):
        for c, (column, value) in enumerate(zip(columns, line, strict=True)):
            x, y = left + c * cell, top + r * HEAT_CELL_HEIGHT
            if value is None:
                cls, level, fill, printed = "cell-missing", "", MISSING_COLOUR, "–"
                tooltip = f"{row}, {column}: no figure"
            else:
                level, fill = heat_colour(value, thresholds)
                cls, printed = "cell", _cell_value(value)
                tooltip = f"{row}, {column}: {value_name} {_figure(value)} ({level})"
            # The printed value lets the pointer through, so the cell's tooltip still shows.
            cells.append(format_html(
                '<rect class="{}"{} x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}'
                '</title></rect><text class="cell-value" x="{}" y="{}" text-anchor="middle" '
                'font-size="{}" fill="{}" pointer-events="none">{}</text>',
                cls, format_html(' data-level="{}"', level) if level else "", _n(x), _n(y),
                _n(cell - 1), HEAT_CELL_HEIGHT - 1, fill, tooltip, _n(x + (cell - 1) / 2),
                _n(y + HEAT_CELL_HEIGHT / 2 + 3), HEAT_VALUE_FONT_SIZE, HEAT_VALUE_COLOUR,
                printed))
    row_labels = format_html_join(
        "", '<text x="{}" y="{}" text-anchor="end" fill="currentColor">{}</text>',
        ((left - 6, _n(top + r * HEAT_CELL_HEIGHT + 14), row) for r, row in enumerate(rows)))
    every = max(1, math.ceil(TICK_LABEL_WIDTH / cell))
    column_labels = format_html_join(
        "", '<text x="{}" y="{}" text-anchor="start" fill="currentColor">{}</text>',
        ((_n(left + c * cell), _n(bottom + 16), column)
         for c, column in enumerate(columns) if c % every == 0))
    low, high = (_figure(t) for t in thresholds)
    key = [(HEAT_COLOURS[0], f"{value_name} ≤ {low}"), (HEAT_COLOURS[1], f"≤ {high}"),
           (HEAT_COLOURS[2], f"> {high}"), (MISSING_COLOUR, "no figure")]
    body = format_html(
        '{}<g class="axis axis-rows">{}</g><g class="cells">{}</g>'
        '<g class="axis axis-columns">{}</g>',
        _legend([text for _, text in key], [colour for colour, _ in key], x=left), row_labels,
        _join(cells), column_labels)
    # The last column label runs to the right of its column.
    width = max(WIDTH, left + cell * len(columns) + TICK_LABEL_WIDTH)
    return _svg("chart-heatmap", title, width, bottom + BOTTOM, body)
