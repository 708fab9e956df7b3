"""Build PDF, DOCX and HTML files for tests and benchmarks (no binary blobs in the repo)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/TTF"),
             Path("/usr/share/fonts/dejavu")]


def unicode_font() -> Path:
    """A TTF with French glyphs (DejaVu Sans; `apt-get install fonts-dejavu-core`)."""
    for folder in FONT_DIRS:
        if (folder / "DejaVuSans.ttf").is_file():
            return folder / "DejaVuSans.ttf"
    raise FileNotFoundError("DejaVuSans.ttf not found: apt-get install -y fonts-dejavu-core")


def make_pdf(
    path: Path,
    pages: Sequence[Sequence[str]],
    *,
    header: str | None = None,
    footer: bool = False,
    title: str | None = None,
    creation_date: str | None = None,
    password: str | None = None,
) -> Path:
    """A text PDF, one list of lines per page (each line written as is, no re-wrapping).

    `header` repeats on every page and `footer` adds "Page N": the boilerplate a parser
    should drop. `creation_date` is a PDF date string ("D:20240315120000Z").
    """
    from fpdf import FPDF

    class _Pdf(FPDF):  # type: ignore[misc]
        def header(self) -> None:
            if header:
                self.set_font("dv", size=9)
                self.cell(0, 8, header, new_x="LMARGIN", new_y="NEXT")

        def footer(self) -> None:
            if footer:
                self.set_y(-15)
                self.set_font("dv", size=9)
                self.cell(0, 8, f"Page {self.page_no()}", align="C")

    pdf = _Pdf()
    pdf.add_font("dv", fname=str(unicode_font()))
    if title:
        pdf.set_title(title)
    if creation_date:
        import datetime as dt

        pdf.set_creation_date(dt.datetime.strptime(creation_date[2:10], "%Y%m%d")
                              .replace(tzinfo=dt.UTC))
    if password:
        pdf.set_encryption(owner_password=password, user_password=password)
    for lines in pages:
        pdf.add_page()
        pdf.set_font("dv", size=11)
        for line in lines:
            pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def make_scanned_pdf(path: Path) -> Path:
    """A PDF whose page has only a drawing, no text layer (what a scan looks like)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")
    pdf.output(str(path))
    return path


def make_docx(
    path: Path,
    blocks: Sequence[tuple[str, str]],
    *,
    title: str | None = None,
    created: str | None = None,
    table: Sequence[Sequence[str]] | None = None,
) -> Path:
    """A DOCX from ("h1" | "p", text) blocks, then an optional table."""
    import datetime as dt

    import docx

    document = docx.Document()
    for kind, text in blocks:
        if kind.startswith("h"):
            document.add_heading(text, level=int(kind[1:] or 1))
        else:
            document.add_paragraph(text)
    if table:
        t = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                t.cell(r, c).text = cell
    if title:
        document.core_properties.title = title
    if created:
        document.core_properties.created = dt.datetime.fromisoformat(created)
    document.save(str(path))
    return path


def make_zip_bomb_docx(path: Path, *, uncompressed: int = 300 * 1024 * 1024) -> Path:
    """A .docx-looking zip whose document.xml inflates to `uncompressed` bytes of spaces."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("word/document.xml", "w", force_zip64=True) as fh:
            block = b" " * (1 << 20)
            for _ in range(uncompressed >> 20):
                fh.write(block)
    path.write_bytes(buf.getvalue())
    return path


ARTICLE_HTML = """<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8">
<title>{title} | Le Quotidien</title>
<meta property="article:published_time" content="{date}">
<script>var tracker = "ne pas indexer ce script";</script>
<style>body {{ color: black }}</style>
</head><body>
<div id="cookie-banner">Nous utilisons des cookies pour améliorer votre expérience. Accepter</div>
<header><nav><ul><li><a href="/">Accueil</a></li><li><a href="/monde">Monde</a></li>
<li><a href="/eco">Économie</a></li><li><a href="/sport">Sport</a></li></ul></nav></header>
<main><article>
<h1>{title}</h1>
<p class="byline">Par Jeanne Martin, publié le {date}</p>
{paragraphs}
</article>
<aside class="most-read"><h2>Les plus lus</h2><ul>
<li><a href="/a">Un chat élu maire d'un village</a></li>
<li><a href="/b">Les dix plages les plus secrètes</a></li></ul></aside>
</main>
<footer><p>© 2024 Le Quotidien — Mentions légales — Contact — Plan du site</p></footer>
</body></html>
"""


def make_html(path: Path, title: str, paragraphs: Sequence[str], *, date: str = "2024-03-15"
              ) -> Path:
    """A news page: the article plus a cookie banner, menu, "most read" box, footer, script."""
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    path.write_text(ARTICLE_HTML.format(title=title, date=date, paragraphs=body),
                    encoding="utf-8")
    return path
