"""Sentence scoring: each sentence of the retrieved passages gets features and a learned score.

The features live in features.py, the model in scorer.py; this module keeps the knobs of the
answer stage that are not learned (how many passages compete, the weight of BM25 in fusion)
and the IDF weights of the question's words, computed once per question.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from qa.answering import scorer
from qa.answering.features import Candidate, QuestionView, candidates, is_heading
from qa.answering.kinds import expected_kind, has_kind
from qa.answering.source import TextSource
from qa.retrieval import Passage, Query

__all__ = ["DEFAULT_PARAMS", "AnswerParams", "Candidate", "expected_kind", "has_kind",
           "is_heading", "score_sentences", "term_weights"]


@dataclass(frozen=True)
class AnswerParams:
    """The answer stage's knobs that are not learned (see README, Tuning)."""

    pool: int = 10  # passages whose sentences compete for the answer
    lexical_weight: float = 2.0  # weight of BM25 in passage fusion (times lexical coverage)
    # Best sentences tried, in order, against the question's constraints. Measured (utility on
    # eval/questions.jsonl and eval/precise.jsonl): 1 -> 0.70/0.62, 2 -> 0.68/0.51, 3 ->
    # 0.68/0.48: a second-best sentence that passes is more often a near-miss than an answer.
    alternatives: int = 1
    # Abstain below this probability; None: the threshold fitted with the scorer.
    threshold: float | None = None


DEFAULT_PARAMS = AnswerParams()


def term_weights(index: TextSource, query: Query) -> list[float]:
    """IDF of each question word over the chunks; a word the corpus lacks weighs the most.

    Weighting by specificity is what lets a sentence about Pyongyang fail to answer "What is
    the population of Pyongyang?": 'Pyongyang' is common here, 'population' is absent.
    """
    n = max(index.n_units, 1)  # the statistics doc_freq counts in
    out = []
    for group in query.groups:
        freq = max((index.doc_freq(t) for t in group), default=0)
        out.append(float(np.log((n + 1) / (freq + 0.5))))
    return out


def score_sentences(
    source: TextSource, view: QuestionView, passages: list[Passage],
    params: scorer.ScorerParams | None = None,
) -> list[Candidate]:
    """The candidate sentences of the passages, each with its features and ranker score."""
    found = candidates(source, view, passages)
    sp = params or scorer.load_params()
    scores = scorer.rank_scores(sp, found)
    return [replace(c, score=float(s)) for c, s in zip(found, scores, strict=True)]
