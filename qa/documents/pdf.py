"""PDF with a text layer, by pypdfium2 (chosen by measurement: benchmarks/pdf_parsers.py).

The document's text is the pages' text joined by a blank line; `pages` maps each page to its
character range, so a citation's offset gives its page. Lines repeated at the top or bottom
of most pages (running headers, "Page 3" footers) are dropped: they are not content, and
they would otherwise be the most common "sentence" of a long report.
"""

from __future__ import annotations

import re
from collections import Counter

from qa.documents.model import valid_date
from qa.documents.parsers import (
    MAX_TEXT_CHARS,
    Parsed,
    SkipFile,
    clean_extracted,
    import_library,
)
from qa.documents.plain import title_of

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
    version = 1
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
            total = 0
            for i in range(len(pdf)):
                page = pdf[i]
                textpage = page.get_textpage()
                try:
                    raw = textpage.get_text_range()
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
        except pdfium.PdfiumError as exc:
            raise SkipFile(f"corrupt PDF ({str(exc).rstrip('.')})") from None
        finally:
            pdf.close()
        if not texts:
            raise SkipFile("PDF with no pages")
        if not any(t.strip() for t in texts):
            raise SkipFile("PDF with no text layer (scanned? qa does not run OCR)")
        texts = _drop_running_lines(texts)
        pages: list[tuple[int, int]] = []
        at = 0
        for t in texts:
            pages.append((at, at + len(t)))
            at += len(t) + len(PAGE_SEPARATOR)
        text = PAGE_SEPARATOR.join(texts)
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
        )
