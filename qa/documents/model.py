"""The corpus's result types: Document (exact extracted text + page map), skips, statistics."""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
import re
from dataclasses import dataclass, field

_DATE_VALUE = re.compile(r"\A\d{4}-\d{2}(?:-\d{2})?\Z")


@dataclass(frozen=True)
class Document:
    """One file of the corpus. `text` is the extracted text (for .txt/.md the decoded file,
    unchanged); every offset in qa indexes it, and GET /documents/{doc_id} serves it.

    `pages` holds the [start, end) character range of each page (PDFs; empty otherwise).
    """

    doc_id: str
    text: str
    sha256: str
    body_start: int = 0
    date: str | None = None
    title: str = ""
    meta: dict[str, str] = field(default_factory=dict)
    pages: tuple[tuple[int, int], ...] = ()
    parser: str = "plain/1"
    date_source: str | None = None

    def __post_init__(self) -> None:
        # Loaded back from JSON, the page map arrives as lists.
        if self.pages and not isinstance(self.pages[0], tuple):
            object.__setattr__(self, "pages", tuple((int(s), int(e)) for s, e in self.pages))

    @property
    def length(self) -> int:
        return len(self.text)


def page_of(doc: Document, offset: int) -> int | None:
    """The 1-based page holding character `offset` of doc.text; None without a page map."""
    if not doc.pages:
        return None
    starts = [s for s, _ in doc.pages]
    return max(1, bisect.bisect_right(starts, offset))


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of the index (or read with a caveat), and why, in one line."""

    path: str
    reason: str


@dataclass(frozen=True)
class FormatStats:
    """What read_corpus did with one format: files read and skipped, pages, time spent."""

    format: str
    read: int = 0
    skipped: int = 0
    pages: int = 0
    seconds: float = 0.0
    unchanged: int = 0  # kept from the index without reading (same size, mtime, parser)
    unreadable: str | None = None  # why no file of this format can be read (a missing library)

    @property
    def pages_per_second(self) -> float | None:
        if not self.pages or self.seconds <= 0:
            return None
        return self.pages / self.seconds


@dataclass(frozen=True)
class Corpus:
    documents: list[Document]
    skipped: list[SkippedFile]
    # Per format, in a fixed order; and files indexed with a caveat (e.g. a malformed date).
    formats: list[FormatStats] = field(default_factory=list)
    warnings: list[SkippedFile] = field(default_factory=list)


def date_bounds(date: str) -> tuple[dt.date, dt.date]:
    """The first and last day a 'YYYY-MM' or 'YYYY-MM-DD' date stands for."""
    parts = [int(p) for p in date.split("-")]
    if len(parts) == 3:
        day = dt.date(parts[0], parts[1], parts[2])
        return day, day
    year, month = parts
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def valid_date(value: str) -> str | None:
    """`value` if it is a real 'YYYY-MM' or 'YYYY-MM-DD' date, else None."""
    if not _DATE_VALUE.match(value):
        return None
    try:
        date_bounds(value)
    except ValueError:
        return None
    return value
