"""Passages -> an extractive answer (a sentence of the corpus, with its offsets), or abstention."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from qa.errors import InvalidQuestionError
from qa.index import Index
from qa.retrieval import Mode, Passage, Query, make_filters, prepare, retrieve
from qa.text import fold, tokens

MAX_QUESTION_CHARS = 1000
MAX_K = 50


@dataclass(frozen=True)
class Citation:
    rank: int
    doc_id: str
    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True)
class AnswerSpan:
    doc_id: str
    start: int
    end: int


@dataclass(frozen=True)
class Answer:
    """The result object shared by `qa ask --json` and `POST /ask`."""

    question: str
    answer: str | None
    abstained: bool
    answer_span: AnswerSpan | None
    citations: list[Citation]
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AnswerParams:
    """Weights of the sentence scorer and the abstention threshold (see README, Tuning)."""

    lexical: float = 0.35  # weight of the question's terms found in the sentence
    type_match: float = 0.08  # bonus when the sentence holds what the question asks for
    passage: float = 0.05  # bonus for sentences in higher-ranked passages
    threshold: float = 0.45  # below this confidence, abstain
    pool: int = 10  # passages whose sentences compete for the answer
    lexical_weight: float = 1.0  # weight of BM25 in passage fusion (times lexical coverage)


DEFAULT_PARAMS = AnswerParams()

# What a question asks for, by its wording (English and French), and how to spot it.
_MONTHS = (
    "janvier|fevrier|mars|avril|mai|juin|juillet|aout|septembre|octobre|novembre|decembre|"
    "january|february|march|april|may|june|july|august|september|october|november|december"
)
_EXPECT = [
    (re.compile(r"\b(when|quand|what date|which date|quelle date|en quelle annee|what year|"
                r"which year|quel jour|what day|since when|depuis quand)\b"),
     re.compile(rf"\b(1[89]\d\d|20\d\d|{_MONTHS})\b|\b\d{{1,2}}(er)? ({_MONTHS})\b")),
    (re.compile(r"\b(how many|how much|combien|what number|quel nombre|quelle quantite|"
                r"what amount|quel montant|how far|quelle distance)\b"),
     re.compile(r"\d|\b(millions?|milliards?|milliers?|dizaines?|centaines?|deux|trois|quatre|"
                r"cinq|six|sept|huit|neuf|dix)\b")),
    (re.compile(r"\b(who|qui|whom|whose|quel ministre|which minister)\b"),
     re.compile(r"(?<!^)(?<![.!?] )\b[A-Z][a-zà-ÿ]+(?:[ -][A-Z][a-zà-ÿ]+)+")),
]


def _expected(question: str) -> re.Pattern[str] | None:
    folded = fold(question)
    for asks, pattern in _EXPECT:
        if asks.search(folded):
            return pattern
    return None


def validate_question(question: str, k: int) -> str:
    """The question stripped, or InvalidQuestionError."""
    if not isinstance(question, str) or not question.strip():
        raise InvalidQuestionError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidQuestionError(
            f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}"
        )
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise InvalidQuestionError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return question.strip()


@dataclass(frozen=True)
class _Candidate:
    score: float
    passage_pos: int
    doc_id: str
    start: int
    end: int


def _candidates(
    index: Index, query: Query, passages: list[Passage], params: AnswerParams
) -> list[_Candidate]:
    expected = _expected(query.text)
    terms = set(query.terms)
    out: list[_Candidate] = []
    for pos, p in enumerate(passages):
        c = p.chunk
        text = index.documents[c.doc_id].text
        for si in index.chunk_sentences[p.chunk_id]:
            s = index.sentences[si]
            start, end = max(s.start, c.start), min(s.end, c.end)
            if end - start < 12:
                continue
            sentence = text[start:end]
            dense = float(index.sentence_vectors[si] @ query.vector)
            if (start, end) != (s.start, s.end):  # clipped by the chunk: cannot reuse its vector
                dense *= (end - start) / (s.end - s.start)
            overlap = len(terms & set(tokens(sentence))) / len(terms) if terms else 0.0
            typed = 1.0 if expected is not None and expected.search(
                sentence if expected.pattern.startswith("(?<!^)") else fold(sentence)
            ) else 0.0
            score = (
                dense
                + params.lexical * overlap
                + params.type_match * typed
                + params.passage / (1 + pos)
            )
            out.append(_Candidate(score, pos, c.doc_id, start, end))
    return out


def answer_question(
    index: Index,
    question: str,
    *,
    k: int = 5,
    doc_ids: Sequence[str] | None = None,
    date_from: dt.date | str | None = None,
    date_to: dt.date | str | None = None,
    mode: Mode = "hybrid",
    params: AnswerParams = DEFAULT_PARAMS,
) -> Answer:
    """Answer a question from the index: best sentence and its passages, or abstain."""
    question = validate_question(question, k)
    filters = make_filters(index, doc_ids=doc_ids, date_from=date_from, date_to=date_to)
    query = prepare(index, question)
    passages = retrieve(
        index, query, k=max(k, params.pool), mode=mode, filters=filters,
        lexical_weight=params.lexical_weight,
    )
    candidates = _candidates(index, query, passages, params)

    # Rerank passages by their best sentence: the passage holding the answer comes first.
    best_by_passage: dict[int, _Candidate] = {}
    for cand in candidates:
        cur = best_by_passage.get(cand.passage_pos)
        if cur is None or cand.score > cur.score:
            best_by_passage[cand.passage_pos] = cand
    order = sorted(
        range(len(passages)),
        key=lambda i: (-(best_by_passage[i].score if i in best_by_passage else -1.0), i),
    )[:k]
    citations = []
    for rank, i in enumerate(order, start=1):
        c = passages[i].chunk
        score = best_by_passage[i].score if i in best_by_passage else 0.0
        citations.append(Citation(rank, c.doc_id, c.start, c.end, c.text, round(score, 4)))

    best = best_by_passage.get(order[0]) if order else None
    confidence = float(np.round(best.score, 4)) if best else 0.0
    if best is None or best.score < params.threshold:
        return Answer(question, None, True, None, citations, confidence)
    text = index.documents[best.doc_id].text[best.start : best.end]
    span = AnswerSpan(best.doc_id, best.start, best.end)
    return Answer(question, text, False, span, citations, confidence)
