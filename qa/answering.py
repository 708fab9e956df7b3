"""Passages -> an extractive answer (a sentence of the corpus, with its offsets), or abstention."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from qa.documents import page_of
from qa.errors import InvalidQuestionError
from qa.index import Index
from qa.retrieval import Mode, Passage, Query, make_filters, prepare, retrieve
from qa.text import fold, is_blank, tokens

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
    page: int | None = None  # 1-based page of `start` (PDFs); None for formats without pages


@dataclass(frozen=True)
class AnswerSpan:
    doc_id: str
    start: int
    end: int
    page: int | None = None  # 1-based page of `start` (PDFs); None for formats without pages


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

    lexical: float = 0.6  # weight of the question's terms found in the sentence
    type_match: float = 0.2  # +/- when the sentence holds / lacks what the question asks for
    passage: float = 0.0  # bonus for sentences in higher-ranked passages
    heading: float = 0.2  # penalty for a heading ("Un soutien militaire renforcé"): not an answer
    threshold: float = 0.575  # below this confidence, abstain (calibrated: README, Tuning)
    pool: int = 10  # passages whose sentences compete for the answer
    lexical_weight: float = 2.0  # weight of BM25 in passage fusion (times lexical coverage)


DEFAULT_PARAMS = AnswerParams()

# What a question asks for, by its wording (English and French), and how to spot it in a
# sentence. A sentence without what the question asks for ("how many" and no quantity) is
# penalised: this is what keeps "How many soldiers were killed in Kursk?" from being answered
# by a sentence about Kursk that gives no number.
_MONTHS = (
    "janvier|fevrier|mars|avril|mai|juin|juillet|aout|septembre|octobre|novembre|decembre|"
    "january|february|march|april|may|june|july|august|september|october|november|december"
)
_YEAR = r"\b(?:1[89]\d\d|20\d\d)\b"
_DATE = re.compile(rf"{_YEAR}|\b(?:{_MONTHS})\b|\b(?:lundi|mardi|mercredi|jeudi|vendredi|"
                   r"samedi|dimanche|dernier|derniere|hier|semaine)\b")
# A quantity: a number that is neither a year nor a day of a month, or a number word.
_QUANTITY = re.compile(
    rf"(?<![\d-])(?!{_YEAR})\d[\d\u00a0\u202f ,.]*(?!\d)(?!\s*(?:er\s+)?(?:{_MONTHS})\b)"
    r"|\b(?:millions?|milliards?|milliers?|dizaines?|centaines?|douzaines?|vingtaine|"
    r"cinquantaine|mille|moitie|half|thousands?|hundreds?|dozens?)\b"
    # Small number words count, except after an article: "six officiers" is a quantity,
    # "les deux pays" is not.
    r"|(?<!les )(?<!ces )(?<!des )(?<!the )\b(?:deux|trois|quatre|cinq|six|sept|huit|neuf|dix|"
    r"douze|vingt|cent|two|three|four|five|six|seven|eight|nine|ten)\b"
)
_NAME = re.compile(r"\b[A-ZÀ-Ý][\wà-ÿ’'-]+(?:[ -][A-ZÀ-Ý][\wà-ÿ’'-]+)+")
_ASKS = [
    (re.compile(r"\b(?:when|quand|what date|which date|quelle date|en quelle annee|what year|"
                r"which year|quel jour|what day|since when|depuis quand|a quelle date)\b"),
     "date"),
    (re.compile(r"\b(?:how many|how much|combien|what number|quel nombre|quelle quantite|"
                r"what amount|quel montant|how far|quelle distance|what distance|what share|"
                r"quelle part|what percentage|quel pourcentage)\b"),
     "quantity"),
    (re.compile(r"\b(?:who|qui|whom|whose|what is the name|comment s.appelle|quel est le nom|"
                r"name of|nom du|nom de)\b"),
     "name"),
]


def is_heading(sentence: str) -> bool:
    """A short line with no closing punctuation: a title or section heading."""
    return len(sentence) < 80 and sentence.rstrip()[-1:] not in ".!?…»\")*:;"


def expected_kind(question: str) -> str | None:
    """'date', 'quantity' or 'name' when the question's wording asks for one."""
    folded = fold(question)
    for asks, kind in _ASKS:
        if asks.search(folded):
            return kind
    return None


def has_kind(sentence: str, kind: str) -> bool:
    """Whether a sentence holds something of the kind a question asks for."""
    if kind == "name":
        return bool(_NAME.search(sentence))
    folded = fold(sentence)
    return bool((_DATE if kind == "date" else _QUANTITY).search(folded))


def term_weights(index: Index, query: Query) -> list[float]:
    """IDF of each question word over the chunks; a word the corpus lacks weighs the most.

    Weighting by specificity is what lets a sentence about Pyongyang fail to answer "What is
    the population of Pyongyang?": 'Pyongyang' is common here, 'population' is absent.
    """
    n = max(index.n_chunks, 1)
    out = []
    for group in query.groups:
        freq = max((index.doc_freq(t) for t in group), default=0)
        out.append(float(np.log((n + 1) / (freq + 0.5))))
    return out


def validate_question(question: str, k: int) -> str:
    """The question stripped, or InvalidQuestionError."""
    if not isinstance(question, str) or is_blank(question):
        raise InvalidQuestionError("the question is empty")
    try:
        question.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates: a mangled argument or JSON escape
        raise InvalidQuestionError("the question is not valid Unicode text") from exc
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
    kind = expected_kind(query.text)
    weights = term_weights(index, query)
    total_weight = sum(weights)
    out: list[_Candidate] = []
    for pos, p in enumerate(passages):
        c = p.chunk
        text = index.doc(c.doc_id).text
        sentence_ids = index.sentences_of_chunk(p.chunk_id)
        sims = index.sentence_vectors_of(sentence_ids) @ query.vector if sentence_ids else []
        for si, sim in zip(sentence_ids, sims, strict=True):
            s = index.sentence(si)
            start, end = max(s.start, c.start), min(s.end, c.end)
            if end - start < 12:
                continue
            sentence = text[start:end]
            dense = float(sim)
            if (start, end) != (s.start, s.end):  # clipped by the chunk: cannot reuse its vector
                dense *= (end - start) / (s.end - s.start)
            sentence_terms = (
                index.terms_of_sentence(si) if (start, end) == (s.start, s.end)
                else frozenset(tokens(sentence))
            )
            overlap = (
                sum(w for g, w in zip(query.groups, weights, strict=True) if g & sentence_terms)
                / total_weight if total_weight else 0.0
            )
            typed = 0.0 if kind is None else (1.0 if has_kind(sentence, kind) else -1.0)
            score = (
                dense
                + params.lexical * overlap
                + params.type_match * typed
                + params.passage / (1 + pos)
                - params.heading * is_heading(sentence)
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
        citations.append(Citation(rank, c.doc_id, c.start, c.end, c.text, round(score, 4),
                                  page_of(index.doc(c.doc_id), c.start)))

    best = best_by_passage.get(order[0]) if order else None
    confidence = float(np.round(best.score, 4)) if best else 0.0
    if best is None or confidence < params.threshold:
        return Answer(question, None, True, None, citations, confidence)
    text = index.doc(best.doc_id).text[best.start : best.end]
    span = AnswerSpan(best.doc_id, best.start, best.end,
                      page_of(index.doc(best.doc_id), best.start))
    return Answer(question, text, False, span, citations, confidence)
