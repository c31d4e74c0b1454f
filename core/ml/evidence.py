"""How much each source of labels may count (docs/monitoring.md#independent-evidence). Pure.

A source is whoever vouches for a label: one client, or one API key without a client. No
source may make up more than `max_share` of the labels that count, so one lying client
cannot decide an A/B test or steer a retrain on its own.

The counted total T is the greatest whole number with T = sum over sources of
min(n_source, floor(max_share * T)): iterating that sum from the total of all labels
only ever decreases it and stops at that fixpoint. With one source and a share below one
nothing counts; with 100 labels of one client and 10 of another, 10 of each count.
"""

import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy


def source_caps(counts: Mapping[str, int], max_share: float) -> dict[str, int]:
    """How many of each source's labels count, given how many each gave."""
    total = sum(counts.values())
    while True:
        # The epsilon keeps 0.5 * 20 at 10 despite floating point.
        per_source = math.floor(max_share * total + 1e-9)
        counted = sum(min(n, per_source) for n in counts.values())
        if counted == total:
            return {source: min(n, per_source) for source, n in counts.items()}
        total = counted


def counted_mask(sources: Sequence[str], max_share: float) -> numpy.ndarray:
    """Which labels count (a boolean per label, in the given order): each source's first
    labels up to its cap."""
    caps = source_caps(Counter(sources), max_share)
    seen: Counter = Counter()
    mask = numpy.zeros(len(sources), dtype=bool)
    for position, source in enumerate(sources):
        if seen[source] < caps[source]:
            mask[position] = True
            seen[source] += 1
    return mask
