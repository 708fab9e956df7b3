"""Passages -> an extractive answer (a sentence of the corpus, with its offsets), or abstention.

answer.py holds the result type; source.py the narrow view of the index answering reads
through; kinds.py what a question asks for; question.py what it pins down; features.py the
features of each candidate sentence; scorer.py the learned ranker and calibrated confidence
(parameters in scorer.json, fitted by eval/scorer/fit.py); short.py isolates the short
answer; pipeline.py runs it all.
"""

from qa.answering.answer import KINDS, Answer, AnswerSpan, Citation, Kind, ShortAnswer
from qa.answering.kinds import Asked, asked
from qa.answering.pipeline import MAX_K, MAX_QUESTION_CHARS, answer_question, validate_question
from qa.answering.question import Constraints, asked_kind, read_question
from qa.answering.sentences import (
    DEFAULT_PARAMS,
    AnswerParams,
    Candidate,
    expected_kind,
    has_kind,
    is_heading,
    score_sentences,
    term_weights,
)
from qa.answering.source import BlockInfo, TextSource, block_at

__all__ = [
    "DEFAULT_PARAMS", "KINDS", "MAX_K", "MAX_QUESTION_CHARS", "Answer", "AnswerParams",
    "AnswerSpan", "Asked", "BlockInfo", "Candidate", "Citation", "Constraints", "Kind",
    "ShortAnswer", "TextSource", "answer_question", "asked", "asked_kind", "block_at",
    "expected_kind", "has_kind", "is_heading", "read_question", "score_sentences",
    "term_weights", "validate_question",
]
