"""Documents -> chunks and sentences, each with exact character offsets into the document."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from qa.documents import Block, Document, section_of

# Bump when metadata parsing, chunk or sentence boundaries change for the same text: indexes
# record it, and an update re-splits and re-embeds every document instead of reusing old units.
# 4: chunks stay inside one section, and carry their heading path (contextual chunks).
SPLITTER_VERSION = 4

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


def section_ranges(document: Document, *, min_chars: int) -> list[tuple[int, int]]:
    """[start, end) of each section of the body: a heading and what follows it up to the
    next heading. A section shorter than min_chars (a chapter heading right before its
    first subsection) joins the next one; without headings, the whole body."""
    starts = sorted({b.start for b in document.blocks
                     if b.kind == "heading" and b.start > document.body_start})
    bounds = [document.body_start, *starts, len(document.text)]
    out: list[tuple[int, int]] = []
    open_start = bounds[0]
    for end in bounds[1:]:
        if end - open_start >= min_chars or end == len(document.text):
            out.append((open_start, end))
            open_start = end
    return [(s, e) for s, e in out if document.text[s:e].strip()]


def chunk_section(document: Document, start: int, end: int) -> str | None:
    """The heading path of a chunk: that of its first block that is not a heading (a chunk
    starting on a chapter heading is about the section under it), else at its start."""
    blocks = document.blocks
    if not blocks:
        return None
    i = max(0, bisect.bisect_right(_block_starts(document), start) - 1)
    while i < len(blocks) and blocks[i].start < end:
        if blocks[i].kind != "heading" and blocks[i].end > start:
            return blocks[i].section
        i += 1
    return section_of(document, start)


def contextual_text(document: Document, chunk: Chunk) -> str:
    """What is embedded and matched for a chunk: its heading path, then its text (the
    chunk's offsets still index its text alone)."""
    section = chunk_section(document, chunk.start, chunk.end)
    return f"{section}\n{chunk.text}" if section else chunk.text


_STARTS: list[tuple[tuple[Block, ...], list[int]]] = []


def _block_starts(document: Document) -> list[int]:
    # The last document's block starts, kept for its other chunks (a build's hot loop);
    # holding the tuple itself makes the identity check safe.
    cached = _STARTS[0] if _STARTS else None
    if cached is None or cached[0] is not document.blocks:
        cached = (document.blocks, [b.start for b in document.blocks])
        _STARTS[:] = [cached]  # one assignment: threads serving answers may call this too
    return cached[1]


def chunk_document(document: Document, *, size: int, overlap: int) -> list[Chunk]:
    """Split a document's body with langchain's RecursiveCharacterTextSplitter, keeping
    offsets; each section (heading to heading) is split on its own, so that a chunk stays
    inside one section where it can."""
    if overlap >= size:
        raise ValueError(f"chunk overlap ({overlap}) must be smaller than chunk size ({size})")
    if not any(b.kind == "heading" for b in document.blocks):
        return _split(document, document.body_start, len(document.text), size=size,
                      overlap=overlap)
    chunks: list[Chunk] = []
    for start, end in section_ranges(document, min_chars=size // 4):
        chunks.extend(_split(document, start, end, size=size, overlap=overlap))
    return chunks


def _split(document: Document, base: int, stop: int, *, size: int, overlap: int) -> list[Chunk]:
    """text[base:stop] split into chunks with exact offsets."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=size,
        chunk_overlap=overlap,
        separators=SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )
    text = document.text
    body = text[base:stop]
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
        if at < 0 and prev_start >= 0 and body.startswith(piece, prev_start):
            # The previous piece was placed on a short repeat ('aaa') that is in fact this
            # piece's start: this one replaces it (the short one lay inside the one before).
            if len(piece) > prev_end - prev_start:
                chunks.pop()
                at = prev_start
            else:
                continue  # the same piece twice at the same place
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
# The lookahead keeps "missiles. lancées" (a lower-case continuation in the source) in one
# sentence. Line breaks (\n, \r\n or a lone \r) are candidates: see _soft_break.
_BOUNDARY = re.compile(
    r"(?<=[.!?…])(?:[ \t\u00a0\u202f]*[»\"”)\]*])*[ \t\u00a0\u202f]+"
    r"(?=[A-ZÀ-ÖØ-Þ0-9«\"“•*(À-Ý])"
    r"|[ \t\u00a0\u202f]*(?:\r\n?|\n)\s*"
)
_LINE_BREAK = re.compile(r"\r\n?|\n")
_TRIM_LEFT = " \t\r\n\u00a0•*.-–—,;:"
_TRIM_RIGHT = " \t\r\n\u00a0"
# Words a line cannot end a sentence on: a hard-wrapped line ending on one continues.
_CONTINUES = frozenset("""
a à au aux avec chez dans de des du en entre et l la le les leur leurs ma mais mes mon ni nos
notre ou où par pour qu que qui sa sans ses son sous sur ta tes ton un une vers d c j n s
an and as at by for from in into of on or the to with that than their its our your
""".split())  # noqa: SIM905
_LAST_WORD = re.compile(r"(\w+)[’']?\Z")
_LIST_START = re.compile(r"[•*\-–—]|\d+[.)]\s")

# No sentence is longer than this: longer runs (a table flattened to one line, a 5 MB line
# of letters) are cut into windows, at whitespace when there is some, so that what is
# embedded per unit stays bounded (the embedder's memory grows with the length of a unit).
MAX_SENTENCE_CHARS = 2_000


def _soft_break(text: str, start: int, end: int) -> bool:
    """Whether the line break in text[start:end] wraps a sentence instead of ending one.

    One line break (not a blank line) is soft when the next line starts in lower case
    ("... 512-byte blocks are\n       used."), or when the line ends mid-phrase: on a comma,
    a hyphen or a word that cannot end a sentence ("de", "the"). Headings ("Un soutien
    militaire renforcé") and list items keep their own line.
    """
    if len(_LINE_BREAK.findall(text, start, end)) != 1 or start == 0 or end >= len(text):
        return False
    prev, nxt = text[start - 1], text[end]
    if prev in ".!?…:;»\"”)]" or _LIST_START.match(text, end):
        return False
    if nxt.islower():
        return True
    if prev in ",(«-":
        return True
    word = _LAST_WORD.search(text, max(0, start - 30), start)
    return word is not None and word.group(1).lower() in _CONTINUES


def _windows(s: int, e: int, text: str) -> list[tuple[int, int]]:
    """[s, e) cut into pieces of at most MAX_SENTENCE_CHARS, at whitespace when possible."""
    out = []
    while e - s > MAX_SENTENCE_CHARS:
        cut = s + MAX_SENTENCE_CHARS
        space = max(text.rfind(" ", s + MAX_SENTENCE_CHARS // 2, cut),
                    text.rfind("\n", s + MAX_SENTENCE_CHARS // 2, cut))
        if space > s:
            cut = space
        out.append((s, cut))
        s = cut
        while s < e and text[s] in _TRIM_RIGHT:
            s += 1
    out.append((s, e))
    return out


def split_sentences(document: Document) -> list[Span]:
    """Sentences of a document's body, trimmed of bullets and stray leading punctuation.

    A sentence may span a soft line break (text[start:end] then holds the line break, exactly
    as in the document); none is longer than MAX_SENTENCE_CHARS.
    """
    text = document.text
    spans: list[Span] = []
    start = document.body_start
    # A term and its definition read as one sentence ("-l, --files-with-matches  Suppress
    # normal output..."): the break between them is no boundary, and the term keeps its
    # leading dash.
    glued: set[int] = set()
    terms: set[int] = set()
    for b, nxt in zip(document.blocks, document.blocks[1:], strict=False):
        if b.kind == "term" and nxt.kind == "definition":
            glued.update(range(b.end, nxt.start + 1))
            terms.add(b.start)
    # A boundary's closing quotes (". »") belong to the sentence they close.
    bounds = [(m.start() + len(m.group(0).rstrip()), m.end())
              for m in _BOUNDARY.finditer(text, document.body_start)
              if not _soft_break(text, m.start(), m.end()) and m.start() not in glued]
    bounds.append((len(text), len(text)))
    for b_start, b_end in bounds:
        s, e = start, b_start
        while s < e and text[s] in _TRIM_LEFT and not (s in terms and text[s] in "-+"):
            s += 1
        while e > s and text[e - 1] in _TRIM_RIGHT:
            e -= 1
        if e - s >= 3:
            for ws, we in _windows(s, e, text):
                if we - ws >= 3 and any(c.isalnum() for c in text[ws:we]):
                    spans.append(Span(document.doc_id, ws, we))
        start = b_end
    return spans
