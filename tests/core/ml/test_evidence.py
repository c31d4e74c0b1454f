"""How much each source of labels may count (core.ml.evidence)."""

import pytest

from core.ml.evidence import counted_mask, source_caps


@pytest.mark.parametrize(("counts", "caps"), [
    ({"a": 240}, {"a": 0}),
    ({"a": 100, "b": 10}, {"a": 10, "b": 10}),
    ({"a": 20, "b": 20}, {"a": 20, "b": 20}),
    ({"a": 50, "b": 30, "c": 20}, {"a": 50, "b": 30, "c": 20}),
    ({"a": 90, "b": 30, "c": 20}, {"a": 50, "b": 30, "c": 20}),
    ({}, {}),
])
def test_no_source_counts_for_more_than_half(counts, caps):
    assert source_caps(counts, 0.5) == caps


def test_a_share_of_one_counts_everything():
    assert source_caps({"a": 240}, 1.0) == {"a": 240}


def test_each_sources_earliest_labels_count():
    assert counted_mask(["a", "a", "b", "a", "b", "a"], 0.5).tolist() == [
        True, True, True, False, True, False]
