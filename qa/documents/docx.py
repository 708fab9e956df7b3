"""Word files (.docx) by python-docx: paragraphs, headings and tables in document order, as
blocks (heading styles give the headings and their levels, list styles the list items).

A .docx is a zip: before python-docx inflates anything, the declared sizes of its members
are checked, then every member is inflated in bounded pieces into a stored (uncompressed)
copy that python-docx reads. The directory's sizes are not trusted: `ZipExtFile.read()`
inflates a whole member before truncating it to its declared size, so a member declaring
20 KB could still take 1 GiB.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from typing import Any

from qa.documents.blocks import BlockWriter
from qa.documents.parsers import (
    MAX_FILE_BYTES,
    MAX_TEXT_CHARS,
    Parsed,
    SkipFile,
    import_library,
)
from qa.documents.plain import title_of

# python-docx loads every member into memory and parses the XML ones with lxml (a tree
# several times the XML's size). So: uncompressed bytes in total, XML bytes in total, and the
# compression ratio beyond which a member is a bomb (text XML compresses ~10x, not 200x).
MAX_UNCOMPRESSED_BYTES = 2 * MAX_FILE_BYTES
MAX_XML_BYTES = 32 * 1024 * 1024
MAX_RATIO = 200


def check_zip(data: bytes) -> None:
    """SkipFile unless `data` is a zip whose members inflate to a sane size."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise SkipFile("corrupt or truncated DOCX (not a zip archive)") from None
    total = sum(m.file_size for m in members)
    if total > MAX_UNCOMPRESSED_BYTES:
        raise SkipFile(f"DOCX inflates to {total:,} bytes, over the {MAX_UNCOMPRESSED_BYTES:,}"
                       "-byte limit (a zip bomb?)")
    xml = sum(m.file_size for m in members if m.filename.endswith((".xml", ".rels")))
    if xml > MAX_XML_BYTES:
        raise SkipFile(f"DOCX holds {xml:,} bytes of XML, over the {MAX_XML_BYTES:,}-byte limit")
    for m in members:
        if m.file_size > 1_000_000 and m.file_size > MAX_RATIO * max(m.compress_size, 1):
            ratio = m.file_size // max(m.compress_size, 1)
            raise SkipFile(f"DOCX member {m.filename} inflates {ratio}x (a zip bomb?)")
    if not any(m.filename == "word/document.xml" for m in members):
        raise SkipFile("not a Word document (no word/document.xml)")


_PIECE = 1 << 16


def bounded_copy(data: bytes) -> bytes:
    """The zip re-packed uncompressed from members inflated 64 KB at a time, never past
    MAX_UNCOMPRESSED_BYTES in total; SkipFile when a member inflates to more (or other)
    than its directory entry declares."""
    out = io.BytesIO()
    total = 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf, \
                zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
            for member in zf.infolist():
                if member.is_dir():
                    continue
                pieces = []
                try:
                    with zf.open(member) as fh:
                        while piece := fh.read(_PIECE):
                            total += len(piece)
                            if total > MAX_UNCOMPRESSED_BYTES:
                                raise SkipFile(
                                    f"DOCX inflates past the {MAX_UNCOMPRESSED_BYTES:,}-byte "
                                    "limit (a zip bomb?)")
                            pieces.append(piece)
                except zipfile.BadZipFile:
                    # ZipExtFile stops at the declared size; a longer stream fails its CRC.
                    raise SkipFile(f"DOCX member {member.filename[:100]} does not match its "
                                   "zip directory entry (a lying size: zip bomb?)") from None
                dst.writestr(member.filename, b"".join(pieces))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError,
            zlib.error):
        raise SkipFile("corrupt or truncated DOCX (not a zip archive)") from None
    return out.getvalue()


_CREATED = re.compile(rb"<dcterms:created[^>]*>([^<]{1,100})</dcterms:created>")


def _raw_created(data: bytes) -> str | None:
    """The core properties' creation date as written (to name it when it is malformed)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            core = zf.read("docProps/core.xml")[:100_000]
    except (KeyError, zipfile.BadZipFile, OSError, ValueError):
        return None
    match = _CREATED.search(core)
    return match.group(1).decode("utf-8", "replace").strip() if match else None


_HEADING_STYLE = re.compile(r"(?:heading|titre)\s*(\d)\Z", re.I)


def _paragraph_kind(paragraph: Any) -> tuple[str, int]:
    """(kind, heading level) of a paragraph from its style (and numbering)."""
    style = paragraph.style.name if paragraph.style is not None else ""
    match = _HEADING_STYLE.match(style.strip())
    if match:
        return "heading", int(match.group(1))
    if style.strip().lower() == "title":
        return "heading", 1
    p_pr = paragraph._p.pPr
    if style.lower().startswith("list") or (p_pr is not None and p_pr.numPr is not None):
        return "list_item", 0
    if style.lower() in ("caption", "légende"):
        return "caption", 0
    return "paragraph", 0


def _blocks(document: Any) -> BlockWriter:
    """Paragraphs (by style: heading, list item, caption) and table rows ('cell | cell'),
    in body order."""
    from docx.oxml.ns import qn
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    tr, tc, p = qn("w:tr"), qn("w:tc"), qn("w:p")
    writer = BlockWriter()
    has_title = False
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            kind, level = _paragraph_kind(item)
            if kind == "heading" and item.style is not None and \
                    item.style.name.strip().lower() == "title":
                has_title = True
            elif kind == "heading" and has_title:
                level += 1  # under the document's Title
            writer.add(kind, item.text, level=level)
        elif isinstance(item, Table):
            # The cells as written (w:tc), not python-docx's row.cells: that one resolves
            # spans and vertical merges per cell, superlinear (a 59 KB table with 200 merged
            # rows took 64 s, one gridSpan=100000 cell never ended). A merged cell's text
            # is in its first cell; the ones it covers are empty.
            for row in item._element.iterchildren(tr):
                cells: list[str] = []
                for cell in row.iterchildren(tc):
                    text = "\n".join(Paragraph(para, item).text
                                     for para in cell.iterchildren(p))
                    value = " ".join(text.split())
                    if value and (not cells or cells[-1] != value):  # merged cells repeat
                        cells.append(value)
                if cells:
                    writer.add("table_row", " | ".join(cells))
    return writer


class DocxParser:
    """Text of a Word document, title and date from its core properties."""

    id = "docx"
    version = 2
    format = "docx"
    libraries = ("docx",)

    def parse(self, data: bytes, *, name: str) -> Parsed:
        docx = import_library("docx")
        check_zip(data)
        data = bounded_copy(data)
        try:
            document = docx.Document(io.BytesIO(data))
            writer = _blocks(document)
            props = document.core_properties
            title = (props.title or "").strip()
            author = (props.author or "").strip()
            created = props.created
        except Exception as exc:  # python-docx raises KeyError, ValueError, lxml errors...
            raise SkipFile(f"corrupt DOCX ({exc.__class__.__name__})") from None
        text = writer.text
        if not text.strip():
            raise SkipFile("DOCX with no text")
        if len(text) > MAX_TEXT_CHARS:
            raise SkipFile(f"more than {MAX_TEXT_CHARS:,} characters of text (the per-file limit)")
        date = created.date().isoformat() if created is not None else None
        warnings: tuple[str, ...] = ()
        if date is None:
            raw = _raw_created(data)
            if raw:  # python-docx reads an unparsable date as no date
                warnings = (f"malformed date {raw[:40]!r} in the docx core; indexed undated",)
        meta = {k: v[:1000] for k, v in (("title", title), ("author", author)) if v}
        if date:
            meta["created"] = date
        return Parsed(
            text=text,
            title=title_of(text, 0, {"title": title}),
            date=date,
            date_source="docx core" if date else None,
            meta=meta,
            warnings=warnings,
            blocks=writer.blocks,
        )
