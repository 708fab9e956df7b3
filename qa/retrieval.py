"""Question -> ranked passages: dense (chunks and their sentences), lexical (BM25), fused."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from qa.chunking import Chunk
from qa.documents import date_bounds
from qa.errors import InvalidQuestionError
from qa.index import Index
from qa.text import content_words, fold, stem

Mode = Literal["hybrid", "dense", "lexical"]

# Reciprocal rank fusion constant (Cormack et al. 2009): 60 damps the head of each list so
# that one ranker's top hit cannot drown the other's; tuned values on our set were flat.
RRF_K = 60
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


@dataclass(frozen=True)
class Query:
    """A question prepared once: its vector, and for each of its words the corpus stems that
    match it (its own stem, or corpus words it translates to; empty when none does)."""

    text: str
    vector: np.ndarray
    groups: list[frozenset[str]]

    @property
    def terms(self) -> list[str]:
        """All matching stems, for BM25."""
        return sorted(set().union(*self.groups)) if self.groups else []

    @property
    def coverage(self) -> float:
        """Share of the question's words that match the corpus (0..1).

        A French question about this corpus scores near 1; an English one through
        translations, names and cognates. Fusion trusts BM25 in proportion.
        """
        return sum(1 for g in self.groups if g) / len(self.groups) if self.groups else 0.0


@dataclass(frozen=True)
class Filters:
    doc_ids: frozenset[str] | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    @property
    def active(self) -> bool:
        return bool(self.doc_ids is not None or self.date_from or self.date_to)


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_date(value: dt.date | str | None, name: str) -> dt.date | None:
    """A YYYY-MM-DD filter bound, or InvalidQuestionError naming the field."""
    if value is None or isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise InvalidQuestionError(f"{name} must be a date YYYY-MM-DD, got {value!r}")
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise InvalidQuestionError(f"{name} must be a date YYYY-MM-DD, got {value!r}") from exc


def make_filters(
    index: Index,
    *,
    doc_ids: Sequence[str] | None = None,
    date_from: dt.date | str | None = None,
    date_to: dt.date | str | None = None,
) -> Filters:
    """Validate filter values against the index."""
    ids = None
    if doc_ids is not None:
        unknown = [d for d in doc_ids if not index.has_doc(d)]
        if unknown:
            raise InvalidQuestionError(f"unknown doc_id(s): {', '.join(map(repr, unknown[:5]))}")
        ids = frozenset(doc_ids)

    lo, hi = parse_date(date_from, "date_from"), parse_date(date_to, "date_to")
    if lo and hi and lo > hi:
        raise InvalidQuestionError(f"date_from {lo} is after date_to {hi}")
    return Filters(ids, lo, hi)


def _allowed_docs(index: Index, filters: Filters) -> set[str]:
    allowed = set(index.doc_ids()) if filters.doc_ids is None else set(filters.doc_ids)
    if filters.date_from or filters.date_to:
        kept = set()
        for doc_id in allowed:
            date = index.doc_meta(doc_id).get("date")
            if date is None:  # an undated document cannot be shown to fall in the range
                continue
            first, last = date_bounds(date)
            if (filters.date_from is None or last >= filters.date_from) and (
                filters.date_to is None or first <= filters.date_to
            ):
                kept.add(doc_id)
        allowed = kept
    return allowed


# A question word that is not in the corpus is replaced by corpus words whose vectors (same
# multilingual model) are at least this close: 'soldiers' -> soldats 0.91, 'treaty' -> traité
# 0.87, 'fuel' -> combustible 0.88, while 'population' (0.55) or 'recipe' (0.56) match nothing.
TRANSLATION_MIN_SIM = 0.78
TRANSLATIONS_PER_WORD = 2
# Names are spelt differently across languages (Putin/Poutine, Kursk/Koursk, Shoigu/Choïgou):
# for capitalised words, close spellings (difflib ratio) count as the same word.
SPELLING_MIN_RATIO = 0.75


def prepare(index: Index, question: str) -> Query:
    """Embed the question; match each of its words to corpus stems, translating if needed."""
    import difflib

    vocab = index.bm25.vocab_dict
    words = content_words(question)
    groups: list[set[str]] = []
    missing: list[int] = []
    for i, (_, word) in enumerate(words):
        s = stem(word)
        groups.append({s} if s in vocab else set())
        if s not in vocab and not word.isdigit():
            missing.append(i)
    # One embedding call for the question and its unmatched words together.
    vectors = index.embedder.embed(
        [question] + [words[i][0] for i in missing], kind="query"
    )
    if missing and len(index.vocab):
        sims = vectors[1:] @ index.vocab_vectors.T
        for row, i in enumerate(missing):
            best = np.argsort(-sims[row])[:TRANSLATIONS_PER_WORD]
            for j in best:
                if sims[row, j] >= TRANSLATION_MIN_SIM:
                    groups[i].add(stem(fold(index.vocab[j])))
            surface, folded = words[i]
            if not groups[i] and len(folded) >= 4 and surface[:1].isupper():
                for close in difflib.get_close_matches(
                    folded, index.vocab_folded, n=2, cutoff=SPELLING_MIN_RATIO
                ):
                    groups[i].add(stem(close))
    matched = [frozenset(g & vocab.keys()) for g in groups]
    return Query(question, vectors[0], matched)


def dense_scores(index: Index, query: Query, mask: np.ndarray | None) -> np.ndarray:
    """Per-chunk dense score: the best of the chunk's own similarity and its sentences'."""
    n = len(index.chunks)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    q = query.vector.reshape(1, -1).astype(np.float32)
    scores = np.full(n, -1.0, dtype=np.float32)
    k = min(n, CANDIDATES)
    sims, ids = index.chunk_faiss.search(q, k)
    for sim, ci in zip(sims[0], ids[0], strict=True):
        if ci >= 0:
            scores[ci] = sim
    ks = min(len(index.sentences), CANDIDATES * 3)
    if ks:
        s_sims, s_ids = index.sentence_faiss.search(q, ks)
        for sim, si in zip(s_sims[0], s_ids[0], strict=True):
            if si < 0:
                continue
            for ci in index.sentence_chunks[si]:
                if sim > scores[ci]:
                    scores[ci] = sim
    if mask is not None:
        # Filtered chunks may lie beyond the candidate lists: score the allowed ones exactly.
        allowed = np.flatnonzero(mask)
        exact = index.chunk_vectors[allowed] @ query.vector
        scores[allowed] = np.maximum(scores[allowed], exact)
        scores[~mask] = -np.inf
    return scores


def lexical_scores(index: Index, query: Query) -> np.ndarray:
    if not query.terms or not len(index.chunks):
        return np.zeros(len(index.chunks), dtype=np.float32)
    return np.asarray(index.bm25.get_scores(query.terms), dtype=np.float32)


def _ranks(scores: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """1-based rank of each eligible entry by score (ties by position); 0 for the rest."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.zeros(len(scores), dtype=np.int64)
    r = 0
    for i in order:
        if eligible[i]:
            r += 1
            ranks[i] = r
    return ranks


def retrieve(
    index: Index,
    query: Query,
    *,
    k: int = 5,
    mode: Mode = "hybrid",
    filters: Filters | None = None,
    lexical_weight: float = 1.0,
) -> list[Passage]:
    """Rank the index's chunks for a prepared query; best first, at most k."""
    filters = filters or Filters()
    n = len(index.chunks)
    mask = None
    if filters.active:
        allowed = _allowed_docs(index, filters)
        mask = np.array([c.doc_id in allowed for c in index.chunks], dtype=bool)
    dense = dense_scores(index, query, mask) if mode != "lexical" else np.zeros(n, np.float32)
    lexical = lexical_scores(index, query) if mode != "dense" else np.zeros(n, np.float32)
    eligible = np.ones(n, dtype=bool) if mask is None else mask.copy()

    if mode == "dense":
        fused = dense.astype(np.float64)
    elif mode == "lexical":
        fused = lexical.astype(np.float64)
        eligible &= lexical > 0
    else:
        d_rank = _ranks(dense, eligible)
        l_rank = _ranks(lexical, eligible & (lexical > 0))
        w_lex = lexical_weight * query.coverage
        fused = np.where(d_rank > 0, 1.0 / (RRF_K + d_rank), 0.0)
        fused += np.where(l_rank > 0, w_lex / (RRF_K + l_rank), 0.0)
    order = [i for i in np.argsort(-fused, kind="stable") if eligible[i]][:k]
    return [
        Passage(
            rank=r + 1,
            chunk_id=int(i),
            chunk=index.chunks[i],
            score=float(fused[i]),
            dense=float(dense[i]),
            lexical=float(lexical[i]),
        )
        for r, i in enumerate(order)
    ]
