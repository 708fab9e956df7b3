"""Ranking: a prepared query -> the index's best chunks, from dense and lexical candidates
fused by reciprocal rank."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from qa.chunking import Chunk
from qa.index import Index
from qa.retrieval.filters import Filters, allowed_docs
from qa.retrieval.fusion import RRF_K, rrf
from qa.retrieval.query import Query

Mode = Literal["hybrid", "dense", "lexical"]

# Candidates each ranker contributes before fusion.
CANDIDATES = 100


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its fused score and the parts it came from."""

    rank: int
    chunk_id: int
    chunk: Chunk
    score: float
    dense: float
    lexical: float


def retrieve(
    index: Index,
    query: Query,
    *,
    k: int = 5,
    mode: Mode = "hybrid",
    filters: Filters | None = None,
    lexical_weight: float = 1.0,
) -> list[Passage]:
    """Rank the index's chunks for a prepared query; best first, at most k.

    Each ranker contributes its CANDIDATES best chunks (dense: FAISS over chunk vectors;
    lexical: BM25 postings of the query terms), so a query touches candidates, never every
    chunk. Filters restrict both searches to the allowed documents. In hybrid mode BM25's
    weight is `lexical_weight` times the query's coverage.
    """
    filters = filters or Filters()
    allowed = allowed_docs(index, filters) if filters.active else None
    if allowed is not None and not allowed:
        return []
    dense: dict[int, float] = {}
    lexical: dict[int, float] = {}
    d_ids = l_ids = np.zeros(0, np.int64)
    if mode != "lexical":
        sims, d_ids = index.dense_search(query.vector, CANDIDATES, allowed_docs=allowed)
        dense = dict(zip(d_ids.tolist(), sims.tolist(), strict=True))
    if mode != "dense":
        scores, l_ids = index.lexical_search(query.terms, CANDIDATES, allowed_docs=allowed)
        keep = scores > 0
        l_ids = l_ids[keep]
        lexical = dict(zip(l_ids.tolist(), scores[keep].tolist(), strict=True))

    if mode == "dense":
        fused = dict(dense)
    elif mode == "lexical":
        fused = dict(lexical)
    else:
        fused = rrf([d_ids.tolist(), l_ids.tolist()],
                    [1.0, lexical_weight * query.coverage], RRF_K)
    # Ties by chunk id: the same question ranks the same passages on every run.
    order = sorted(fused, key=lambda cid: (-fused[cid], cid))[:k]
    return [
        Passage(
            rank=r + 1,
            chunk_id=int(cid),
            chunk=index.chunk(cid),
            score=float(fused[cid]),
            dense=float(dense.get(cid, -1.0)),
            lexical=float(lexical.get(cid, 0.0)),
        )
        for r, cid in enumerate(order)
    ]
