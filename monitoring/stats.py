"""Drift statistics (docs/monitoring.md#drift). Pure numpy/scipy: no database access.

A drift check streams a window of logged values through one accumulator per feature
(`NumericWindow`, `CategoricalWindow`, built from the feature's reference profile entry,
see core.ml.profile), then asks each for its figures. Memory depends on the
reference, never on the window:

- numeric: counts over the reference decile bins (PSI, Jensen–Shannon) and over the
  distinct values of the reference sample (KS); the current values themselves are kept
  only while there are at most `KS_EXACT_MAX` of them;
- categorical: a count per category.

Every figure is the one docs/monitoring.md#drift defines, so it can be checked independently:

- bins (-inf, e1], (e1, e2], ..., (ek, +inf) on the reference edges; shares = counts / n;
- PSI = sum over bins of (c - r) * ln(c / r), shares floored at `PSI_FLOOR`; categorical
  PSI the same over the union of the reference's and the window's categories (a category
  the reference never saw is counted, with a floored reference share);
- KS: statistic and p-value of `scipy.stats.ks_2samp(reference_sample, current)`. Up to
  `KS_EXACT_MAX` current values that very call is made. Above, ks_2samp's 'auto' method
  uses the asymptotic distribution, which depends on the statistic and the two sizes
  only: the statistic is taken exactly from the counts (the empirical CDFs differ most
  at a data point, and both are known at every reference point and just below it) and
  the p-value is `kstwo.sf(D, round(n1 * n2 / (n1 + n2)))`, as ks_2samp computes it;
- chi-square: `scipy.stats.chi2_contingency` on the 2 x k table of reference and current
  counts over the union of categories, without continuity correction; null when the
  table is degenerate (fewer than two categories, or an empty row);
- Jensen–Shannon distance: `scipy.spatial.distance.jensenshannon(r, c, base=2)` on the
  unfloored shares of the same bins or categories.

A feature drifts when PSI > 0.1, or (numeric) KS p-value < 0.01 and KS statistic > 0.1,
or (categorical) chi-square p-value < 0.01; its severity is `critical` when PSI > 0.25,
else `warn` when it drifts, else `none`. The dataset drifts when at least half the
features drift. Figures that do not apply to a kind, or cannot be computed (no current
or no reference values), are None; NaN and inf are dropped and counted as missing.
"""

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy
from scipy import stats
from scipy.spatial.distance import jensenshannon

from core.ml.profile import CATEGORICAL, NUMERIC, bin_counts

PSI_FLOOR = 1e-4
PSI_WARN = 0.1
PSI_CRITICAL = 0.25
KS_MAX_PVALUE = 0.01
KS_MIN_STATISTIC = 0.1
CHI2_MAX_PVALUE = 0.01
# scipy.stats.ks_2samp(method="auto") computes an exact p-value while both samples hold at
# most this many values, and uses the asymptotic distribution above.
KS_EXACT_MAX = 10_000

SEVERITY_NONE = "none"
SEVERITY_WARN = "warn"
SEVERITY_CRITICAL = "critical"


def _float(value) -> float | None:
    """A plain float, or None for NaN/inf (strict JSON)."""
    value = float(value)
    return value if math.isfinite(value) else None


def psi(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """Population stability index over matching bins, shares floored at PSI_FLOOR."""
    reference = numpy.asarray(reference_counts, dtype=float)
    current = numpy.asarray(current_counts, dtype=float)
    r = numpy.maximum(reference / reference.sum(), PSI_FLOOR)
    c = numpy.maximum(current / current.sum(), PSI_FLOOR)
    return float(numpy.sum((c - r) * numpy.log(c / r)))


def js_distance(reference_counts: Sequence[float], current_counts: Sequence[float]
                ) -> float | None:
    """Jensen–Shannon distance (base 2) between the unfloored shares."""
    reference = numpy.asarray(reference_counts, dtype=float)
    current = numpy.asarray(current_counts, dtype=float)
    return _float(jensenshannon(reference / reference.sum(), current / current.sum(), base=2))


def chi_square(reference_counts: Sequence[int], current_counts: Sequence[int]
               ) -> tuple[float | None, float | None]:
    """(statistic, p-value) of the 2 x k table, or (None, None) when it is degenerate."""
    table = numpy.array([reference_counts, current_counts], dtype=float)
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any() or (table.sum(axis=0) == 0).any():
        return None, None
    result = stats.chi2_contingency(table, correction=False)
    return _float(result.statistic), _float(result.pvalue)


def drift_judge(*, kind: str, psi_value: float | None, ks_statistic: float | None = None,
                ks_pvalue: float | None = None, chi2_pvalue: float | None = None
                ) -> tuple[bool, str]:
    """(drifted, severity) of one feature from its figures (None figures never drift)."""
    drifted = psi_value is not None and psi_value > PSI_WARN
    if kind == NUMERIC and ks_pvalue is not None and ks_statistic is not None:
        drifted = drifted or (ks_pvalue < KS_MAX_PVALUE and ks_statistic > KS_MIN_STATISTIC)
    if kind == CATEGORICAL and chi2_pvalue is not None:
        drifted = drifted or chi2_pvalue < CHI2_MAX_PVALUE
    if psi_value is not None and psi_value > PSI_CRITICAL:
        return True, SEVERITY_CRITICAL
    return drifted, SEVERITY_WARN if drifted else SEVERITY_NONE


def dataset_drift(features: Mapping[str, Mapping]) -> bool:
    """At least half the features drift (never for no features)."""
    drifted = sum(1 for figures in features.values() if figures["drifted"])
    return bool(features) and 2 * drifted >= len(features)


def _figures(*, kind: str, n_current: int, missing: int, current_counts, psi_value=None,
             ks_statistic=None, ks_pvalue=None, chi2_statistic=None, chi2_pvalue=None,
             js=None, new_categories=None) -> dict:
    drifted, severity = drift_judge(kind=kind, psi_value=psi_value, ks_statistic=ks_statistic,
                                    ks_pvalue=ks_pvalue, chi2_pvalue=chi2_pvalue)
    return {
        "kind": kind, "psi": psi_value, "ks_statistic": ks_statistic, "ks_pvalue": ks_pvalue,
        "chi2_statistic": chi2_statistic, "chi2_pvalue": chi2_pvalue, "js_distance": js,
        "drifted": drifted, "severity": severity,
        # What the figures were computed on: finite (or present) values, the dropped ones,
        # and the window's counts per bin or category.
        "n_current": n_current, "missing": missing, "current_counts": current_counts,
        "new_categories": new_categories,
    }


class NumericWindow:
    """Accumulates a window of one numeric feature against its reference entry."""

    kind = NUMERIC

    def __init__(self, *, entry: Mapping) -> None:
        self.edges = numpy.asarray(entry.get("edges") or [], dtype=float)
        self.reference_bins = numpy.asarray(entry.get("counts") or [], dtype=numpy.int64)
        self.sample = numpy.sort(numpy.asarray(entry.get("sample") or [], dtype=float))
        # Distinct reference values u1 < ... < um and how many sample values are <= each.
        self.points = numpy.unique(self.sample)
        self.reference_cdf = numpy.searchsorted(self.sample, self.points, side="right")
        # [j]: the j-th point, the greatest of j points <= a value (NaN, equal to nothing,
        # for none).
        self.point_at_or_below = numpy.concatenate([[numpy.nan], self.points])
        self.bins = numpy.zeros(len(self.edges) + 1, dtype=numpy.int64)
        # at_or_above[j]: current values with exactly j points <= them (x in [uj, uj+1));
        # above[j]: current values with exactly j points < them (x in (uj, uj+1]).
        self.at_or_above = numpy.zeros(len(self.points) + 1, dtype=numpy.int64)
        self.above = numpy.zeros(len(self.points) + 1, dtype=numpy.int64)
        self.kept: list[numpy.ndarray] | None = []
        self.n = 0
        self.missing = 0

    def add(self, values: Iterable) -> None:
        array = numpy.asarray(values, dtype=float)
        finite = array[numpy.isfinite(array)]
        self.missing += int(array.size - finite.size)
        if not finite.size:
            return
        self.n += int(finite.size)
        self.bins += bin_counts(finite, self.edges)
        size = len(self.points) + 1
        at_or_above = numpy.searchsorted(self.points, finite, side="right")
        self.at_or_above += numpy.bincount(at_or_above, minlength=size)
        # side="left" without a second search (half the cost on a large window): one less
        # where the value is the last point <= it, as the points are distinct.
        equal = self.point_at_or_below[at_or_above] == finite
        self.above += numpy.bincount(at_or_above - equal, minlength=size)
        if self.kept is not None:
            self.kept.append(finite)
            if self.n > KS_EXACT_MAX:
                self.kept = None  # the counts take over: memory stays bounded

    def _ks(self) -> tuple[float, float]:
        n1, n2 = self.sample.size, self.n
        if self.kept is not None:
            result = stats.ks_2samp(self.sample, numpy.concatenate(self.kept))
            return float(result.statistic), float(result.pvalue)
        # The CDF difference at each reference point uj, and at the last current value
        # below uj+1 (the current CDF's highest value before the reference CDF steps up).
        reference = numpy.concatenate([[0], self.reference_cdf]) / n1
        current_at_points = numpy.cumsum(self.above)[:-1] / n2
        current_below_next = numpy.cumsum(self.at_or_above) / n2
        statistic = float(max(numpy.abs(reference[1:] - current_at_points).max(initial=0.0),
                              numpy.abs(reference - current_below_next).max()))
        m, n = sorted([float(n1), float(n2)], reverse=True)
        pvalue = float(numpy.clip(stats.kstwo.sf(statistic, numpy.round(m * n / (m + n))), 0, 1))
        return statistic, pvalue

    def result(self) -> dict:
        figures = {}
        if self.n and self.reference_bins.sum():
            figures.update(psi_value=psi(self.reference_bins, self.bins),
                           js=js_distance(self.reference_bins, self.bins))
        if self.n and self.sample.size:
            figures["ks_statistic"], figures["ks_pvalue"] = self._ks()
        return _figures(kind=NUMERIC, n_current=self.n, missing=self.missing,
                        current_counts=[int(count) for count in self.bins], **figures)


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class CategoricalWindow:
    """Accumulates a window of one categorical feature against its reference entry.

    Values are compared as `str(value)`, as the profile keys them; None and NaN are missing.
    """

    kind = CATEGORICAL

    def __init__(self, *, entry: Mapping) -> None:
        self.reference = {str(key): int(count) for key, count in (entry.get("counts") or {}).items()
                          if count}
        self.counts: Counter = Counter()
        self.missing = 0

    def add(self, values: Iterable) -> None:
        values = list(values)
        present = [value for value in values if not _is_missing(value)]
        self.counts.update(map(str, present))
        self.missing += len(values) - len(present)

    def add_counts(self, counts: Iterable[tuple[object, int]]) -> None:
        """Like `add`, for (value, how many times it occurs) pairs."""
        for value, count in counts:
            if _is_missing(value):
                self.missing += count
            else:
                self.counts[str(value)] += count

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    def result(self) -> dict:
        categories = sorted(set(self.reference) | set(self.counts))
        counts = {category: self.counts[category] for category in sorted(self.counts)}
        new = sorted(set(self.counts) - set(self.reference))
        if not self.counts or not self.reference:
            return _figures(kind=CATEGORICAL, n_current=self.n, missing=self.missing,
                            current_counts=counts, new_categories=new)
        reference = [self.reference.get(category, 0) for category in categories]
        current = [self.counts[category] for category in categories]
        chi2_statistic, chi2_pvalue = chi_square(reference, current)
        return _figures(
            kind=CATEGORICAL, n_current=self.n, missing=self.missing, current_counts=counts,
            psi_value=psi(reference, current), chi2_statistic=chi2_statistic,
            chi2_pvalue=chi2_pvalue, js=js_distance(reference, current), new_categories=new,
        )


def window_for(entry: Mapping) -> NumericWindow | CategoricalWindow:
    """The accumulator for a reference profile entry of either kind."""
    if entry.get("kind") == CATEGORICAL:
        return CategoricalWindow(entry=entry)
    return NumericWindow(entry=entry)
