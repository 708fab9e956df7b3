"""Passages -> an extractive answer (a sentence of the corpus, with its offsets), or abstention.

answer.py holds the result type, sentences.py the sentence scorer, question.py reads what a
question asks for and pins down, short.py isolates the short answer, pipeline.py runs it all.
"""

from qa.answering.answer import KINDS, Answer, AnswerSpan, Citation, Kind, ShortAnswer
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

__all__ = [
    "DEFAULT_PARAMS", "KINDS", "MAX_K", "MAX_QUESTION_CHARS", "Answer", "AnswerParams",
    "AnswerSpan", "Candidate", "Citation", "Constraints", "Kind", "ShortAnswer", "answer_question",
    "asked_kind", "expected_kind", "has_kind", "is_heading", "read_question", "score_sentences",
    "term_weights", "validate_question",
]
