"""The result type of answering, shared by `qa ask --json`, `POST /ask` and `qa eval`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from qa.retrieval.search import Hit

Kind = Literal["date", "quantity", "person", "place", "organisation", "command", "option",
               "path", "package", "version", "other"]
KINDS: tuple[str, ...] = ("date", "quantity", "person", "place", "organisation", "command",
                          "option", "path", "package", "version", "other")


# A cited passage is a retrieved passage (qa.retrieval.Hit); its score is the score of its best
# sentence, by which the answer stage reorders the passages.
Citation = Hit


@dataclass(frozen=True)
class AnswerSpan:
    doc_id: str
    start: int
    end: int
    page: int | None = None  # 1-based page of `start` (PDFs); None for formats without pages
    section: str | None = None  # heading path at `start` ("Title › Section"); None: no headings


@dataclass(frozen=True)
class ShortAnswer:
    """The phrase that answers, inside the answer: document offsets, its kind, its value.

    `value` is normalised: ISO `YYYY`, `YYYY-MM` or `YYYY-MM-DD` for dates (None when a
    relative date cannot be resolved), a number for quantities ("3 000" -> 3000), else the
    text ("plus de la moitié").
    """

    text: str
    doc_id: str
    start: int
    end: int
    kind: Kind
    value: str | int | float | None


@dataclass(frozen=True)
class Answer:
    """The result object shared by `qa ask --json` and `POST /ask`."""

    question: str
    answer: str | None
    abstained: bool
    answer_span: AnswerSpan | None
    citations: list[Citation]
    confidence: float
    short_answer: ShortAnswer | None = None
    # Why qa abstained, in a sentence ("The documents mention X, but not Y."); or None.
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
