"""Significance tests of an A/B test's live metric (docs/monitoring.md#ab-tests). Pure scipy: no
database access.

Both tests compare the challenger with the champion and are two-sided:

- regression: Welch's t-test (unequal variances) on the per-prediction absolute errors,
  `scipy.stats.ttest_ind(challenger, champion, equal_var=False)`; a positive statistic
  means the challenger's errors are larger on average;
- classification: the pooled two-proportion z-test on accuracy,
  z = (p_challenger - p_champion) / sqrt(p (1 - p) (1 / n_challenger + 1 / n_champion))
  with p the pooled share of correct predictions, p-value = 2 * norm.sf(|z|); a positive
  statistic means the challenger is more accurate.

Shadow tests (docs/monitoring.md#shadow-tests) pair the shadow's answer with the champion's
to the same request, so their tests are paired, also two-sided:

- classification: McNemar's exact test on the discordant pairs (b: only the champion
  right, c: only the shadow right), `scipy.stats.binomtest(c, b + c, 0.5)`; the statistic
  is c - b, positive when the shadow is right more often;
- regression: the Wilcoxon signed-rank test on the paired absolute errors,
  `scipy.stats.wilcoxon(shadow, champion)`; the statistic is the mean of shadow minus
  champion error, positive when the shadow errs more.

A figure that is undefined on the data (fewer than two errors in an arm, no spread at
all, an empty arm, both arms all right or all wrong) is None rather than NaN, so the
result stores as strict JSON and reads as "no evidence".
"""

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy
from scipy import stats

WELCH_T = "welch_t"
TWO_PROPORTION_Z = "two_proportion_z"
MCNEMAR_EXACT = "mcnemar_exact"
WILCOXON = "wilcoxon_signed_rank"


@dataclass(frozen=True)
class SignificanceResult:
    test: str
    statistic: float | None
    p_value: float | None


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def welch_t_test(*, champion_errors: Sequence[float],
                 challenger_errors: Sequence[float]) -> SignificanceResult:
    """Welch's t-test on the two arms' absolute errors."""
    champion = numpy.asarray(champion_errors, dtype=float)
    challenger = numpy.asarray(challenger_errors, dtype=float)
    if len(champion) < 2 or len(challenger) < 2:
        return SignificanceResult(WELCH_T, None, None)
    with warnings.catch_warnings():
        # Identical errors in both arms: scipy warns and answers NaN, which we report as None.
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(challenger, champion, equal_var=False)
    statistic, p_value = _finite(result.statistic), _finite(result.pvalue)
    if statistic is None or p_value is None:
        return SignificanceResult(WELCH_T, None, None)
    return SignificanceResult(WELCH_T, statistic, p_value)


def two_proportion_z_test(*, champion_correct: int, champion_n: int, challenger_correct: int,
                          challenger_n: int) -> SignificanceResult:
    """Pooled two-proportion z-test on the two arms' accuracy."""
    if champion_n <= 0 or challenger_n <= 0:
        return SignificanceResult(TWO_PROPORTION_Z, None, None)
    pooled = (champion_correct + challenger_correct) / (champion_n + challenger_n)
    standard_error = math.sqrt(pooled * (1 - pooled) * (1 / champion_n + 1 / challenger_n))
    if standard_error == 0:
        return SignificanceResult(TWO_PROPORTION_Z, None, None)
    z = (challenger_correct / challenger_n - champion_correct / champion_n) / standard_error
    return SignificanceResult(TWO_PROPORTION_Z, float(z), float(2 * stats.norm.sf(abs(z))))


def mcnemar_exact_test(*, champion_correct: Sequence[bool],
                       shadow_correct: Sequence[bool]) -> SignificanceResult:
    """McNemar's exact test on paired correctness (one entry per labelled pair)."""
    champion = numpy.asarray(champion_correct, dtype=bool)
    shadow = numpy.asarray(shadow_correct, dtype=bool)
    only_champion = int(numpy.sum(champion & ~shadow))
    only_shadow = int(numpy.sum(shadow & ~champion))
    discordant = only_champion + only_shadow
    if discordant == 0:
        return SignificanceResult(MCNEMAR_EXACT, None, None)
    p_value = stats.binomtest(only_shadow, discordant, 0.5).pvalue
    return SignificanceResult(MCNEMAR_EXACT, float(only_shadow - only_champion),
                              _finite(p_value))


def wilcoxon_signed_rank_test(*, champion_errors: Sequence[float],
                              shadow_errors: Sequence[float]) -> SignificanceResult:
    """The Wilcoxon signed-rank test on paired absolute errors."""
    champion = numpy.asarray(champion_errors, dtype=float)
    shadow = numpy.asarray(shadow_errors, dtype=float)
    if len(champion) < 2 or not numpy.any(shadow - champion):
        return SignificanceResult(WILCOXON, None, None)
    p_value = stats.wilcoxon(shadow, champion).pvalue
    return SignificanceResult(WILCOXON, _finite(numpy.mean(shadow - champion)),
                              _finite(p_value))
