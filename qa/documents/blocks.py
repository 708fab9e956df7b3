"""Build a document's text and its blocks together, so that every offset is exact.

Parsers that extract text (HTML, PDF, DOCX) append blocks one by one: each block's text is
cleaned and placed after a blank line, and its heading path is the stack of headings seen
so far, cut at the new heading's level.
"""

from __future__ import annotations

import re

from qa.documents.model import BLOCK_KINDS, Block
from qa.documents.parsers import clean_extracted

BLOCK_SEPARATOR = "\n\n"
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_LINES = re.compile(r" *\n+ *")
MAX_HEADING_CHARS = 200


def collapse_inline(text: str) -> str:
    """Prose whitespace collapsed: runs of spaces to one, line breaks kept single."""
    text = _SPACES.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _LINES.sub("\n", text).strip()


class BlockWriter:
    """Accumulates blocks; `text` and `blocks` are the document's."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._blocks: list[Block] = []
        self._headings: list[tuple[int, str]] = []  # (level, text), outermost first

    @property
    def length(self) -> int:
        return self._length

    def path(self) -> tuple[str, ...]:
        return tuple(h for _, h in self._headings)

    def add(self, kind: str, text: str, *, level: int = 0, clean: bool = True) -> Block | None:
        """Append a block (nothing when its text is blank); headings update the path."""
        assert kind in BLOCK_KINDS, kind
        if clean:
            text = clean_extracted(text)
        text = text.strip("\n") if kind == "code" else text.strip()
        if kind == "code":
            text = text.rstrip()
        if not text.strip():
            return None
        if kind == "heading":
            level = max(1, level)
            while self._headings and self._headings[-1][0] >= level:
                self._headings.pop()
            label = " ".join(text.split())
            if len(label) > MAX_HEADING_CHARS:
                label = label[: MAX_HEADING_CHARS - 3].rstrip() + "..."
            self._headings.append((level, label))
        if self._parts:
            self._parts.append(BLOCK_SEPARATOR)
            self._length += len(BLOCK_SEPARATOR)
        start = self._length
        self._parts.append(text)
        self._length += len(text)
        block = Block(start, self._length, kind, level if kind == "heading" else 0, self.path())
        self._blocks.append(block)
        return block

    def extend(self, text: str, *, joiner: str = " ") -> None:
        """Continue the last block with `text` (a paragraph broken by a page end)."""
        text = clean_extracted(text).strip()
        if not text or not self._blocks:
            return
        last = self._blocks[-1]
        self._parts.append(joiner + text)
        self._length += len(joiner) + len(text)
        self._blocks[-1] = Block(last.start, self._length, last.kind, last.level, last.path)

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def blocks(self) -> tuple[Block, ...]:
        return tuple(self._blocks)
