"""Blocks of a text file found in its layout, over the file's own text (offsets unchanged).

Markdown: ATX and setext headings, fenced code, list items, table rows, paragraphs. Plain
text and man pages: headings (a man page's NAME/OPTIONS... at the margin, its subsections
a little indented, a short standalone line without final punctuation), an option or term
line followed by a more indented description (a term + definition pair, also when both
share the line: "-c     with -lt: sort by ctime"), indented command lines (code), bullet
items, paragraphs.
"""

from __future__ import annotations

import re

from qa.documents.model import Block

_ATX = re.compile(r"(#{1,6})[ \t]+(.+?)[ \t#]*\Z")
_SETEXT = re.compile(r"(=+|-+)[ \t]*\Z")
_FENCE = re.compile(r"(```+|~~~+)")
_BULLET = re.compile(r"(?:[-*+•‣◦▪]|\d{1,3}[.)])[ \t]+\S")
_TABLE_ROW = re.compile(r"\|.*\|[ \t]*\Z")
_MAN_HEADER = re.compile(r"(\S+\(\w+\))\s.*\s\1\Z")
# "-c     with -lt: sort by ctime": an option, two spaces or more, its description.
_SAME_LINE_TERM = re.compile(r"([-+][^\s].{0,38}?)\s{2,}(\S.*)\Z")
_COMMAND = re.compile(r"[$%#][ \t]+\S")
MAX_HEADING = 80
MAX_TERM = 60
END_PUNCT = ".,;:!?…»\")”"


class _Lines:
    """The body's lines with their offsets: (start, end without the line break)."""

    def __init__(self, text: str, start: int) -> None:
        self.text = text
        self.spans: list[tuple[int, int]] = []
        at = start
        for line in text[start:].splitlines(keepends=True):
            body = line.rstrip("\r\n")
            self.spans.append((at, at + len(body)))
            at += len(line)

    def __len__(self) -> int:
        return len(self.spans)

    def line(self, i: int) -> str:
        s, e = self.spans[i]
        return self.text[s:e]

    def blank(self, i: int) -> bool:
        return not self.line(i).strip()

    def indent(self, i: int) -> int:
        line = self.line(i)
        return len(line) - len(line.lstrip(" \t"))

    def next_nonblank(self, i: int, limit: int = 2) -> int | None:
        """The next line after i that is not blank, if fewer than `limit` blanks precede it."""
        n = len(self.spans)
        j = i + 1
        skipped = 0
        while j < n and self.blank(j):
            j += 1
            skipped += 1
        return j if j < n and skipped < limit else None

    def block(self, i: int, j: int, kind: str, level: int = 0,
              path: tuple[str, ...] = ()) -> Block | None:
        """Lines i..j (inclusive) as a block trimmed to its visible text."""
        s, e = self.spans[i][0], self.spans[j][1]
        piece = self.text[s:e]
        if not piece.strip():
            return None
        lead = len(piece) - len(piece.lstrip()) if kind != "code" else \
            len(piece) - len(piece.lstrip("\r\n"))
        trail = len(piece) - len(piece.rstrip())
        return Block(s + lead, e - trail, kind, level, path)


class _Path:
    def __init__(self) -> None:
        self.stack: list[tuple[int, str]] = []

    def push(self, level: int, label: str) -> tuple[str, ...]:
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, " ".join(label.split())[:200]))
        return self.current()

    def current(self) -> tuple[str, ...]:
        return tuple(h for _, h in self.stack)


def markdown_blocks(text: str, start: int) -> tuple[Block, ...]:
    lines = _Lines(text, start)
    path = _Path()
    out: list[Block | None] = []
    i, n = 0, len(lines)
    while i < n:
        line = lines.line(i)
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        fence = _FENCE.match(stripped)
        if fence:
            j = i + 1
            while j < n and not lines.line(j).strip().startswith(fence.group(1)):
                j += 1
            out.append(lines.block(i, min(j, n - 1), "code", path=path.current()))
            i = j + 1
            continue
        atx = _ATX.match(stripped)
        if atx and lines.indent(i) < 4:
            level = len(atx.group(1))
            p = path.push(level, atx.group(2))
            out.append(lines.block(i, i, "heading", level, p))
            i += 1
            continue
        if i + 1 < n and _SETEXT.match(lines.line(i + 1).strip()) and \
                len(lines.line(i + 1).strip()) >= 2 and not _BULLET.match(stripped):
            level = 1 if lines.line(i + 1).strip()[0] == "=" else 2
            p = path.push(level, stripped)
            out.append(lines.block(i, i + 1, "heading", level, p))
            i += 2
            continue
        if lines.indent(i) >= 4:
            j = i
            while j + 1 < n and (lines.indent(j + 1) >= 4 or lines.blank(j + 1)):
                j += 1
            out.append(lines.block(i, j, "code", path=path.current()))
            i = j + 1
            continue
        if _TABLE_ROW.match(stripped):
            if not set(stripped) <= set("|-: \t"):
                out.append(lines.block(i, i, "table_row", path=path.current()))
            i += 1
            continue
        kind = "list_item" if _BULLET.match(stripped) else (
            "note" if stripped.startswith(">") else "paragraph")
        j = i
        while j + 1 < n and not lines.blank(j + 1):
            nxt = lines.line(j + 1).strip()
            if _BULLET.match(nxt) or _FENCE.match(nxt) or _ATX.match(nxt) or \
                    _TABLE_ROW.match(nxt):
                break
            j += 1
        out.append(lines.block(i, j, kind, path=path.current()))
        i = j + 1
    return tuple(b for b in out if b is not None)


def _same_line_term(lines: _Lines, i: int, same: re.Match[str], path: tuple[str, ...],
                    out: list[Block | None]) -> int:
    """"-c     with -lt: ..." and its continuation lines at the description's column, as a
    term and its definition; returns the line after them."""
    n = len(lines)
    ind = lines.indent(i)
    col = ind + same.start(2)
    j = i
    while j + 1 < n and not lines.blank(j + 1) and lines.indent(j + 1) >= col - 1:
        j += 1
    s = lines.spans[i][0]
    out.append(Block(s + ind, s + ind + len(same.group(1)), "term", 0, path))
    out.append(_trim(lines.text, s + col, lines.spans[j][1], "definition", path))
    return j + 1


def _term_and_description(lines: _Lines, i: int, nxt: int, path: tuple[str, ...],
                          out: list[Block | None]) -> int:
    """Line i as a term and its description: the more indented lines from `nxt` on
    (paragraphs of it, blank-separated); returns the line after them."""
    n = len(lines)
    nxt_ind = lines.indent(nxt)
    out.append(lines.block(i, i, "term", path=path))
    j = nxt
    while j < n:
        k = j
        while k + 1 < n and not lines.blank(k + 1) and lines.indent(k + 1) >= nxt_ind:
            k += 1
        kind = "code" if _COMMAND.match(lines.line(j).strip()) else "definition"
        out.append(lines.block(j, k, kind, path=path))
        after = lines.next_nonblank(k)
        if after is None or lines.indent(after) < nxt_ind:
            j = k + 1
            break
        j = after
    return j


def _heading_like(line: str) -> bool:
    s = line.strip()
    return (0 < len(s) <= MAX_HEADING and s[-1] not in END_PUNCT and not _BULLET.match(s)
            and not s.startswith(("-", "+", "$", "%", "#", "|", "(", "[", "{", "<"))
            and (s[0].isupper() or s[0].isdigit()))


def text_blocks(text: str, start: int) -> tuple[Block, ...]:
    """Blocks of a plain text or man page body (see the module's docstring)."""
    lines = _Lines(text, start)
    path = _Path()
    out: list[Block | None] = []
    n = len(lines)
    i = 0
    heading_line = -2
    while i < n:
        if lines.blank(i):
            i += 1
            continue
        line = lines.line(i)
        stripped = line.strip()
        ind = lines.indent(i)
        # A heading's line ends what came before it, as a blank line does.
        prev_blank = i == 0 or lines.blank(i - 1) or heading_line == i - 1
        nxt = lines.next_nonblank(i)
        nxt_ind = lines.indent(nxt) if nxt is not None else -1
        standalone = prev_blank and (i + 1 >= n or lines.blank(i + 1))
        # A man page's header line "LS(1)   User Commands   LS(1)": the document's title.
        header = _MAN_HEADER.match(stripped)
        if header and not out:
            p = path.push(1, header.group(1))
            out.append(lines.block(i, i, "heading", 1, p))
            heading_line = i
            i += 1
            continue
        # Section headings: at the margin in capitals (NAME, OPTIONS), a little indented
        # before more indented text (a man page's subsection), or a short standalone line.
        if prev_blank and _heading_like(line) and ind < 4 and (
                (stripped.isupper() and ind == 0) or
                (nxt is not None and nxt == i + 1 and nxt_ind > ind and ind > 0) or
                (standalone and nxt is not None and nxt_ind <= ind + 1)):
            level = 2 if ind == 0 and stripped.isupper() else 3
            if not path.stack or (level == 3 and not any(lv == 2 for lv, _ in path.stack)):
                level = 2
            p = path.push(level, stripped)
            out.append(lines.block(i, i, "heading", level, p))
            heading_line = i
            i += 1
            continue
        same = _SAME_LINE_TERM.match(stripped)
        if same and prev_blank:
            i = _same_line_term(lines, i, same, path.current(), out)
            continue
        if prev_blank and nxt is not None and nxt_ind > ind and len(stripped) <= MAX_TERM \
                and stripped[-1] not in ".:;," and not _COMMAND.match(stripped) and (
                    stripped.startswith(("-", "+")) or nxt == i + 1):
            i = _term_and_description(lines, i, nxt, path.current(), out)
            continue
        if _COMMAND.match(stripped):
            j = i
            while j + 1 < n and not lines.blank(j + 1):
                j += 1
            out.append(lines.block(i, j, "code", path=path.current()))
            i = j + 1
            continue
        kind = "list_item" if _BULLET.match(stripped) else "paragraph"
        j = i
        while j + 1 < n and not lines.blank(j + 1) and not _BULLET.match(lines.line(j + 1)
                                                                          .strip()):
            if lines.indent(j + 1) < ind and kind == "list_item":
                break
            j += 1
        out.append(lines.block(i, j, kind, path=path.current()))
        i = j + 1
    return tuple(b for b in out if b is not None)


def _trim(text: str, s: int, e: int, kind: str, path: tuple[str, ...]) -> Block | None:
    piece = text[s:e]
    if not piece.strip():
        return None
    lead = len(piece) - len(piece.lstrip())
    trail = len(piece) - len(piece.rstrip())
    return Block(s + lead, e - trail, kind, 0, path)
