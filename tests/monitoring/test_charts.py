"""The dashboard's SVG charts (pure): valid SVG with one mark per data point, a tooltip on
each, escaped text, an empty state, labelled reference lines, times with their zone, and
heat-map values printed readably on every band colour."""

import itertools
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from monitoring.dashboard import charts

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2024, 6, 11, 8, 0, tzinfo=UTC)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def marks(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [element for element in root.iter(f"{SVG}{tag}") if element.get("class") == cls]


def tooltips(elements: list[ET.Element]) -> list[str]:
    return [element.find(f"{SVG}title").text for element in elements]


def test_bar_chart_draws_one_bar_per_value_with_its_tooltip():
    root = parse(charts.bar_chart(labels=["08:00", "09:00", "10:00"], values=[3, 0, 12],
                                  unit="predictions", title="Per hour", empty="none"))

    bars = marks(root, "rect", "bar")
    assert root.get("class") == "chart chart-bars"
    assert tooltips(bars) == ["08:00: 3 predictions", "09:00: 0 predictions",
                              "10:00: 12 predictions"]
    heights = [float(bar.get("height")) for bar in bars]
    assert heights[1] == 0 and heights[2] > heights[0] > 0


def test_bar_chart_escapes_labels_and_title():
    svg = charts.bar_chart(labels=['<script>"x"</script>'], values=[1], title="a & <b>",
                           empty="none")

    root = parse(svg)
    assert "<script>" not in svg and "<b>" not in svg
    assert root.find(f"{SVG}title").text == "a & <b>"
    assert tooltips(marks(root, "rect", "bar")) == ['<script>"x"</script>: 1']


def test_bar_chart_without_predictions_says_so():
    root = parse(charts.bar_chart(labels=["08:00", "09:00"], values=[0, 0], title="Per hour",
                                  empty="no predictions in the last 24 h"))

    assert root.get("class") == "chart chart-bars chart-empty"
    assert marks(root, "rect", "bar") == []
    assert [text.text for text in root.iter(f"{SVG}text")] == ["no predictions in the last 24 h"]


def test_bar_chart_refuses_labels_and_values_of_different_lengths():
    with pytest.raises(ValueError, match="one label per value"):
        charts.bar_chart(labels=["a"], values=[1, 2], title="t", empty="none")


def test_line_chart_draws_a_line_per_series_and_a_point_per_value():
    p50 = charts.Series("p50", [(T0 + timedelta(hours=i), 5.0 + i) for i in range(3)])
    p95 = charts.Series("p95 <slow>", [(T0 + timedelta(hours=i), 20.0 + i) for i in range(3)])

    svg = charts.line_chart(series=[p50, p95], unit="ms", title="Latency", empty="none",
                            time_format="%H:%M")

    root = parse(svg)
    assert root.get("class") == "chart chart-lines"
    assert len(marks(root, "polyline", "line")) == 2
    points = marks(root, "circle", "point")
    assert len(points) == 6
    assert "p95 <slow>: 22 ms at 10:00" in tooltips(points)
    assert "<slow>" not in svg


def test_line_chart_places_later_points_further_right_and_higher_values_higher():
    series = charts.Series("r2", [(T0, 0.2), (T0 + timedelta(hours=1), 0.8)])

    first, second = marks(parse(charts.line_chart(series=[series], title="t", empty="none")),
                          "circle", "point")

    assert float(second.get("cx")) > float(first.get("cx"))
    assert float(second.get("cy")) < float(first.get("cy"))  # SVG's y grows downwards


def test_line_chart_labels_times_with_their_zone_by_default():
    series = charts.Series("p50", [(T0, 4.0), (T0 + timedelta(hours=2), 5.0)])

    root = parse(charts.line_chart(series=[series], unit="ms", title="t", empty="none"))

    assert tooltips(marks(root, "circle", "point"))[0] == "p50: 4 ms at Jun 11 08:00 UTC"
    axis = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "axis axis-x")
    assert [text.text for text in axis.iter(f"{SVG}text")] == [
        "Jun 11 08:00 UTC", "Jun 11 09:00 UTC", "Jun 11 10:00 UTC"]


def test_line_chart_draws_an_objective_as_a_labelled_dashed_line_within_the_axis():
    series = charts.Series("p95", [(T0, 20.0), (T0 + timedelta(hours=1), 40.0)])

    root = parse(charts.line_chart(
        series=[series], unit="ms", title="Latency", empty="none",
        references=[charts.Reference("p95 objective", 300.0)]))

    (objective,) = marks(root, "g", "objective")
    line = objective.find(f"{SVG}line")
    assert objective.get("data-value") == "300"
    assert line.get("stroke-dasharray") and line.get("y1") == line.get("y2")
    assert [text.text for text in objective.iter(f"{SVG}text")] == ["p95 objective: 300 ms"]
    assert objective.find(f"{SVG}title").text == "p95 objective: 300 ms"
    points = [float(point.get("cy")) for point in marks(root, "circle", "point")]
    bottom = charts.HEIGHT - charts.BOTTOM
    assert charts.TOP <= float(line.get("y1")) < min(points) < bottom  # above the data


def test_line_chart_separates_labels_of_baselines_close_in_value():
    series = charts.Series("1.0.0 champion", [(T0, 0.5)])

    root = parse(charts.line_chart(
        series=[series], unit="r2", title="Trend", empty="none",
        references=[charts.Reference("1.0.0 validation", 0.90, kind="baseline"),
                    charts.Reference("1.1.0 validation", 0.91, kind="baseline")]))

    baselines = marks(root, "g", "baseline")
    assert [b.get("data-value") for b in baselines] == ["0.91", "0.9"]  # the top one first
    first, second = (float(b.find(f"{SVG}text").get("y")) for b in baselines)
    assert second - first >= charts.REFERENCE_LABEL_GAP


def test_line_chart_with_a_single_point_renders_it():
    root = parse(charts.line_chart(series=[charts.Series("p50", [(T0, 4.0)])], title="t",
                                   empty="none"))

    assert len(marks(root, "circle", "point")) == 1


def test_line_chart_without_points_says_so():
    root = parse(charts.line_chart(series=[charts.Series("p50", [])], title="t",
                                   empty="no SLO check yet"))

    assert root.get("class") == "chart chart-lines chart-empty"
    assert marks(root, "circle", "point") == []
    assert "no SLO check yet" in [text.text for text in root.iter(f"{SVG}text")]


def test_heat_map_draws_a_cell_per_figure_coloured_by_the_thresholds():
    root = parse(charts.heat_map(
        rows=["followers", "platform"], columns=["08:00", "09:00", "10:00"],
        values=[[0.05, 0.1, 0.2], [0.25, 0.3, None]], title="Drift", empty="none"))

    cells = marks(root, "rect", "cell")
    assert root.get("class") == "chart chart-heatmap"
    assert [cell.get("data-level") for cell in cells] == ["ok", "ok", "warn", "warn", "critical"]
    assert len({cell.get("fill") for cell in cells}) == 3
    assert tooltips(cells)[4] == "platform, 09:00: PSI 0.3 (critical)"
    assert tooltips(marks(root, "rect", "cell-missing")) == ["platform, 10:00: no figure"]


def test_heat_map_prints_each_value_in_its_cell():
    root = parse(charts.heat_map(
        rows=["followers", "platform"], columns=["08:00", "09:00", "10:00"],
        values=[[0.05, 0.1, 0.2], [0.25, 12.345, None]], title="Drift", empty="none"))

    printed = marks(root, "text", "cell-value")
    assert [text.text for text in printed] == ["0.05", "0.10", "0.20", "0.25", "12", "–"]
    rects = marks(root, "rect", "cell") + marks(root, "rect", "cell-missing")
    centres = sorted((float(r.get("x")) + float(r.get("width")) / 2, float(r.get("y")))
                     for r in rects)
    positions = sorted((float(t.get("x")), float(t.get("y"))) for t in printed)
    for (cx, top), (x, baseline) in zip(centres, positions, strict=True):
        assert x == pytest.approx(cx, abs=0.1)
        assert top < baseline < top + charts.HEAT_CELL_HEIGHT
    assert {text.get("pointer-events") for text in printed} == {"none"}  # tooltips still show


def _luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


@pytest.mark.parametrize("band", [*charts.HEAT_COLOURS, charts.MISSING_COLOUR])
def test_heat_map_values_are_readable_on_every_band_colour(band):
    lighter, darker = sorted([_luminance(band), _luminance(charts.HEAT_VALUE_COLOUR)],
                             reverse=True)

    assert (lighter + 0.05) / (darker + 0.05) >= 4.5  # WCAG AA for small text


def test_heat_map_keeps_its_cells_wide_enough_for_the_values_when_columns_are_many():
    columns = [f"{hour:02d}:00" for hour in range(24)]

    root = parse(charts.heat_map(rows=["followers"], columns=columns, values=[[0.5] * 24],
                                 title="Drift", empty="none"))

    assert {float(cell.get("width")) for cell in marks(root, "rect", "cell")} == {
        charts.HEAT_CELL_WIDTH - 1}
    assert int(root.get("width")) >= charts.HEAT_ROW_LABEL_WIDTH + 24 * charts.HEAT_CELL_WIDTH


def test_heat_map_escapes_feature_names():
    svg = charts.heat_map(rows=["<img src=x>"], columns=["t&1"], values=[[0.5]], title="t",
                          empty="none")

    root = parse(svg)
    assert "<img" not in svg
    assert tooltips(marks(root, "rect", "cell")) == ["<img src=x>, t&1: PSI 0.5 (critical)"]


def test_heat_map_without_rows_says_so():
    root = parse(charts.heat_map(rows=[], columns=["08:00"], values=[], title="t",
                                 empty="no figures"))

    assert root.get("class") == "chart chart-heatmap chart-empty"


def test_heat_map_refuses_a_grid_that_does_not_match_its_labels():
    with pytest.raises(ValueError, match="one value per row and column"):
        charts.heat_map(rows=["a"], columns=["x", "y"], values=[[0.1]], title="t", empty="e")


@pytest.mark.parametrize(("low", "high"), [(0, 7), (0, 0), (-0.2, 0.9), (0, 1234.5), (3, 3)])
def test_nice_ticks_cover_the_range_in_round_steps(low, high):
    ticks = charts.nice_ticks(low, high)

    assert ticks[0] <= low and ticks[-1] >= high and len(ticks) >= 2
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1
