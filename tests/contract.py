"""Shared checks of the /ask contract, for the TestClient and the real-server tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

RESULT_FIELDS = ["question", "answer", "abstained", "answer_span", "citations", "confidence",
                 "short_answer", "note"]
# POST /ask adds the index generation that answered, for GET /documents/{id}?generation=...
API_RESULT_FIELDS = [*RESULT_FIELDS, "generation"]
CITATION_FIELDS = ["rank", "doc_id", "start", "end", "text", "score", "page", "section"]


def document_text(
    client: httpx.Client, headers: dict[str, str] | None = None
) -> Callable[[str], str]:
    cache: dict[str, str] = {}

    def text(doc_id: str) -> str:
        if doc_id not in cache:
            r = client.get(f"/documents/{doc_id}", headers=headers)
            assert r.status_code == 200, r.text
            cache[doc_id] = r.json()["text"]
        return cache[doc_id]

    return text


def assert_contract(result: dict[str, Any], question: str, k: int,
                    text: Callable[[str], str]) -> None:
    """The invariants of an /ask result, checked against GET /documents/{id}."""
    assert list(result) == API_RESULT_FIELDS
    assert isinstance(result["generation"], str) and result["generation"]
    assert result["question"] == question.strip()
    citations = result["citations"]
    assert 1 <= len(citations) <= k
    assert [c["rank"] for c in citations] == list(range(1, len(citations) + 1))
    for c in citations:
        assert list(c) == CITATION_FIELDS
        doc = text(c["doc_id"])
        assert 0 <= c["start"] < c["end"] <= len(doc)
        assert doc[c["start"] : c["end"]] == c["text"]
    assert isinstance(result["confidence"], float)
    if result["abstained"]:
        assert result["answer"] is None and result["answer_span"] is None
        return
    span = result["answer_span"]
    assert set(span) == {"doc_id", "start", "end", "page", "section"}
    assert text(span["doc_id"])[span["start"] : span["end"]] == result["answer"]
    short = result["short_answer"]
    if short is not None:
        assert short["doc_id"] == span["doc_id"]
        assert span["start"] <= short["start"] < short["end"] <= span["end"]
        assert text(short["doc_id"])[short["start"] : short["end"]] == short["text"]
    assert any(
        c["doc_id"] == span["doc_id"] and c["start"] <= span["start"] and span["end"] <= c["end"]
        for c in citations
    ), "the answer span lies inside one of the cited passages"
