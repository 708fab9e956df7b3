"""PDF with a text layer, by pypdfium2 (chosen by measurement: benchmarks/pdf_parsers.py).

The document's text is the pages' text joined by a blank line (a single line break where a
paragraph runs on to the next page); `pages` maps each page to its character range, so a
citation's offset gives its page. Lines repeated at the top or bottom of most pages (running
headers, "Page 3" footers) are dropped: they are not content, and they would otherwise be
the most common "sentence" of a long report.

Blocks: headings from the outline (bookmarks: a line of the bookmarked page that reads as
the bookmark's title; without an outline, short lines set clearly larger than the body
text), paragraphs rejoined across lines and pages (a paragraph ends on a short line that
ends a sentence), list items, notes ("Note", "Tip"... labels), captions, listings (lines set
in a monospace font).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from qa.documents.model import Block
from qa.documents.parsers import (
    MAX_TEXT_CHARS,
    Parsed,
    SkipFile,
    clean_extracted,
    import_library,
)
from qa.documents.plain import title_of
from qa.temporal import valid_date

PAGE_SEPARATOR = "\n\n"
_PDF_DATE = re.compile(r"\A(?:D:)?(\d{4})(\d{2})?(\d{2})?")
_DIGITS = re.compile(r"\d+")
# PDFium marks a hyphen it removed at a line end with U+FFFE (and joins the lines); older
# versions use U+0002. Before a lower-case letter it split a word ("pré-/senté" ->
# "présenté"); before a capital it is a compound's own hyphen ("Grand-/Maison" stays
# "Grand-Maison").
_SOFT_HYPHEN = re.compile("[\ufffe\x02]")


def pdf_date(value: str) -> str | None:
    """'D:20240315120000Z' -> '2024-03-15' (None when it is not a real date)."""
    match = _PDF_DATE.match(value.strip())
    if not match:
        return None
    return valid_date("-".join(p for p in match.groups() if p))


def _unhyphenate(match: re.Match[str]) -> str:
    following = match.string[match.end() : match.end() + 1]
    return "-" if following and following.isupper() else ""


def _drop_running_lines(pages: list[str]) -> list[str]:
    """Pages without the first/last lines that repeat (digits aside) on most pages."""
    if len(pages) < 3:
        return pages
    split = [p.split("\n") for p in pages]

    def key(line: str) -> str:
        return _DIGITS.sub("#", line.strip())

    need = max(3, int(0.6 * len(pages)))
    heads = Counter(key(lines[0]) for lines in split if lines and lines[0].strip())
    tails = Counter(key(lines[-1]) for lines in split if lines and lines[-1].strip())
    running_heads = {k for k, n in heads.items() if n >= need}
    running_tails = {k for k, n in tails.items() if n >= need}
    out = []
    for lines in split:
        if lines and key(lines[0]) in running_heads:
            lines = lines[1:]
        if lines and key(lines[-1]) in running_tails:
            lines = lines[:-1]
        out.append("\n".join(lines).strip("\n"))
    return out


class PdfParser:
    """Text layer of every page (PDFium); skips encrypted, corrupt and text-less PDFs."""

    id = "pdf"
    version = 2
    format = "pdf"
    libraries = ("pypdfium2",)

    def parse(self, data: bytes, *, name: str) -> Parsed:
        pdfium = import_library("pypdfium2")
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if "password" in str(exc).lower():
                raise SkipFile("encrypted PDF (it needs a password)") from None
            raise SkipFile(f"corrupt or truncated PDF ({str(exc).rstrip('.')})") from None
        try:
            texts: list[str] = []
            # Per page, by a line's text: its font size, and whether it is set in monospace.
            sizes: list[dict[str, tuple[float, bool]]] = []
            total = 0
            for i in range(len(pdf)):
                page = pdf[i]
                textpage = page.get_textpage()
                try:
                    raw = textpage.get_text_range()
                    sizes.append(_line_sizes(textpage, raw))
                finally:
                    textpage.close()
                    page.close()
                if "\ufffe" in raw or "\x02" in raw:
                    raw = _SOFT_HYPHEN.sub(_unhyphenate, raw)
                texts.append(clean_extracted(raw).strip())
                total += len(texts[-1])
                if total > MAX_TEXT_CHARS:
                    raise SkipFile(f"more than {MAX_TEXT_CHARS:,} characters of text "
                                   "(the per-file limit)")
            info = pdf.get_metadata_dict(skip_empty=True)
            outline = _outline(pdf)
        except pdfium.PdfiumError as exc:
            raise SkipFile(f"corrupt PDF ({str(exc).rstrip('.')})") from None
        finally:
            pdf.close()
        if not texts:
            raise SkipFile("PDF with no pages")
        if not any(t.strip() for t in texts):
            raise SkipFile("PDF with no text layer (scanned? qa does not run OCR)")
        texts = _drop_running_lines(texts)
        text, pages, blocks = layout(
            texts, outline or _outline_from_sizes(texts, sizes),
            mono=[{line for line, (_, fixed) in page.items() if fixed} for page in sizes])
        meta = {k.lower(): str(v)[:1000] for k, v in info.items()
                if k in ("Title", "Author", "Subject", "CreationDate", "ModDate")}
        warnings: tuple[str, ...] = ()
        date = None
        raw_date = info.get("CreationDate", "")
        if raw_date:
            date = pdf_date(raw_date)
            if date is None:
                warnings = (f"malformed date {raw_date[:40]!r} in the pdf info; indexed undated",)
        return Parsed(
            text=text,
            pages=tuple(pages),
            title=title_of(text, 0, {"title": meta.get("title", "")}),
            date=date,
            date_source="pdf info" if date else None,
            meta=meta,
            warnings=warnings,
            blocks=blocks,
        )


_NUMBER_PREFIX = re.compile(r"\A(?:(?:chapter|chapitre|appendix|annexe|part|partie)\s+)?"
                            r"(?:[\dA-Z]{1,3}(?:\.\d+)*\.?\s+)?", re.I)
_CHAPTER_LINE = re.compile(r"\A(?:chapter|chapitre|appendix|annexe|part|partie)\s+[\dA-Z]+\Z",
                           re.I)
_PDF_BULLET = re.compile(r"\A(?:[•◦▪‣–*-]|\d{1,2}\.)\s")
_CAPTION_LINE = re.compile(r"\A(?:Table|Tableau|Figure|Example|Exemple)\s+\d+(?:\.\d+)*\s*[:.]")
_NOTE_LABELS = frozenset({"note", "tip", "warning", "caution", "important", "astuce",
                          "avertissement", "attention", "remarque", "danger"})
_ENDS_SENTENCE = tuple(".!?:…»\"”)")
MAX_OUTLINE = 10_000


def _norm(title: str) -> str:
    return " ".join(title.split()).casefold()


def _outline(pdf: Any) -> dict[int, list[tuple[int, str]]]:
    """page index -> [(level, normalised title)] of the PDF's bookmarks."""
    out: dict[int, list[tuple[int, str]]] = {}
    try:
        for n, item in enumerate(pdf.get_toc(max_depth=8)):
            if n >= MAX_OUTLINE:
                break
            dest = item.get_dest()
            index = dest.get_index() if dest is not None else None
            if index is not None and item.get_title():
                out.setdefault(int(index), []).append((int(item.level), _norm(item.get_title())))
    except Exception:  # a broken outline is no outline
        return {}
    return out


def _line_sizes(textpage: Any, raw: str) -> dict[str, tuple[float, bool]]:
    """(font size of its first character, set in monospace from its first to its last
    character) of each line, keyed by the line's text as qa keeps it."""
    import ctypes

    import pypdfium2.raw as pdfium_c

    name = ctypes.create_string_buffer(96)

    def fixed_pitch(index: int) -> bool:
        flags = ctypes.c_int(0)
        pdfium_c.FPDFText_GetFontInfo(textpage.raw, index, name, len(name),
                                      ctypes.byref(flags))
        # The font descriptor's FixedPitch flag; the standard Courier has no descriptor.
        return bool(flags.value & 1) or _MONO_NAME.search(name.value) is not None

    out: dict[str, tuple[float, bool]] = {}
    at = 0
    for line in raw.split("\n"):
        visible = line.strip()
        if visible:
            first = at + len(line) - len(line.lstrip())
            last = at + len(line.rstrip()) - 1
            key = clean_extracted(_SOFT_HYPHEN.sub(_unhyphenate, visible)).strip()
            if key not in out:
                out[key] = (float(pdfium_c.FPDFText_GetFontSize(textpage.raw, first)),
                            fixed_pitch(first) and fixed_pitch(last))
        at += len(line) + 1
    return out


_MONO_NAME = re.compile(rb"mono|courier|consol|menlo|typewriter|code", re.I)
# Without an outline, a short line set clearly larger than the body text is a heading; the
# sizes of such lines, largest first, give the levels.
HEADING_SIZE_RATIO = 1.15
MAX_HEADING_LEVELS = 4
MAX_HEADING_SHARE = 0.05  # a size used on more lines than this is body text, not headings


def _outline_from_sizes(texts: list[str], sizes: list[dict[str, tuple[float, bool]]]
                        ) -> dict[int, list[tuple[int, str]]]:
    """An outline read from font sizes (page -> [(level, title)]), for PDFs without one."""
    counts: Counter[float] = Counter()
    lines: list[tuple[int, str, float]] = []
    for page, (t, page_sizes) in enumerate(zip(texts, sizes, strict=False)):
        for line in t.split("\n"):
            size = page_sizes.get(line.strip(), (0.0, False))[0]
            if size:
                counts[round(size, 1)] += len(line)
                lines.append((page, line.strip(), round(size, 1)))
    if not counts:
        return {}
    body = counts.most_common(1)[0][0]
    total = sum(1 for _ in lines)
    per_size = Counter(size for _, _, size in lines)
    heading_sizes = sorted({size for _, line, size in lines
                            if size >= body * HEADING_SIZE_RATIO
                            and per_size[size] <= MAX_HEADING_SHARE * total + 1}, reverse=True)
    levels = {size: min(i, MAX_HEADING_LEVELS - 1) for i, size in enumerate(heading_sizes)}
    out: dict[int, list[tuple[int, str]]] = {}
    for page, line, size in lines:
        if size in levels and len(line) <= 120 and not line.endswith((".", ",", ";")) \
                and any(c.isalpha() for c in line):
            out.setdefault(page, []).append((levels[size], _norm(line)))
    return out


Outline = dict[int, list[tuple[int, str]]]
# line number -> (kind, level, heading label) of the block it starts
Starts = dict[int, tuple[str, int, str]]


def _classify(texts: list[str], lines: list[tuple[int, str]], outline: Outline,
              mono: list[set[str]]) -> tuple[Starts, set[int]]:
    """Where blocks start (and their kind/level), and the lines that end a paragraph."""
    widths = []
    for t in texts:
        lengths = sorted(len(line) for line in t.split("\n") if line.strip())
        widths.append(max(40, lengths[int(0.9 * (len(lengths) - 1))]) if lengths else 80)
    starts: Starts = {}
    ends_paragraph: set[int] = set()
    levels: list[int | None] = []
    for page, line in lines:
        marks = outline.get(page, []) + outline.get(page - 1, [])
        bare = _norm(_NUMBER_PREFIX.sub("", line.strip(), count=1))
        levels.append(next((lv for lv, title in marks
                            if title in (bare, _norm(line))), None) if line.strip() else None)
    code = [page < len(mono) and line.strip() in mono[page] for page, line in lines]
    for i, (page, line) in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            ends_paragraph.add(i)
            continue
        level = levels[i]
        if code[i] and level is None:
            # A listing: its lines run together; it starts and ends where the font changes.
            if i == 0 or not code[i - 1]:
                starts[i] = ("code", 0, "")
            if i + 1 >= len(lines) or not code[i + 1]:
                ends_paragraph.add(i)
            continue
        if level is not None:
            # "Chapter 1" on the line before the bookmarked title belongs to the heading.
            chapter = i > 0 and _CHAPTER_LINE.match(lines[i - 1][1].strip()) is not None
            starts[i - 1 if chapter else i] = ("heading", level + 1, stripped)
            ends_paragraph.add(i)
            if chapter:
                ends_paragraph.discard(i - 1)
        elif stripped.casefold() in _NOTE_LABELS:
            starts[i] = ("note", 0, "")
        elif _CAPTION_LINE.match(stripped):
            starts[i] = ("caption", 0, "")
            ends_paragraph.add(i)
        elif _PDF_BULLET.match(stripped):
            starts[i] = ("list_item", 0, "")
        elif _CHAPTER_LINE.match(stripped) and i + 1 < len(lines) and levels[i + 1] is not None:
            continue
        if level is None and stripped.endswith(_ENDS_SENTENCE) \
                and len(line) < 0.85 * widths[page]:
            ends_paragraph.add(i)
    return starts, ends_paragraph


def _join_pages(texts: list[str], starts: Starts, ends_paragraph: set[int]
                ) -> tuple[str, list[tuple[int, int]], list[tuple[int, int]]]:
    """(text, page ranges, line ranges): pages joined by a blank line, or by a line break
    where a paragraph that does not end on its page runs on to the next one."""
    joins: list[str] = []
    line_no = 0
    for p in range(len(texts) - 1):
        line_no += texts[p].count("\n") + 1
        last, first = line_no - 1, line_no
        runs_on = (texts[p].strip() and texts[p + 1].strip() and last not in ends_paragraph
                   and first not in starts)
        joins.append("\n" if runs_on else PAGE_SEPARATOR)
    parts: list[str] = []
    pages: list[tuple[int, int]] = []
    offsets: list[tuple[int, int]] = []
    at = 0
    for p, t in enumerate(texts):
        if p:
            parts.append(joins[p - 1])
            at += len(joins[p - 1])
        pages.append((at, at + len(t)))
        for line in t.split("\n"):
            offsets.append((at, at + len(line)))
            at += len(line) + 1
        at -= 1
        parts.append(t)
    return "".join(parts), pages, offsets


def _blocks(text: str, lines: list[tuple[int, str]], offsets: list[tuple[int, int]],
            starts: Starts, ends_paragraph: set[int]) -> tuple[Block, ...]:
    """Blocks: runs of lines from one start (or paragraph end) to the next, each under the
    headings open at its start."""
    blocks: list[Block] = []
    headings: list[tuple[int, str]] = []
    current: list[Any] | None = None  # [first line, last line, kind, level]

    def close() -> None:
        if current is None:
            return
        s, e = offsets[current[0]][0], offsets[current[1]][1]
        piece = text[s:e]
        lead, trail = len(piece) - len(piece.lstrip()), len(piece) - len(piece.rstrip())
        if piece.strip():
            blocks.append(Block(s + lead, e - trail, current[2], current[3],
                                tuple(h for _, h in headings)))

    for i, (_, line) in enumerate(lines):
        if not line.strip():
            close()
            current = None
            continue
        start = starts.get(i)
        if start is not None or current is None:
            close()
            kind, level, label = start or ("paragraph", 0, "")
            if kind == "heading":
                while headings and headings[-1][0] >= level:
                    headings.pop()
                headings.append((level, _NUMBER_PREFIX.sub("", label, count=1).strip()
                                 or label))
            current = [i, i, kind, level]
        else:
            current[1] = i
        if i in ends_paragraph:
            close()
            current = None
    close()
    return tuple(blocks)


def layout(texts: list[str], outline: Outline, *, mono: list[set[str]] | None = None,
           ) -> tuple[str, list[tuple[int, int]], tuple[Block, ...]]:
    """(text, page ranges, blocks) of the pages' texts: see the module's docstring. Lines
    in `mono` (per page, set in a monospace font) are listings."""
    lines: list[tuple[int, str]] = [(p, line) for p, t in enumerate(texts)
                                    for line in t.split("\n")]
    starts, ends_paragraph = _classify(texts, lines, outline, mono or [])
    text, pages, offsets = _join_pages(texts, starts, ends_paragraph)
    return text, pages, _blocks(text, lines, offsets, starts, ends_paragraph)
