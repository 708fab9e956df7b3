"""Answers with the real default model: the issue's worked examples, invariants, abstention."""

from __future__ import annotations

import pytest

from qa.answering import Answer, answer_question, expected_kind, has_kind
from qa.errors import InvalidQuestionError
from qa.index import Index

pytestmark = pytest.mark.slow


def _check_invariants(index: Index, a: Answer) -> None:
    for c in a.citations:
        assert index.doc(c.doc_id).text[c.start : c.end] == c.text
    assert [c.rank for c in a.citations] == list(range(1, len(a.citations) + 1))
    if a.abstained:
        assert a.answer is None and a.answer_span is None
        return
    span = a.answer_span
    assert span is not None
    assert index.doc(span.doc_id).text[span.start : span.end] == a.answer
    assert any(c.doc_id == span.doc_id and c.start <= span.start and span.end <= c.end
               for c in a.citations)


def test_putin_visit_in_english_finds_the_french_sentence(real_index: Index) -> None:
    a = answer_question(real_index, "When did Putin visit Pyongyang?")
    _check_invariants(real_index, a)
    assert not a.abstained and a.answer_span is not None
    assert a.answer_span.doc_id == "003_c79683804ee38f58.txt"
    assert "juin 2024" in (a.answer or "")


def test_french_question_on_shells(real_index: Index) -> None:
    question = "Combien d'obus la Corée du Nord a-t-elle fournis à la Russie ?"
    a = answer_question(real_index, question)
    _check_invariants(real_index, a)
    assert "près de trois millions d’obus" in (a.answer or "")


@pytest.mark.parametrize("question", [
    "What is the population of Pyongyang?",
    "Who won the 2022 World Cup?",
    "Quelle est la capitale de l'Australie ?",
    "What's the best recipe for kimchi?",
])
def test_abstains_when_the_corpus_has_no_answer(real_index: Index, question: str) -> None:
    a = answer_question(real_index, question)
    _check_invariants(real_index, a)
    assert a.abstained, (a.confidence, a.answer)


@pytest.mark.parametrize("question", [
    "How many containers of weapons did North Korea send to Russia according to Shin Won-sik?",
    "Qui a rencontré Kim Jong-un le 18 novembre ?",
    "How far did the October 2024 ICBM fly?",
])
def test_invariants_hold_for_varied_questions(real_index: Index, question: str) -> None:
    for k in (1, 3, 10):
        a = answer_question(real_index, question, k=k)
        assert len(a.citations) <= k
        _check_invariants(real_index, a)


def test_filters(real_index: Index) -> None:
    only = "001_113f9629b7018fa7.txt"
    a = answer_question(real_index, "Putin Kim summit", doc_ids=[only], k=10)
    assert {c.doc_id for c in a.citations} == {only}
    # Only 001 is dated (2024-03): a range around it keeps it, one elsewhere keeps nothing.
    a = answer_question(real_index, "conteneurs d'armes", date_from="2024-03-10",
                        date_to="2024-04-01")
    assert {c.doc_id for c in a.citations} == {only}
    a = answer_question(real_index, "conteneurs d'armes", date_from="2025-01-01")
    assert a.citations == [] and a.abstained


@pytest.mark.parametrize("kwargs, message", [
    ({"question": "  "}, "empty"),
    ({"question": "x" * 1001}, "1000"),
    ({"question": "ok?", "k": 0}, "k must be"),
    ({"question": "ok?", "k": 51}, "k must be"),
    ({"question": "ok?", "doc_ids": ["../etc/passwd"]}, "unknown doc_id"),
    ({"question": "ok?", "date_from": "2024-13-01"}, "date_from"),
    ({"question": "ok?", "date_from": "2024-05-01", "date_to": "2024-01-01"}, "after"),
])
def test_bad_input(real_index: Index, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidQuestionError, match=message):
        answer_question(real_index, **kwargs)  # type: ignore[arg-type]


def test_modes_agree_on_an_easy_french_question(real_index: Index) -> None:
    q = "Combien de conteneurs d'armes la Corée du Nord a-t-elle envoyés ?"
    for mode in ("hybrid", "dense", "lexical"):
        a = answer_question(real_index, q, mode=mode)  # type: ignore[arg-type]
        assert a.citations[0].doc_id == "001_113f9629b7018fa7.txt", mode


def test_expected_kinds() -> None:
    """Worked examples of the question-type check that drives the answer-type penalty."""
    assert expected_kind("When did Putin visit?") == "date"
    assert expected_kind("Combien d'obus ?") == "quantity"
    assert expected_kind("Comment s'appelle le ministre ?") == "name"
    assert expected_kind("Why does China care?") is None
    assert has_kind("près de trois millions d’obus", "quantity")
    assert has_kind("7 000 conteneurs", "quantity")
    assert has_kind("six officiers ont été tués", "quantity")
    assert not has_kind("les deux pays", "quantity")
    # A date is not a quantity: "le 7 novembre" answers "when", not "how many".
    assert not has_kind("Zelensky a déclaré le 7 novembre", "quantity")
    assert not has_kind("en 2024", "quantity")
    assert has_kind("le 7 novembre", "date")
    assert has_kind("le ministre, Shin Won-sik, a révélé", "name")
