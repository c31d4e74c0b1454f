"""A/B significance tests (monitoring.significance) against the formulas written out."""

import math

import numpy
from scipy import stats

from monitoring.significance import two_proportion_z_test, welch_t_test


def test_welch_t_test_matches_hand_computation():
    rng = numpy.random.default_rng(3)
    champion, challenger = rng.exponential(1.0, 40), rng.exponential(1.6, 55)
    mean_a, mean_b = challenger.mean(), champion.mean()
    var_a, var_b = challenger.var(ddof=1) / len(challenger), champion.var(ddof=1) / len(champion)
    t = (mean_a - mean_b) / math.sqrt(var_a + var_b)
    df = (var_a + var_b) ** 2 / (var_a ** 2 / (len(challenger) - 1)
                                 + var_b ** 2 / (len(champion) - 1))
    p = 2 * stats.t.sf(abs(t), df)

    result = welch_t_test(champion_errors=champion, challenger_errors=challenger)

    assert result.test == "welch_t"
    assert abs(result.statistic - t) < 1e-9
    assert abs(result.p_value - p) < 1e-9
    assert result.statistic > 0  # the challenger's errors are larger


def test_welch_t_test_is_undefined_without_spread_or_rows():
    assert welch_t_test(champion_errors=[1.0, 1.0], challenger_errors=[1.0, 1.0]).p_value is None
    assert welch_t_test(champion_errors=[1.0], challenger_errors=[1.0, 2.0]).statistic is None


def test_two_proportion_z_test_matches_hand_computation():
    champion_correct, champion_n, challenger_correct, challenger_n = 70, 100, 90, 110
    pooled = (champion_correct + challenger_correct) / (champion_n + challenger_n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / champion_n + 1 / challenger_n))
    z = (challenger_correct / challenger_n - champion_correct / champion_n) / se
    p = 2 * (1 - stats.norm.cdf(abs(z)))

    result = two_proportion_z_test(champion_correct=champion_correct, champion_n=champion_n,
                                   challenger_correct=challenger_correct,
                                   challenger_n=challenger_n)

    assert result.test == "two_proportion_z"
    assert abs(result.statistic - z) < 1e-9
    assert abs(result.p_value - p) < 1e-9


def test_two_proportion_z_test_is_undefined_when_every_answer_is_right():
    result = two_proportion_z_test(champion_correct=10, champion_n=10, challenger_correct=5,
                                   challenger_n=5)
    assert (result.statistic, result.p_value) == (None, None)
