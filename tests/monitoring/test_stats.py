"""Drift statistics against an independent computation with numpy/scipy (no database).

Expected figures are computed here from the raw arrays, following docs/monitoring.md#drift word for
word, never with monitoring.stats' own helpers.
"""

from itertools import pairwise

import numpy
import pytest
from scipy import stats as scipy_stats
from scipy.spatial.distance import jensenshannon

from core.ml.profile import categorical_entry, numeric_entry
from monitoring import stats

TOLERANCE = 1e-9


def _rng(seed: int = 0):
    return numpy.random.default_rng(seed)


def _decile_shares(reference: numpy.ndarray, values: numpy.ndarray):
    """(reference counts, current counts) over (-inf, e1], (e1, e2], ..., (ek, +inf)."""
    edges = numpy.unique(numpy.quantile(reference, numpy.arange(1, 10) / 10))
    bounds = [-numpy.inf, *edges, numpy.inf]

    def counts(x):
        return numpy.array([numpy.sum((x > low) & (x <= high))
                            for low, high in pairwise(bounds)])
    return counts(reference), counts(values)


def _psi(reference_counts, current_counts) -> float:
    r = numpy.maximum(reference_counts / reference_counts.sum(), 1e-4)
    c = numpy.maximum(current_counts / current_counts.sum(), 1e-4)
    return float(numpy.sum((c - r) * numpy.log(c / r)))


def _js(reference_counts, current_counts) -> float:
    return float(jensenshannon(reference_counts / reference_counts.sum(),
                               current_counts / current_counts.sum(), base=2))


def _numeric(reference, current, chunks: int = 1) -> dict:
    window = stats.window_for(numeric_entry(values=reference, seed=0))
    for part in numpy.array_split(current, chunks):
        window.add(part)
    return window.result()


def _categorical(reference, current, chunks: int = 1) -> dict:
    window = stats.window_for(categorical_entry(values=reference))
    for part in numpy.array_split(numpy.asarray(current, dtype=object), chunks):
        window.add(part)
    return window.result()


def test_numeric_figures_match_numpy_and_scipy_on_the_raw_values():
    reference = _rng(1).normal(10.0, 2.0, 3000)
    current = _rng(2).normal(10.6, 2.3, 800)
    expected_r, expected_c = _decile_shares(reference, current)
    ks = scipy_stats.ks_2samp(reference, current)  # the sample is every value below 5,000

    figures = _numeric(reference, current, chunks=3)

    assert figures["kind"] == "numeric"
    assert figures["psi"] == pytest.approx(_psi(expected_r, expected_c), abs=TOLERANCE)
    assert figures["ks_statistic"] == pytest.approx(ks.statistic, abs=TOLERANCE)
    assert figures["ks_pvalue"] == pytest.approx(ks.pvalue, abs=TOLERANCE)
    assert figures["js_distance"] == pytest.approx(_js(expected_r, expected_c), abs=TOLERANCE)
    assert (figures["chi2_statistic"], figures["chi2_pvalue"]) == (None, None)
    assert figures["current_counts"] == expected_c.tolist()
    assert (figures["n_current"], figures["missing"]) == (800, 0)


def test_ks_matches_scipy_on_a_sampled_reference_and_a_window_above_the_exact_limit():
    # 8,000 reference values: the profile keeps a 5,000-value sample; 12,000 current values
    # in chunks: figures from counts, no values kept. Integers: many ties.
    reference = _rng(3).poisson(4.0, 8000).astype(float)
    current = _rng(4).poisson(4.2, 12_000).astype(float)
    entry = numeric_entry(values=reference, seed=5)
    ks = scipy_stats.ks_2samp(numpy.array(entry["sample"]), current)

    window = stats.window_for(entry)
    for part in numpy.array_split(current, 13):
        window.add(part)
    figures = window.result()

    assert window.kept is None
    assert figures["ks_statistic"] == pytest.approx(ks.statistic, abs=TOLERANCE)
    assert figures["ks_pvalue"] == pytest.approx(ks.pvalue, abs=TOLERANCE)


def test_categorical_figures_match_scipy_with_a_new_category():
    reference = _rng(6).choice(["a", "b", "c"], 2000, p=[0.5, 0.3, 0.2])
    current = _rng(7).choice(["a", "b", "c", "new"], 600, p=[0.4, 0.3, 0.2, 0.1])
    categories = ["a", "b", "c", "new"]
    r = numpy.array([numpy.sum(reference == c) for c in categories])
    c = numpy.array([numpy.sum(current == c) for c in categories])
    chi2 = scipy_stats.chi2_contingency(numpy.array([r, c]), correction=False)

    figures = _categorical(reference, current, chunks=4)

    assert figures["psi"] == pytest.approx(_psi(r, c), abs=TOLERANCE)
    assert figures["chi2_statistic"] == pytest.approx(chi2.statistic, abs=TOLERANCE)
    assert figures["chi2_pvalue"] == pytest.approx(chi2.pvalue, abs=TOLERANCE)
    assert figures["js_distance"] == pytest.approx(_js(r, c), abs=TOLERANCE)
    assert (figures["ks_statistic"], figures["ks_pvalue"]) == (None, None)
    assert figures["new_categories"] == ["new"]
    assert figures["current_counts"] == dict(zip(categories, c.tolist(), strict=True))
    assert figures["drifted"] is True


def test_identical_distributions_do_not_drift():
    numeric_values = _rng(8).normal(0.0, 1.0, 1000)
    categories = _rng(9).choice(["x", "y", "z"], 1000)

    numeric = _numeric(numeric_values, numeric_values)
    categorical = _categorical(categories, categories)

    assert (numeric["psi"], numeric["ks_statistic"], numeric["ks_pvalue"]) == (0.0, 0.0, 1.0)
    assert (categorical["psi"], categorical["chi2_statistic"]) == (0.0, 0.0)
    assert numeric["js_distance"] == categorical["js_distance"] == 0.0
    for figures in (numeric, categorical):
        assert (figures["drifted"], figures["severity"]) == (False, "none")


def test_a_mean_shift_of_one_standard_deviation_drifts_critically():
    reference = _rng(10).normal(50.0, 5.0, 2000)
    current = _rng(11).normal(55.0, 5.0, 500)

    figures = _numeric(reference, current)

    assert figures["psi"] > stats.PSI_CRITICAL
    assert (figures["drifted"], figures["severity"]) == (True, "critical")


def test_nan_and_inf_are_dropped_and_counted_as_missing():
    reference = _rng(12).normal(0.0, 1.0, 500)
    finite = _rng(13).normal(0.0, 1.0, 300)
    current = numpy.concatenate([finite, [numpy.nan, numpy.inf, -numpy.inf]])
    expected = _numeric(reference, finite)

    figures = _numeric(reference, current, chunks=2)

    assert (figures["n_current"], figures["missing"]) == (300, 3)
    assert {k: v for k, v in figures.items() if k != "missing"} == {
        k: v for k, v in expected.items() if k != "missing"}


def test_none_and_nan_categories_are_counted_as_missing():
    window = stats.window_for(categorical_entry(values=["a", "b"] * 50))

    window.add(["a", None, float("nan"), "b"])

    figures = window.result()
    assert (figures["n_current"], figures["missing"]) == (2, 2)
    assert figures["current_counts"] == {"a": 1, "b": 1}


def test_chunked_windows_give_the_same_figures_as_one_chunk():
    reference = _rng(14).gamma(2.0, 3.0, 4000)
    current = _rng(15).gamma(2.2, 3.0, 10_500)
    categories = _rng(16).choice(list("abcd"), 900)

    assert _numeric(reference, current, chunks=97) == _numeric(reference, current)
    assert _categorical(categories[:400], categories, chunks=9) == _categorical(
        categories[:400], categories)


def test_chi_square_of_a_single_category_is_null_without_crashing():
    figures = _categorical(["only"] * 100, ["only"] * 40)

    assert (figures["chi2_statistic"], figures["chi2_pvalue"]) == (None, None)
    assert (figures["psi"], figures["drifted"]) == (0.0, False)


def test_an_empty_window_has_null_figures():
    numeric = stats.window_for(numeric_entry(values=[1.0, 2.0, 3.0], seed=0)).result()
    categorical = stats.window_for(categorical_entry(values=["a"])).result()

    for figures in (numeric, categorical):
        assert [figures[k] for k in ("psi", "ks_statistic", "chi2_statistic", "js_distance")] \
            == [None] * 4
        assert (figures["drifted"], figures["severity"], figures["n_current"]) == (False, "none", 0)


@pytest.mark.parametrize(("kind", "figures", "expected"), [
    ("numeric", {"psi_value": 0.1}, (False, "none")),
    ("numeric", {"psi_value": 0.11}, (True, "warn")),
    ("numeric", {"psi_value": 0.26}, (True, "critical")),
    ("numeric", {"psi_value": 0.0, "ks_statistic": 0.11, "ks_pvalue": 0.009}, (True, "warn")),
    ("numeric", {"psi_value": 0.0, "ks_statistic": 0.1, "ks_pvalue": 0.001}, (False, "none")),
    ("numeric", {"psi_value": 0.0, "ks_statistic": 0.5, "ks_pvalue": 0.01}, (False, "none")),
    ("categorical", {"psi_value": 0.0, "chi2_pvalue": 0.009}, (True, "warn")),
    ("categorical", {"psi_value": 0.0, "chi2_pvalue": 0.01}, (False, "none")),
    ("categorical", {"psi_value": None, "chi2_pvalue": None}, (False, "none")),
])
def test_drift_rule_and_severity_follow_the_spec_thresholds(kind, figures, expected):
    assert stats.drift_judge(kind=kind, **figures) == expected


@pytest.mark.parametrize(("drifted", "expected"), [
    ([True, True, False, False], True),
    ([True, False, False], False),
    ([True, False], True),
    ([], False),
])
def test_dataset_drifts_when_at_least_half_the_features_drift(drifted, expected):
    features = {f"f{i}": {"drifted": flag} for i, flag in enumerate(drifted)}

    assert stats.dataset_drift(features) is expected
