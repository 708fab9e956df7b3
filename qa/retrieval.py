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
# Words the corpus holds are translated too: in a mixed corpus (French articles among English
# technical pages) "soldiers" is a corpus word, yet the answer says "soldats". Measured with
# the seed articles inside a 10k-document haystack of man pages (eval/questions.jsonl):
# R@5 0.893 -> 0.940, accuracy 0.726 -> 0.774; on the five articles alone R@5 0.952 -> 0.952,
# accuracy 0.869 -> 0.857 (eval/precise.jsonl: 0.789 -> 0.763).
TRANSLATE_PRESENT = True


def prepare(index: Index, question: str) -> Query:
    """Embed the question; match each of its words to corpus stems and their translations."""
    words = content_words(question)
    groups: list[set[str]] = []
    missing: list[int] = []
    for i, (_, word) in enumerate(words):
        s = stem(word)
        present = index.has_term(s)
        groups.append({s} if present else set())
        if (TRANSLATE_PRESENT or not present) and not word.isdigit():
            missing.append(i)
    # One embedding call for the question and its unmatched words together.
    vectors = index.embedder.embed(
        [question] + [words[i][0] for i in missing], kind="query"
    )
    if missing:
        translations = index.translate(
            vectors[1:], per_word=TRANSLATIONS_PER_WORD, min_sim=TRANSLATION_MIN_SIM
        )
        for row, i in enumerate(missing):
            groups[i].update(stem(fold(w)) for w in translations[row])
            surface, folded = words[i]
            if not groups[i] and len(folded) >= 4 and surface[:1].isupper():
                for close in index.close_spellings(folded, n=2, cutoff=SPELLING_MIN_RATIO):
                    groups[i].add(stem(close))
    matched = [frozenset(t for t in g if index.has_term(t)) for g in groups]
    return Query(question, vectors[0], matched)


def _rank_of(ids: np.ndarray) -> dict[int, int]:
    """1-based rank of each id in a best-first list."""
    return {int(i): r for r, i in enumerate(ids.tolist(), start=1)}


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
    chunk. Filters restrict both searches to the allowed documents.
    """
    filters = filters or Filters()
    allowed = _allowed_docs(index, filters) if filters.active else None
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
        d_rank, l_rank = _rank_of(d_ids), _rank_of(l_ids)
        w_lex = lexical_weight * query.coverage
        fused = {}
        for cid in d_rank.keys() | l_rank.keys():
            score = 1.0 / (RRF_K + d_rank[cid]) if cid in d_rank else 0.0
            if cid in l_rank:
                score += w_lex / (RRF_K + l_rank[cid])
            fused[cid] = score
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
