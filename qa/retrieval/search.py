"""search(): a question -> ranked passages with their document, offsets, page, section and
score. Retrieval only: no sentence is scored and no answer chosen (that is answering's)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from qa.chunking import chunk_section
from qa.documents import page_of
from qa.errors import InvalidQuestionError
from qa.index import Index
from qa.retrieval.filters import make_filters
from qa.retrieval.query import Query, prepare
from qa.retrieval.ranking import Mode, Passage, retrieve
from qa.text import is_blank


@dataclass(frozen=True)
class Hit:
    """A retrieved passage: document.text[start:end] == text. From search(), score is the
    fused rank score (hybrid), the cosine similarity (dense) or BM25 (lexical); as an
    answer's Citation, the score of its best sentence."""

    rank: int
    doc_id: str
    start: int
    end: int
    text: str
    score: float
    page: int | None = None  # 1-based page of `start` (PDFs); None for formats without pages
    section: str | None = None  # heading path of the passage; None when it has no headings

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ranked_passages(
    index: Index,
    question: str,
    *,
    k: int,
    doc_ids: Sequence[str] | None = None,
    date_from: dt.date | str | None = None,
    date_to: dt.date | str | None = None,
    mode: Mode = "hybrid",
    lexical_weight: float = 1.0,
) -> tuple[Query, list[Passage]]:
    """The prepared question and its k best passages under the filters: what search()
    returns as hits and the answer stage scores sentence by sentence."""
    filters = make_filters(index, doc_ids=doc_ids, date_from=date_from, date_to=date_to)
    query = prepare(index, question)
    return query, retrieve(index, query, k=k, mode=mode, filters=filters,
                           lexical_weight=lexical_weight)


def search(
    index: Index,
    question: str,
    *,
    k: int = 5,
    doc_ids: Sequence[str] | None = None,
    date_from: dt.date | str | None = None,
    date_to: dt.date | str | None = None,
    mode: Mode = "hybrid",
    lexical_weight: float = 1.0,
) -> list[Hit]:
    """The k passages most relevant to the question, best first (InvalidQuestionError for an
    empty question, k < 1 or a bad filter)."""
    if not isinstance(question, str) or is_blank(question):
        raise InvalidQuestionError("the question is empty")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InvalidQuestionError(f"k must be a positive integer, got {k!r}")
    _, passages = ranked_passages(index, question.strip(), k=k, doc_ids=doc_ids,
                                  date_from=date_from, date_to=date_to, mode=mode,
                                  lexical_weight=lexical_weight)
    hits = []
    for p in passages:
        c = p.chunk
        doc = index.doc(c.doc_id)
        hits.append(Hit(p.rank, c.doc_id, c.start, c.end, c.text, p.score,
                        page_of(doc, c.start), chunk_section(doc, c.start, c.end)))
    return hits
