"""The validation diagnostics on the version page: chart geometry and the template."""

import pytest
from django.template.loader import render_to_string

from mlregistry.validation_charts import range_ticks, validation_diagnostics_chart

TEMPLATE = "admin/mlregistry/mlmodelversion/evidence/validation.html"

RESIDUALS = {
    "format": 1, "task": "ignored here", "rows": 4, "kind": "residuals",
    "residuals": {
        "mean": 0.5, "sample_seed": 0,
        "sample": [[10.0, -2.0], [20.0, 1.0], [30.0, 0.0], [40.0, 3.0]],
        "bins": [
            {"lower": 10.0, "upper": 20.0, "count": 2, "predicted_mean": 15.0,
             "residual_mean": -0.5, "residual_p10": -1.7, "residual_p90": 0.7},
            {"lower": 20.0, "upper": 40.0, "count": 2, "predicted_mean": 35.0,
             "residual_mean": 1.5, "residual_p10": 0.3, "residual_p90": 2.7},
        ],
    },
}
CALIBRATION = {
    "format": 1, "task": "ignored here", "rows": 30, "kind": "classification",
    "calibration": {"positive_label": "yes", "bins": [
        {"lower": 0.1, "upper": 0.2, "count": 10, "mean_predicted": 0.15, "observed_rate": 0.15},
        {"lower": 0.8, "upper": 0.9, "count": 20, "mean_predicted": 0.85, "observed_rate": 0.4},
    ]},
    "confusion": {"labels": ["no", "yes"], "counts": [[8, 2], [5, 15]]},
}
NOT_APPLICABLE = {"format": 1, "task": "ignored here", "rows": 12, "kind": "not_applicable",
                  "reason": "anomaly detection has no target"}


def render(diagnostics: dict | None) -> str:
    chart = validation_diagnostics_chart(diagnostics)
    return render_to_string(TEMPLATE, {"validation_chart": chart})


def on_line(point: tuple[float, float], start: tuple[float, float], end: tuple[float, float]
            ) -> bool:
    (x, y), (x1, y1), (x2, y2) = point, start, end
    return abs((x - x1) * (y2 - y1) - (y - y1) * (x2 - x1)) < 1.0


def test_ticks_are_round_steps_inside_the_range():
    assert range_ticks(-3.2, 2987.0) == ([0, 1000, 2000], 3)
    assert range_ticks(-0.013, 0.042) == ([0.0, 0.02, 0.04], -2)
    assert range_ticks(-250.0, 180.0) == ([-200, -100, 0, 100], 2)


def test_residual_chart_labels_ticks_and_draws_every_sampled_point():
    chart = validation_diagnostics_chart(RESIDUALS)["residuals"]

    assert len(chart["points"]) == 4
    assert [tick["label"] for tick in chart["x_ticks"]] == ["10", "20", "30", "40"]
    assert [tick["label"] for tick in chart["y_ticks"]] == ["-2", "0", "2"]
    assert (chart["x_label"], chart["y_label"]) == ("Predicted value",
                                                    "Residual (actual − predicted)")


def test_residual_chart_zero_line_is_at_the_zero_tick_and_bands_span_their_bins():
    chart = validation_diagnostics_chart(RESIDUALS)["residuals"]

    zero_tick = next(tick for tick in chart["y_ticks"] if tick["label"] == "0")
    assert chart["zero_y"] == zero_tick["y"]
    first, second = chart["bands"]
    assert float(first["x"]) + float(first["width"]) == pytest.approx(float(second["x"]), abs=0.2)
    # y grows downwards: the 90th percentile is the band's top edge.
    assert float(first["y"]) < float(first["cy"]) < float(first["y"]) + float(first["height"])
    assert chart["mean_line"] == f"{first['cx']},{first['cy']} {second['cx']},{second['cy']}"


def test_reliability_points_of_a_calibrated_bin_lie_on_the_diagonal_and_others_off_it():
    chart = validation_diagnostics_chart(CALIBRATION)["reliability"]

    diagonal = chart["diagonal"]
    start = (float(diagonal["x1"]), float(diagonal["y1"]))
    end = (float(diagonal["x2"]), float(diagonal["y2"]))
    calibrated, overconfident = ((float(p["cx"]), float(p["cy"])) for p in chart["points"])
    assert on_line(calibrated, start, end)
    assert not on_line(overconfident, start, end)
    assert [tick["label"] for tick in chart["x_ticks"]] == ["0.0", "0.2", "0.4", "0.6", "0.8",
                                                            "1.0"]


def test_confusion_table_rows_are_actual_labels_with_totals():
    table = validation_diagnostics_chart(CALIBRATION)["confusion"]

    assert table["labels"] == ["no", "yes"]
    assert [[cell["count"] for cell in row["cells"]] for row in table["rows"]] == [[8, 2], [5, 15]]
    assert [row["total"] for row in table["rows"]] == [10, 20]
    assert table["column_totals"] == [13, 17]
    assert (table["correct"], table["total"]) == (23, 30)


def test_a_version_without_diagnostics_says_they_were_not_recorded():
    html = render(None)

    assert 'id="validation-diagnostics"' in html
    assert "were not recorded for this version" in html
    assert "<svg" not in html


def test_not_applicable_diagnostics_give_the_reason():
    html = render(NOT_APPLICABLE)

    assert "Not applicable on the 12 validation rows: anomaly detection has no target." in html
    assert "<svg" not in html


def test_regression_page_names_its_rows_and_labels_the_residual_chart():
    html = render(RESIDUALS)

    assert "Computed on the 4 validation rows" in html
    assert 'class="validation-chart residual-chart"' in html
    assert 'aria-labelledby="residual-chart-title residual-chart-desc"' in html
    assert html.count('<circle cx=') == 4
    assert 'class="zero-line"' in html
    assert "confusion-matrix" not in html


def test_binary_page_draws_the_reliability_diagram_and_the_confusion_matrix():
    html = render(CALIBRATION)

    assert 'class="validation-chart reliability-chart"' in html
    assert "<title>perfectly calibrated</title>" in html
    assert 'class="confusion-matrix"' in html
    assert '<td class="number correct" title="actual yes, predicted yes">15</td>' in html
    assert "23 of 30 rows on the diagonal" in html
