"""rrf: weighted reciprocal rank fusion as a pure function, on hand-made rankings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qa.retrieval import RRF_K, rrf


def test_worked_example() -> None:
    """Dense ranks a, b, c; BM25 ranks c, a at half weight. a is first and second:
    1/61 + 0.5/62 = 0.02446 beats c (1/63 + 0.5/61 = 0.02407), which beats b (1/62 = 0.01613)
    though b was second for dense: agreement between rankers wins."""
    fused = rrf([["a", "b", "c"], ["c", "a"]], [1.0, 0.5], 60)
    assert fused == {"a": 1 / 61 + 0.5 / 62, "b": 1 / 62, "c": 1 / 63 + 0.5 / 61}
    assert sorted(fused, key=lambda x: -fused[x]) == ["a", "c", "b"]


def test_k_damps_the_head() -> None:
    """An item third in both lists against one first in one list: with k=0 the head wins
    (1/1 > 1/3 + 1/3); with k=60 agreement does (2/63 = 0.0317 > 1/61 = 0.0164)."""
    rankings = [["x", "a", "both"], ["y", "b", "both"]]
    small, large = rrf(rankings, [1.0, 1.0], 0), rrf(rankings, [1.0, 1.0], 60)
    assert small["x"] > small["both"]
    assert large["both"] > large["x"]


def test_zero_weight_keeps_candidates_at_zero() -> None:
    """A lexical ranking weighted 0 (no question word in the corpus) adds nothing, but its
    items stay candidates with score 0.0."""
    fused = rrf([[1, 2], [3, 1]], [1.0, 0.0])
    assert fused == {1: 1 / (RRF_K + 1), 2: 1 / (RRF_K + 2), 3: 0.0}


def test_first_place_counts_and_arguments_are_checked() -> None:
    assert rrf([["a", "b", "a"]], [1.0], 60) == {"a": 1 / 61, "b": 1 / 62}
    assert rrf([], []) == {}
    with pytest.raises(ValueError, match="2 rankings but 1 weights"):
        rrf([["a"], ["b"]], [1.0])


ids = st.lists(st.integers(0, 50), unique=True, max_size=20)


@given(ids, ids, st.floats(0, 4, allow_nan=False))
def test_same_floats_as_the_fusion_it_replaced(dense: list[int], lexical: list[int],
                                              w: float) -> None:
    """Bit for bit the sums retrieval computed before rrf was its own unit (dense term
    first, then lexical), so answers cannot move."""
    d_rank = {i: r for r, i in enumerate(dense, start=1)}
    l_rank = {i: r for r, i in enumerate(lexical, start=1)}
    expected = {}
    for cid in d_rank.keys() | l_rank.keys():
        score = 1.0 / (RRF_K + d_rank[cid]) if cid in d_rank else 0.0
        if cid in l_rank:
            score += w / (RRF_K + l_rank[cid])
        expected[cid] = score
    assert rrf([dense, lexical], [1.0, w], RRF_K) == expected
