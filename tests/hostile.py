"""The hostile files of issue 19, generated (no binary blobs in the repo): each one small on
disk and costly for a parser run without bounds. Used by tests and benchmarks/hostile.py."""

from __future__ import annotations

import io
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _docx_with_body(path: Path, body_xml: str) -> Path:
    """A valid DOCX (made by python-docx) whose body is replaced by body_xml."""
    from makefiles import make_docx

    base = make_docx(path.with_suffix(".base.docx"), [("p", "Une page de garde ordinaire.")])
    out = io.BytesIO()
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "word/document.xml":
                text = data.decode("utf-8")
                text = re.sub(r"<w:body>.*</w:body>", f"<w:body>{body_xml}</w:body>", text,
                              flags=re.S)
                data = text.encode("utf-8")
            dst.writestr(item.filename, data)
    base.unlink()
    path.write_bytes(out.getvalue())
    return path


def _cell(text: str, props: str = "") -> str:
    return f"<w:tc><w:tcPr>{props}</w:tcPr><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:tc>"


def merged_rows_docx(path: Path, *, rows: int = 200, cols: int = 30) -> Path:
    """A table whose cells are vertically merged over `rows` rows: python-docx's row.cells
    walks the merge for every cell (superlinear: 200 rows took 64 s)."""
    grid = "".join('<w:gridCol w:w="300"/>' for _ in range(cols))
    first = "".join(_cell(f"c{c}", '<w:vMerge w:val="restart"/>') for c in range(cols))
    rest = "".join(_cell("", "<w:vMerge/>") for _ in range(cols))
    table = (f"<w:tbl><w:tblGrid>{grid}</w:tblGrid><w:tr>{first}</w:tr>"
             + f"<w:tr>{rest}</w:tr>" * (rows - 1) + "</w:tbl>")
    para = "<w:p><w:r><w:t>Un tableau fusionné suit ce paragraphe d'introduction.</w:t></w:r></w:p>"
    return _docx_with_body(path, para + table)


def wide_span_docx(path: Path, *, span: int = 100_000) -> Path:
    """One row whose cell spans `span` grid columns: row.cells never ends."""
    wide = _cell("large", f'<w:gridSpan w:val="{span}"/>')
    table = (f'<w:tbl><w:tblGrid><w:gridCol w:w="300"/></w:tblGrid><w:tr>{wide}'
             f'{_cell("voisine")}</w:tr></w:tbl>')
    para = "<w:p><w:r><w:t>Une cellule très large suit ce paragraphe.</w:t></w:r></w:p>"
    return _docx_with_body(path, para + table)


def lying_zip_docx(path: Path, *, inflated: int = 1 << 30, declared: int = 20_000) -> Path:
    """A DOCX whose word/document.xml declares `declared` bytes in the zip directory and
    inflates to `inflated` (the declared-size check passes; ZipExtFile.read() inflates it
    all before truncating)."""
    head = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document {_W}>'
            "<w:body><w:p><w:r><w:t>").encode()
    base = io.BytesIO()
    from makefiles import make_docx

    tmp = make_docx(path.with_suffix(".base.docx"), [("p", "Un document menteur.")])
    with zipfile.ZipFile(tmp) as src, zipfile.ZipFile(base, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if item.filename == "word/document.xml":
                with dst.open("word/document.xml", "w") as fh:
                    fh.write(head)
                    block = b"a" * (1 << 20)
                    for _ in range((inflated - len(head)) >> 20):
                        fh.write(block)
            else:
                dst.writestr(item.filename, src.read(item.filename))
    tmp.unlink()
    data = bytearray(base.getvalue())
    name = b"word/document.xml"
    # Patch the uncompressed size in the local header (offset 22) and the central one (24).
    for sig, field in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = 0
        while True:
            at = data.find(sig, at)
            if at < 0:
                break
            name_at = at + (30 if sig == b"PK\x03\x04" else 46)
            if data[name_at : name_at + len(name)] == name:
                struct.pack_into("<I", data, at + field, declared)
            at += 4
    path.write_bytes(bytes(data))
    return path


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF from its numbered objects' bodies (1-based), with a correct xref table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def deflate_bomb_pdf(path: Path, *, inflated: int = 1 << 30) -> Path:
    """One page whose content stream is ~1 MB of deflate inflating to `inflated` bytes."""
    comp = zlib.compressobj(9)
    parts = [comp.compress(b"BT /F1 12 Tf 72 720 Td (bombe) Tj ET\n")]
    block = b" " * (1 << 20)
    for _ in range(inflated >> 20):
        parts.append(comp.compress(block))
    parts.append(comp.flush())
    stream = b"".join(parts)
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream
        + b"\nendstream",
        font,
    ]
    path.write_bytes(_pdf(objects))
    return path


def page_tree_pdf(path: Path, *, levels: int = 19) -> Path:
    """A page tree of 2**levels pages that all share one leaf (1.5 KB on disk)."""
    # Objects: 1 catalog, 2..levels+1 the Pages nodes (each [next next]), then the leaf.
    leaf = levels + 2
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    for i in range(levels):
        kid = i + 3 if i + 1 < levels else leaf
        objects.append(b"<< /Type /Pages /Kids [%d 0 R %d 0 R] /Count %d >>"
                       % (kid, kid, 2 ** (levels - i)))
    objects.append(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] >>" % (levels + 1))
    path.write_bytes(_pdf(objects))
    return path


def many_paragraphs_html(path: Path, *, paragraphs: int = 100_000) -> Path:
    """A page of many short paragraphs (trafilatura's time grows with their square)."""
    body = "".join(f"<p>mot {i}</p>" for i in range(paragraphs))
    path.write_text(f"<html><head><title>Beaucoup</title></head><body><article>{body}"
                    "</article></body></html>", encoding="utf-8")
    return path


def random_html(path: Path, *, size: int = 200_000, seed: int = 19) -> Path:
    """Random bytes named .html, with no NUL in the first 4 KB."""
    import random

    data = bytearray(random.Random(seed).randbytes(size))
    data[:4096] = data[:4096].replace(b"\x00", b"\x01")
    path.write_bytes(bytes(data))
    return path


HOSTILE: dict[str, Callable[[Path], Path]] = {
    "merged-rows.docx": merged_rows_docx,
    "gridspan.docx": wide_span_docx,
    "lying-zip.docx": lying_zip_docx,
    "deflate-bomb.pdf": deflate_bomb_pdf,
    "page-tree.pdf": page_tree_pdf,
    "paragraphs.html": many_paragraphs_html,
    "random.html": random_html,
}


def write_hostile(folder: Path) -> list[str]:
    """Every hostile file of issue 19 in folder; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, make in HOSTILE.items():
        make(folder / name)
    return sorted(HOSTILE)


if __name__ == "__main__":  # python tests/hostile.py FOLDER
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    for n in write_hostile(Path(sys.argv[1])):
        print(n)
