"""The two small interfaces retrieval needs from storage, which mypy checks the segment
stores against. There is one backend of each (FAISS vectors, BM25 postings) and no factory:
a snapshot records their ids and versions (`qa.index.snapshot.STORES`), and opening an index
written with others is refused with the command that rebuilds it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np


class VectorStore(Protocol):
    """Inner-product search over the L2-normalised vectors of one segment."""

    id: str

    @property
    def ntotal(self) -> int: ...

    def search(
        self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, local ids) of the best k, best first; `allowed` is a bool mask."""
        ...

    def search_many(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, local ids) rows for several queries at once; id -1 pads a row."""
        ...

    def search_exact(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact search over every vector (to measure the recall of `search`)."""
        ...

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """float32 vectors of these local ids (for merges and exact re-scoring)."""
        ...


class VectorStoreWriter(Protocol):
    def write(self, vectors: np.ndarray, path: Path) -> dict[str, Any]:
        """Write the vectors; return the parameters to record in the segment."""
        ...


class LexicalIndex(Protocol):
    """Term statistics and postings of one segment."""

    @property
    def n_units(self) -> int: ...

    @property
    def total_length(self) -> int: ...

    def doc_freq(self, term: str) -> int: ...

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(local unit ids, term frequencies) of the term; empty arrays when absent."""
        ...

    def unit_lengths(self) -> np.ndarray: ...
