"""The narrow view of an index that answering reads through.

Answering needs a document's text, the sentences of a chunk and their terms and vectors, a few
corpus statistics and, when the parser gave them, the document's blocks (their kind and
heading path). `TextSource` names exactly that; `qa.index.Index` satisfies it structurally,
and a test can hand in anything smaller. Retrieval is not part of it: the pipeline retrieves
from the index, then answers from the source.

Blocks are read through `block_at`, which returns a neutral `BlockInfo` when the document has
no blocks (an index built before blocks, or a format without them): the features that use a
block's kind or section then get their neutral value.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from qa.chunking import Chunk, Span
from qa.documents import Document


@runtime_checkable
class TextSource(Protocol):
    """What answering reads: texts, sentences, terms, a few statistics."""

    @property
    def n_units(self) -> int: ...  # chunks counted by doc_freq

    @property
    def n_documents(self) -> int: ...

    @property
    def generation(self) -> str: ...

    def doc_ids(self) -> list[str]: ...

    def doc(self, doc_id: str) -> Document: ...

    def doc_meta(self, doc_id: str) -> dict[str, Any]: ...

    def doc_freq(self, term: str) -> int: ...

    def chunk(self, chunk_id: int) -> Chunk: ...

    def sentences_of_chunk(self, chunk_id: int) -> list[int]: ...

    def sentence(self, sentence_id: int) -> Span: ...

    def sentence_vectors_of(self, sentence_ids: list[int]) -> np.ndarray: ...

    def terms_of_sentence(self, i: int) -> frozenset[str]: ...


@dataclass(frozen=True)
class BlockInfo:
    """The block holding an offset: its kind, heading path and offsets; kind None without
    blocks."""

    kind: str | None = None
    section: tuple[str, ...] = ()
    start: int = -1
    end: int = -1


NO_BLOCK = BlockInfo()


_STARTS: dict[tuple[str, str], list[int]] = {}


def _located(source: TextSource, doc_id: str, offset: int) -> tuple[Document, int]:
    """The document and the index of its last block starting at or before `offset` (-1)."""
    doc = source.doc(doc_id)
    blocks = getattr(doc, "blocks", None) or ()
    if not blocks:
        return doc, -1
    key = (doc_id, doc.sha256)
    starts = _STARTS.get(key)
    if starts is None:  # bisect needs the starts as a list: built once per document
        starts = [int(b.start) for b in blocks]
        if len(_STARTS) > 1024:
            _STARTS.clear()
        _STARTS[key] = starts
    return doc, bisect.bisect_right(starts, offset) - 1


def block_at(source: TextSource, doc_id: str, offset: int) -> BlockInfo:
    """Kind and section of the block holding `offset` of the document; NO_BLOCK when the
    document has no blocks (between two blocks: the section of the one before, no kind)."""
    doc, i = _located(source, doc_id, offset)
    if i < 0:
        return NO_BLOCK
    b = doc.blocks[i]
    path = tuple(str(p) for p in (getattr(b, "path", None) or ()))
    if offset >= b.end:
        return BlockInfo(None, path)
    return BlockInfo(str(b.kind), path, int(b.start), int(b.end))


LEAD_MAX = 300  # characters of a lead kept: a caption and a header row, a term, a lead-in


def block_lead(source: TextSource, doc_id: str, offset: int) -> str:
    """What introduces the block holding `offset`, which a question may name instead of the
    block itself: a table row's caption and header row, a definition's term, a list item's
    lead-in paragraph when it ends with a colon; '' otherwise."""
    doc, i = _located(source, doc_id, offset)
    if i < 0 or offset >= doc.blocks[i].end:
        return ""
    blocks, text = doc.blocks, doc.text
    kind = str(blocks[i].kind)
    same = {"table_row": "table_row", "definition": "definition", "list_item": "list_item"}
    if kind not in same:
        return ""
    j = i
    while j > 0 and blocks[j - 1].kind == kind:
        j -= 1  # the first row of the table, paragraph of the definition, item of the list
    before = blocks[j - 1] if j > 0 else None
    parts: list[str] = []
    if kind == "table_row":
        if before is not None and before.kind == "caption":
            parts.append(text[before.start : before.end])
        if j < i:
            parts.append(text[blocks[j].start : blocks[j].end])  # the header row
    elif before is not None and (
            (kind == "definition" and before.kind == "term")
            or (kind == "list_item" and before.kind == "paragraph"
                and text[before.start : before.end].rstrip().endswith(":"))):
        parts.append(text[before.start : before.end])
    return " ".join(p[-LEAD_MAX:] for p in parts)


def line_of(text: str, start: int, end: int) -> tuple[int, int]:
    """The [start, end) of the text lines the span [start, end) touches."""
    s = text.rfind("\n", 0, start) + 1
    e = text.find("\n", end)
    return s, (len(text) if e < 0 else e)
