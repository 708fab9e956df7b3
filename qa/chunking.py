"""Documents -> chunks and sentences, each with exact character offsets into the document."""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.documents import Document

# Bump when metadata parsing, chunk or sentence boundaries change for the same text: indexes
# record it, and an update re-splits and re-embeds every document instead of reusing old units.
SPLITTER_VERSION = 2

# Paragraph, line, sentence, clause, word, character: the splitter tries them in order.
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage: document.text[start:end] == text."""

    doc_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Span:
    """A sentence (or other span) of a document, by offsets only."""

    doc_id: str
    start: int
    end: int


def chunk_document(document: Document, *, size: int, overlap: int) -> list[Chunk]:
    """Split a document's body with langchain's RecursiveCharacterTextSplitter, keeping offsets."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    if overlap >= size:
        raise ValueError(f"chunk overlap ({overlap}) must be smaller than chunk size ({size})")
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=size,
        chunk_overlap=overlap,
        separators=SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )
    text = document.text
    base = document.body_start
    body = text[base:]
    chunks: list[Chunk] = []
    prev_start, prev_end = -1, 0
    for piece in splitter.split_text(body):
        # Pieces come in document order. A piece repeats at most `overlap` characters of the
        # previous one (so it starts at or after prev_end - overlap) and always adds new text
        # (so it ends after prev_end): the first copy that fits both is the right one when
        # the text repeats itself.
        at = body.find(piece, max(prev_start + 1, prev_end - overlap))
        while at >= 0 and at + len(piece) <= prev_end:
            at = body.find(piece, at + 1)
        adjacent = at >= 0 and (at <= prev_end or not body[prev_end:at].strip())
        if not adjacent:
            # Not right after the previous piece: the splitter may have emitted again a
            # fragment that lies inside the previous piece (seen on source code with
            # repeated lines); placing it at a later copy would skip text. It adds nothing.
            inside = body.find(piece, max(prev_start, 0))
            if inside >= 0 and inside + len(piece) <= prev_end:
                continue
        if at < 0:
            at = body.find(piece, prev_start + 1)
        if at < 0:
            raise RuntimeError(  # pragma: no cover - guarded by the property tests
                f"chunk not found in {document.doc_id} after offset {prev_start}"
            )
        start = base + at
        chunks.append(Chunk(document.doc_id, start, start + len(piece), piece))
        prev_start, prev_end = at, at + len(piece)
    return chunks


# A sentence ends at . ! ? or … (possibly doubled, possibly followed by closing quotes) when
# what follows starts like a sentence: an upper-case letter, a digit, a quote or a bullet.
# Lines always end sentences (headings, bullet lists). The lookahead keeps "missiles. lancées"
# (a lower-case continuation in the source) in one sentence.
_BOUNDARY = re.compile(
    r"(?<=[.!?…])(?:[ \t\u00a0\u202f]*[»\"”)\]*])*[ \t\u00a0\u202f]+"
    r"(?=[A-ZÀ-ÖØ-Þ0-9«\"“•*(À-Ý])"
    r"|\s*\n\s*"
)
_TRIM_LEFT = " \t\r\n\u00a0•*.-–—,;:"
_TRIM_RIGHT = " \t\r\n\u00a0"


def split_sentences(document: Document) -> list[Span]:
    """Sentences of a document's body, trimmed of bullets and stray leading punctuation."""
    text = document.text
    spans: list[Span] = []
    start = document.body_start
    # A boundary's closing quotes (". »") belong to the sentence they close.
    bounds = [(m.start() + len(m.group(0).rstrip()), m.end())
              for m in _BOUNDARY.finditer(text, document.body_start)]
    bounds.append((len(text), len(text)))
    for b_start, b_end in bounds:
        s, e = start, b_start
        while s < e and text[s] in _TRIM_LEFT:
            s += 1
        while e > s and text[e - 1] in _TRIM_RIGHT:
            e -= 1
        if e - s >= 3 and any(c.isalnum() for c in text[s:e]):
            spans.append(Span(document.doc_id, s, e))
        start = b_end
    return spans
