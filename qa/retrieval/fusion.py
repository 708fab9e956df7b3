"""Fusion: several best-first rankings of the same items -> one score per item."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

# Reciprocal rank fusion constant (Cormack et al. 2009): 60 damps the head of each list so
# that one ranker's top hit cannot drown the other's; tuned values on our set were flat.
RRF_K = 60

T = TypeVar("T", bound=Hashable)


def rrf(
    rankings: Sequence[Sequence[T]], weights: Sequence[float], k: int = RRF_K
) -> dict[T, float]:
    """Weighted reciprocal rank fusion: each item scores sum(w / (k + rank)) over the rankings
    that hold it (rank 1-based; an item's first place in a ranking counts).

    An item of a zero-weight ranking is kept with score 0.0: it was still a candidate.
    Scores are summed in the order of `rankings`, so the same input gives the same floats.
    """
    if len(rankings) != len(weights):
        raise ValueError(f"{len(rankings)} rankings but {len(weights)} weights")
    fused: dict[T, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        seen: set[T] = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return fused
