"""A BM25 lexical index per segment: sorted terms and postings, memory-mapped.

bm25s keeps one index for the whole corpus and must be rebuilt to add a document. Here each
immutable segment keeps its own postings, and scores use corpus-wide statistics summed over
segments at query time (document frequency, unit count, mean length) so that a chunk scores
the same whichever segment it sits in. As in Lucene, units of deleted documents still count in
the statistics until a merge drops them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import IndexMismatchError
from qa.files import Unreadable, check_regular
from qa.store.base import LexicalIndex

LEXICAL_ID = "bm25-segments"
LEXICAL_VERSION = 1
MAX_TERM_CHARS = 40  # longer "words" (hashes, base64) are not worth a fixed-width column
# Lucene's BM25 defaults, as bm25s uses them.
K1 = 1.5
B = 0.75

_FILES = ("terms", "indptr", "units", "tf", "lengths")


def write_lexical(unit_tokens: Sequence[Sequence[str]], folder: Path) -> dict[str, Any]:
    """Write postings for the units (chunks), given each unit's tokens."""
    postings: dict[str, list[tuple[int, int]]] = {}
    lengths = np.zeros(len(unit_tokens), dtype=np.int32)
    for unit, toks in enumerate(unit_tokens):
        lengths[unit] = len(toks)
        for term, tf in Counter(toks).items():
            if len(term) <= MAX_TERM_CHARS:
                postings.setdefault(term, []).append((unit, tf))
    terms = sorted(postings)
    indptr = np.zeros(len(terms) + 1, dtype=np.int64)
    for i, t in enumerate(terms):
        indptr[i + 1] = indptr[i] + len(postings[t])
    unit_ids = np.empty(int(indptr[-1]), dtype=np.int32)
    freqs = np.empty(int(indptr[-1]), dtype=np.uint16)
    for i, t in enumerate(terms):
        rows = postings[t]
        lo = int(indptr[i])
        unit_ids[lo : lo + len(rows)] = [u for u, _ in rows]
        freqs[lo : lo + len(rows)] = [min(f, 65535) for _, f in rows]
    width = max((len(t) for t in terms), default=1)
    arrays: dict[str, np.ndarray] = {
        "terms": np.array(terms, dtype=f"<U{width}"),
        "indptr": indptr,
        "units": unit_ids,
        "tf": freqs,
        "lengths": lengths,
    }
    for name, arr in arrays.items():
        np.save(folder / f"lex_{name}.npy", arr, allow_pickle=False)
    return {"terms": len(terms), "postings": int(indptr[-1])}


class SegmentLexical:
    """One segment's postings, memory-mapped."""

    def __init__(self, folder: Path, *, n_units: int) -> None:
        arrays: dict[str, np.ndarray] = {}
        for name in _FILES:
            path = folder / f"lex_{name}.npy"
            try:
                check_regular(path)
                arrays[name] = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError, Unreadable) as exc:
                raise IndexMismatchError(f"{path} is damaged ({exc.__class__.__name__})") \
                    from exc
        self._terms = arrays["terms"]
        self._indptr = arrays["indptr"]
        self._units = arrays["units"]
        self._tf = arrays["tf"]
        self._lengths = arrays["lengths"]
        if len(self._lengths) != n_units or len(self._indptr) != len(self._terms) + 1:
            raise IndexMismatchError(f"the lexical index in {folder} does not match its segment")
        self._total = int(np.sum(self._lengths, dtype=np.int64))

    @property
    def n_units(self) -> int:
        return len(self._lengths)

    @property
    def total_length(self) -> int:
        return self._total

    def _find(self, term: str) -> int:
        if not len(self._terms) or len(term) > MAX_TERM_CHARS:
            return -1
        i = int(np.searchsorted(self._terms, term))
        return i if i < len(self._terms) and self._terms[i] == term else -1

    def doc_freq(self, term: str) -> int:
        i = self._find(term)
        return 0 if i < 0 else int(self._indptr[i + 1] - self._indptr[i])

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        i = self._find(term)
        if i < 0:
            return np.zeros(0, np.int32), np.zeros(0, np.uint16)
        lo, hi = int(self._indptr[i]), int(self._indptr[i + 1])
        return np.asarray(self._units[lo:hi]), np.asarray(self._tf[lo:hi])

    def unit_lengths(self) -> np.ndarray:
        return self._lengths

    def all_terms(self) -> np.ndarray:
        return self._terms

    def problem(self) -> str | None:
        """What is wrong with the vocabulary and postings (`qa index --check`), or None:
        terms must be sorted and unique (lookups bisect them), postings in range."""
        terms, indptr, units = self._terms, np.asarray(self._indptr), np.asarray(self._units)
        if len(terms) > 1 and not bool(np.all(terms[:-1] < terms[1:])):
            return "its lexical vocabulary is not sorted and unique"
        if len(indptr) and (indptr[0] != 0 or np.any(np.diff(indptr) < 0)
                            or indptr[-1] != len(units) or len(self._tf) != len(units)):
            return "its postings do not match their vocabulary"
        if len(units) and (units.min() < 0 or units.max() >= self.n_units):
            return "its postings name chunks it does not hold"
        return None


def bm25_idf(doc_freq: int, n_units: int) -> float:
    """Lucene's BM25 idf: never negative, so a term in most units still counts a little."""
    return float(np.log1p((n_units - doc_freq + 0.5) / (doc_freq + 0.5)))


def bm25_scores(
    segment: LexicalIndex, terms: Sequence[str], idfs: Sequence[float], avg_length: float
) -> tuple[np.ndarray, np.ndarray]:
    """(local unit ids, scores) of the units holding any of the terms."""
    ids_parts, score_parts = [], []
    lengths = segment.unit_lengths()
    for term, idf in zip(terms, idfs, strict=True):
        units, tf = segment.postings(term)
        if not len(units):
            continue
        tf = tf.astype(np.float32)
        norm = K1 * (1 - B + B * np.asarray(lengths[units], np.float32) / max(avg_length, 1e-9))
        ids_parts.append(units)
        score_parts.append(idf * tf / (tf + norm))
    if not ids_parts:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    ids = np.concatenate(ids_parts).astype(np.int64)
    vals = np.concatenate(score_parts).astype(np.float32)
    uniq, inverse = np.unique(ids, return_inverse=True)
    return uniq, np.bincount(inverse, weights=vals).astype(np.float32)
