"""The corpus's result types: Document (exact extracted text, page map, blocks), skips,
statistics."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

BLOCK_KINDS = ("heading", "paragraph", "list_item", "term", "definition", "code",
               "table_row", "note", "caption")
SECTION_SEPARATOR = " › "


@dataclass(frozen=True)
class Block:
    """A unit of a document's structure: document.text[start:end] is its text.

    `level` is a heading's level (1 for the top), 0 for other kinds; `path` the headings
    the block sits under, outermost first (a heading's path ends with itself).
    """

    start: int
    end: int
    kind: str
    level: int = 0
    path: tuple[str, ...] = ()

    @property
    def section(self) -> str | None:
        return SECTION_SEPARATOR.join(self.path) if self.path else None


def encode_blocks(blocks: tuple[Block, ...]) -> dict[str, list[Any]]:
    """Blocks as compact JSON: each distinct path stored once, rows refer to it."""
    paths: dict[tuple[str, ...], int] = {}
    rows = []
    for b in blocks:
        rows.append([b.start, b.end, b.kind, b.level, paths.setdefault(b.path, len(paths))])
    return {"paths": [list(p) for p in paths], "rows": rows}


def decode_blocks(data: Any) -> tuple[Block, ...]:
    """encode_blocks' output (or a list of Block-like dicts) back to Blocks."""
    if isinstance(data, dict):
        paths = [tuple(str(h) for h in p) for p in data.get("paths", [])]
        return tuple(Block(int(s), int(e), str(k), int(lv), paths[int(p)])
                     for s, e, k, lv, p in data.get("rows", []))
    return tuple(b if isinstance(b, Block) else
                 Block(int(b["start"]), int(b["end"]), str(b["kind"]), int(b.get("level", 0)),
                       tuple(b.get("path", ())))
                 for b in data)


@dataclass(frozen=True)
class Document:
    """One file of the corpus. `text` is the extracted text (for .txt/.md the decoded file,
    unchanged); every offset in qa indexes it, and GET /documents/{doc_id} serves it.

    `pages` holds the [start, end) character range of each page (PDFs; empty otherwise);
    `blocks` the document's structure (headings, paragraphs, notes, listings... in text
    order, not overlapping), empty when the parser found none.
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
    blocks: tuple[Block, ...] = ()

    def __post_init__(self) -> None:
        # Loaded back from JSON, the page map arrives as lists and the blocks encoded.
        if self.pages and not isinstance(self.pages[0], tuple):
            object.__setattr__(self, "pages", tuple((int(s), int(e)) for s, e in self.pages))
        if self.blocks and not (isinstance(self.blocks, tuple)
                                and isinstance(self.blocks[0], Block)):
            object.__setattr__(self, "blocks", decode_blocks(self.blocks))

    @property
    def length(self) -> int:
        return len(self.text)


def page_of(doc: Document, offset: int) -> int | None:
    """The 1-based page holding character `offset` of doc.text; None without a page map."""
    if not doc.pages:
        return None
    starts = [s for s, _ in doc.pages]
    return max(1, bisect.bisect_right(starts, offset))


def block_at(doc: Document, offset: int) -> Block | None:
    """The block holding character `offset` (else the last one before it); None if none."""
    if not doc.blocks:
        return None
    i = bisect.bisect_right([b.start for b in doc.blocks], offset) - 1
    return doc.blocks[i] if i >= 0 else None


def section_of(doc: Document, offset: int) -> str | None:
    """The heading path ('Title › Section › Subsection') at `offset`; None without one."""
    block = block_at(doc, offset)
    return block.section if block is not None else None


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
