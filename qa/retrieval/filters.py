"""Filters: which documents a search may return (ids, a date range), validated once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from qa.errors import InvalidQuestionError
from qa.temporal import bounds, parse_date


class DocTable(Protocol):
    """What filtering reads of an index: its document ids and their metadata."""

    def doc_ids(self) -> list[str]: ...
    def has_doc(self, doc_id: str) -> bool: ...
    def doc_meta(self, doc_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Filters:
    doc_ids: frozenset[str] | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    @property
    def active(self) -> bool:
        return bool(self.doc_ids is not None or self.date_from or self.date_to)


def make_filters(
    index: DocTable,
    *,
    doc_ids: Sequence[str] | None = None,
    date_from: dt.date | str | None = None,
    date_to: dt.date | str | None = None,
) -> Filters:
    """Validate filter values against the index (InvalidQuestionError names the bad one)."""
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


def allowed_docs(index: DocTable, filters: Filters) -> set[str]:
    """The documents the filters let through; a date range keeps only the documents whose
    date (a day or a month) overlaps it."""
    allowed = set(index.doc_ids()) if filters.doc_ids is None else set(filters.doc_ids)
    if filters.date_from or filters.date_to:
        kept = set()
        for doc_id in allowed:
            date = index.doc_meta(doc_id).get("date")
            if date is None:  # an undated document cannot be shown to fall in the range
                continue
            first, last = bounds(date)
            if (filters.date_from is None or last >= filters.date_from) and (
                filters.date_to is None or first <= filters.date_to
            ):
                kept.add(doc_id)
        allowed = kept
    return allowed
