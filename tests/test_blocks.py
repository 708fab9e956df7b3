"""Blocks: every parser's structure (kind, level, heading path) with exact offsets.

HTML documentation pages (DocBook and Sphinx markup, written here as their generators write
them) are read whole: inline code in place, notes, definition lists, tables and listings,
and nothing of their navigation. Dates only from publication markup.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.documents import Document
from qa.documents.blocks import BlockWriter
from qa.documents.html import HtmlParser
from qa.documents.model import BLOCK_KINDS, Block, decode_blocks, encode_blocks, section_of
from qa.documents.parsers import Parsed
from qa.documents.pdf import PdfParser

DOCBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "x.dtd">
<html xmlns="http://www.w3.org/1999/xhtml"><head>
<title>Chapitre 1. Didacticiels GNU/Linux</title>
<meta name="generator" content="DocBook XSL Stylesheets Vsnapshot" /></head><body>
<div class="navheader"><table width="100%"><tr><th colspan="3">Chapitre 1. Didacticiels</th>
</tr><tr><td><a accesskey="p" href="pr01.fr.html">Préc.</a></td><td>Suivant</td></tr></table>
</div>
<div class="chapter"><div class="titlepage"><div><div><h1 class="title">
<a id="_gnu"></a>Chapitre 1. Didacticiels GNU/Linux</h1></div></div></div>
<div class="toc"><p><b>Table des matières</b></p><dl class="toc"><dt><span class="section">
<a href="#_console">1.1. Les bases de la console</a></span></dt></dl></div>
<p>Je pense qu’apprendre un système informatique est comme apprendre une langue.</p>
<div class="section"><div class="titlepage"><div><div><h2 class="title">
<a id="_console"></a>1.1. Les bases de la console</h2></div></div></div>
<div class="section"><div class="titlepage"><div><div><h3 class="title">
1.1.1. L’invite de l’interpréteur</h3></div></div></div>
<p>Le fichier <code class="literal">/etc/services</code> associe les noms aux ports
 (voir <code class="literal">services</code>(5)).</p>
<div class="note" style="margin-left: 0.5in;"><h3 class="title">Note</h3>
<p>Sur certains systèmes, <code class="literal">getty</code>(8) affiche l’invite.</p></div>
<div class="tip"><h3 class="title">Astuce</h3><p>Lisez <code>man bash</code> d’abord.</p>
</div>
<pre class="screen">$ ls -l /etc
2023-04-01 12:00:00 démarrage du service</pre>
<div class="variablelist"><dl class="variablelist"><dt><span class="term">
<code class="option">-l</code></span></dt><dd><p>affiche en format long</p></dd></dl></div>
<div class="table"><p class="title"><b>Tableau 1.1. Liste des paquets</b></p>
<div class="table-contents"><table class="table"><thead><tr><th>paquet</th>
<th>taille</th></tr></thead><tbody><tr><td><code>mc</code></td><td>1542</td></tr></tbody>
</table></div></div>
<div class="itemizedlist"><ul class="itemizedlist"><li class="listitem"><p>premier
 élément</p></li><li class="listitem">second élément</li></ul></div>
</div></div>
<div class="section"><div class="titlepage"><div><div><h2 class="title">1.2. Fichiers</h2>
</div></div></div><p>Tout est fichier.</p></div>
</div>
<div class="navfooter"><hr /><table><tr><td>Préc.</td><td>Niveau supérieur</td>
<td>Suivant</td></tr><tr><td>Avant-propos</td><td>Sommaire</td><td>Chapitre 2</td></tr>
</table></div></body></html>
"""

SPHINX = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8" />
<meta name="generator" content="Docutils 0.19: https://docutils.sourceforge.io/" />
<title>3. An Informal Introduction to Python &#8212; Python 3.11 documentation</title>
</head><body>
<div class="mobile-nav"><nav class="nav-content"><a href="x">Python</a></nav></div>
<div class="related" role="navigation"><ul><li><a href="index.html">index</a></li>
<li>next |</li></ul></div>
<div class="document"><div class="documentwrapper"><div class="bodywrapper">
<div class="body" role="main">
<section id="intro"><h1>3. An Informal Introduction<a class="headerlink" href="#intro">¶</a>
</h1><p>In the following examples, input and output are distinguished by prompts.</p>
<section id="numbers"><h2>3.1. Numbers<a class="headerlink" href="#numbers">¶</a></h2>
<p>The operator <code class="docutils literal notranslate"><span class="pre">//</span></code>
 does floor division.</p>
<div class="highlight-python3 notranslate"><div class="highlight"><pre><span></span>
<span class="gp">&gt;&gt;&gt; </span><span class="mi">17</span> <span class="o">//</span> 3
5
</pre></div></div>
<div class="admonition note"><p class="admonition-title">Note</p>
<p>Unlike C, <code>\\n</code> is a newline here.</p></div>
<aside class="sidebar"><p class="sidebar-title">Related Articles</p>
<p>You may also find this article useful.</p></aside>
</section></section></div></div></div>
<div class="sphinxsidebar" role="navigation"><h3>Table of Contents</h3><ul>
<li><a href="#">3.1. Numbers</a></li></ul><h4>Previous topic</h4><p>2. Using the
 Python Interpreter</p></div></div>
<div class="footer">&copy; Copyright 2001-2023, Python Software Foundation.</div>
</body></html>
"""


def _check(text: str, blocks: tuple[Block, ...]) -> None:
    prev_end = 0
    for b in blocks:
        assert b.kind in BLOCK_KINDS
        assert prev_end <= b.start < b.end <= len(text)
        piece = text[b.start : b.end]
        # A listing keeps its indentation; every block ends on its last visible character.
        assert (piece.lstrip("\n") if b.kind == "code" else piece.strip()) == piece.rstrip()
        assert piece.rstrip() == piece and piece.strip()
        prev_end = b.end


def _parse_pdf(pdf: Any, path: Path) -> Parsed:
    """Write the generated PDF, parse it, and check its blocks' offsets."""
    pdf.output(str(path))
    parsed = PdfParser().parse(path.read_bytes(), name=path.name)
    _check(parsed.text, parsed.blocks)
    return parsed


def _by_text(parsed: Parsed) -> dict[str, Block]:
    return {parsed.text[b.start : b.end]: b for b in parsed.blocks}


def test_docbook_page_whole_with_kinds_and_sections() -> None:
    parsed = HtmlParser().parse(DOCBOOK.encode("utf-8"), name="ch01.fr.html")
    _check(parsed.text, parsed.blocks)
    blocks = _by_text(parsed)
    inline = ("Le fichier /etc/services associe les noms aux ports (voir services(5)).")
    assert blocks[inline].kind == "paragraph"
    assert blocks[inline].path == ("Chapitre 1. Didacticiels GNU/Linux",
                                   "1.1. Les bases de la console",
                                   "1.1.1. L’invite de l’interpréteur")
    assert blocks["Sur certains systèmes, getty(8) affiche l’invite."].kind == "note"
    assert blocks["Lisez man bash d’abord."].kind == "note"
    assert "Note" not in blocks and "Astuce" not in blocks  # the labels say only the kind
    assert blocks["$ ls -l /etc\n2023-04-01 12:00:00 démarrage du service"].kind == "code"
    assert blocks["-l"].kind == "term" and blocks["affiche en format long"].kind == "definition"
    assert blocks["Tableau 1.1. Liste des paquets"].kind == "caption"
    assert blocks["paquet | taille"].kind == blocks["mc | 1542"].kind == "table_row"
    assert blocks["premier élément"].kind == blocks["second élément"].kind == "list_item"
    heading = blocks["1.2. Fichiers"]
    assert (heading.kind, heading.level) == ("heading", 2)
    assert blocks["Tout est fichier."].path == ("Chapitre 1. Didacticiels GNU/Linux",
                                                "1.2. Fichiers")
    for nav in ("Préc.", "Suivant", "Niveau supérieur", "Table des matières", "Sommaire"):
        assert nav not in parsed.text, nav
    # A date in a listing is not the page's date: the page has no date markup.
    assert parsed.date is None and parsed.date_source is None
    assert parsed.title == "Chapitre 1. Didacticiels GNU/Linux"


def test_sphinx_page_without_its_bars() -> None:
    parsed = HtmlParser().parse(SPHINX.encode("utf-8"), name="introduction.html")
    _check(parsed.text, parsed.blocks)
    blocks = _by_text(parsed)
    assert blocks["The operator // does floor division."].path == (
        "3. An Informal Introduction", "3.1. Numbers")
    assert blocks[">>> 17 // 3\n5"].kind == "code"
    assert blocks["Unlike C, \\n is a newline here."].kind == "note"
    assert blocks["You may also find this article useful."].kind == "note"
    for nav in ("¶", "index", "next |", "Table of Contents", "Previous topic", "Copyright",
                "Using the Python Interpreter"):
        assert nav not in parsed.text, nav


def test_dates_only_from_publication_markup() -> None:
    listing = ("<html><head><title>Journal du serveur</title></head><body><article>"
               "<h1>Journal du serveur de la mairie</h1><p>Voici ce que le serveur a écrit "
               "pendant la panne de la semaine dernière, ligne par ligne.</p>"
               "<pre>2023-04-01 12:00:00 démarrage\n2023-04-01 12:00:05 arrêt</pre>"
               "<p>Le 3 mars 2022, la panne avait déjà eu lieu une première fois.</p>"
               "</article></body></html>")
    assert HtmlParser().parse(listing.encode(), name="a.html").date is None
    json_ld = listing.replace("</head>", '<script type="application/ld+json">{"@type": '
                              '"NewsArticle", "datePublished": "2021-06-02T08:00:00Z"}'
                              "</script></head>")
    parsed = HtmlParser().parse(json_ld.encode(), name="a.html")
    assert (parsed.date, parsed.date_source) == ("2021-06-02", "html meta")
    timed = listing.replace("<article>", '<article><time datetime="2020-02-03">3 février'
                            "</time>")
    assert HtmlParser().parse(timed.encode(), name="a.html").date == "2020-02-03"


def test_blocks_survive_pickle_and_json_encoding() -> None:
    parsed = HtmlParser().parse(DOCBOOK.encode("utf-8"), name="ch01.fr.html")
    assert pickle.loads(pickle.dumps(parsed)) == parsed
    assert decode_blocks(encode_blocks(parsed.blocks)) == parsed.blocks
    doc = Document("d", parsed.text, "0", blocks=encode_blocks(parsed.blocks))  # type: ignore[arg-type]
    assert doc.blocks == parsed.blocks
    at = parsed.text.index("/etc/services")
    assert section_of(doc, at) == ("Chapitre 1. Didacticiels GNU/Linux › 1.1. Les bases de la "
                                   "console › 1.1.1. L’invite de l’interpréteur")
    assert section_of(Document("e", "x", "0"), 0) is None


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40)
_NODE = st.tuples(st.sampled_from(["p", "h2", "h3", "li", "pre", "dt", "dd", "note", "tr"]),
                  _TEXT, _TEXT)


def _html(nodes: list[tuple[str, str, str]]) -> str:
    from html import escape

    out = []
    for tag, a, b in nodes:
        a, b = escape(a), escape(b)
        if tag == "li":
            out.append(f"<ul><li>{a}<code>{b}</code></li></ul>")
        elif tag in ("dt", "dd"):
            out.append(f"<dl><dt>{a}</dt><dd>{b}</dd></dl>")
        elif tag == "note":
            out.append(f'<div class="note"><h3>Note</h3><p>{a} <tt>{b}</tt></p></div>')
        elif tag == "tr":
            out.append(f"<table><tr><td>{a}</td><td>{b}</td></tr></table>")
        else:
            out.append(f"<{tag}>{a}<br/>{b}</{tag}>")
    return ('<html><head><meta name="generator" content="DocBook"></head><body>'
            '<div class="chapter">' + "".join(out) + "</div></body></html>")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_NODE, min_size=1, max_size=12))
def test_html_block_offsets_property(nodes: list[tuple[str, str, str]]) -> None:
    from qa.documents.parsers import SkipFile

    try:
        parsed = HtmlParser().parse(_html(nodes).encode("utf-8"), name="p.html")
    except SkipFile:
        return
    _check(parsed.text, parsed.blocks)
    covered = "".join(parsed.text[b.start : b.end] for b in parsed.blocks)
    assert "".join(parsed.text.split()) == "".join(covered.split())  # no text outside blocks


def test_writer_paths_and_extend() -> None:
    w = BlockWriter()
    w.add("heading", "Titre", level=1)
    w.add("heading", "Section A", level=2)
    w.add("paragraph", "Un paragraphe coupé")
    w.extend("par une page.")
    w.add("heading", "Section B", level=2)
    w.add("paragraph", "Suite.")
    _check(w.text, w.blocks)
    assert [w.text[b.start : b.end] for b in w.blocks][2] == "Un paragraphe coupé par une page."
    assert w.blocks[-1].path == ("Titre", "Section B")


def test_real_docbook_page_if_present() -> None:
    page = Path.home() / ".cache/qa/corpora/debian-reference-fr/ch01.fr.html"
    if not page.exists():
        return
    parsed = HtmlParser().parse(page.read_bytes(), name=page.name)
    _check(parsed.text, parsed.blocks)
    assert parsed.date is None
    assert sum(1 for b in parsed.blocks if b.kind == "note") > 20


def test_pdf_headings_from_the_outline_and_paragraphs_across_pages(tmp_path: Path) -> None:
    """Bookmarked titles become headings with their path; a paragraph cut by a page end is
    one block (the pages joined by one line break there); a "Note" label starts a note."""
    from fpdf import FPDF
    from makefiles import unicode_font


    pdf = FPDF()
    pdf.add_font("dv", fname=str(unicode_font()))
    pdf.add_page()
    pdf.set_font("dv", size=11)
    pdf.start_section("Les barrages", level=0)
    pdf.cell(0, 6, "1 Les barrages", new_x="LMARGIN", new_y="NEXT")
    pdf.start_section("Production", level=1)
    pdf.cell(0, 6, "1.1 Production", new_x="LMARGIN", new_y="NEXT")
    for line in ["Le barrage de Grand-Maison a produit 1 420 mégawatts en février, un",
                 "record pour la centrale, selon les ingénieurs qui suivent la production.",
                 "Note", "Les chiffres sont provisoires.",
                 "La fonte des neiges explique une partie de ce résultat exceptionnel et"]:
        pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.add_page()
    pdf.cell(0, 6, "les pluies de la fin du mois ont fait le reste.", new_x="LMARGIN",
             new_y="NEXT")
    parsed = _parse_pdf(pdf, tmp_path / "b.pdf")
    blocks = [(b.kind, parsed.text[b.start : b.end], b.section) for b in parsed.blocks]
    assert blocks[0] == ("heading", "1 Les barrages", "Les barrages")
    assert blocks[1] == ("heading", "1.1 Production", "Les barrages › Production")
    assert blocks[2][0] == "paragraph" and blocks[2][1].endswith("production.")
    assert blocks[3] == ("note", "Note\nLes chiffres sont provisoires.",
                         "Les barrages › Production")
    assert blocks[4][1] == ("La fonte des neiges explique une partie de ce résultat "
                            "exceptionnel et\nles pluies de la fin du mois ont fait le reste.")
    assert len(parsed.pages) == 2
    assert parsed.text[parsed.pages[1][0] :].startswith("les pluies")


def test_docx_blocks_from_styles(tmp_path: Path) -> None:
    from makefiles import make_docx

    from qa.documents.docx import DocxParser

    path = make_docx(tmp_path / "d.docx", [("h1", "Rapport annuel"), ("p", "Introduction."),
                                           ("h2", "Budget"), ("p", "Le budget a augmenté.")],
                     table=[["poste", "montant"], ["énergie", "12"]])
    parsed = DocxParser().parse(path.read_bytes(), name="d.docx")
    _check(parsed.text, parsed.blocks)
    blocks = [(b.kind, parsed.text[b.start : b.end], b.section) for b in parsed.blocks]
    assert blocks == [
        ("heading", "Rapport annuel", "Rapport annuel"),
        ("paragraph", "Introduction.", "Rapport annuel"),
        ("heading", "Budget", "Rapport annuel › Budget"),
        ("paragraph", "Le budget a augmenté.", "Rapport annuel › Budget"),
        ("table_row", "poste | montant", "Rapport annuel › Budget"),
        ("table_row", "énergie | 12", "Rapport annuel › Budget"),
    ]


def test_article_lists_of_links_are_left_out() -> None:
    """trafilatura's article tree: a closing "More stories" list whose every short item
    links elsewhere is not the article; nor is the heading left with nothing under it."""
    from lxml import etree

    from qa.documents.html import blocks_from_trafilatura

    items = "".join(f'<item>Story <ref target="/s{i}">number {i}</ref></item>' for i in range(4))
    body = etree.fromstring(
        "<body><head rend='h2'>La crue</head><p>La Seine a monté de deux mètres.</p>"
        "<list><item>Une liste de l’article, sans lien.</item><item>Deux.</item>"
        f"<item>Trois.</item></list><head rend='h2'>More stories</head><list>{items}</list>"
        "</body>")
    writer = blocks_from_trafilatura(body)
    assert writer.text == ("La crue\n\nLa Seine a monté de deux mètres.\n\nUne liste de "
                           "l’article, sans lien.\n\nDeux.\n\nTrois.")
    assert [b.kind for b in writer.blocks] == ["heading", "paragraph"] + ["list_item"] * 3


def test_pdf_headings_from_font_sizes_without_an_outline(tmp_path: Path) -> None:
    from fpdf import FPDF
    from makefiles import unicode_font


    pdf = FPDF()
    pdf.add_font("dv", fname=str(unicode_font()))
    pdf.add_page()
    body = [f"Ligne {i} du rapport sur la production d’électricité de la région, sans fin"
            for i in range(30)]
    for title, size in (("Rapport annuel", 20), ("Production", 15)):
        pdf.set_font("dv", size=size)
        pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("dv", size=10)
        for line in body:
            pdf.cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    parsed = _parse_pdf(pdf, tmp_path / "f.pdf")
    headings = [(b.level, b.section) for b in parsed.blocks if b.kind == "heading"]
    assert headings == [(1, "Rapport annuel"), (2, "Rapport annuel › Production")]


def test_mdbook_page_is_documentation() -> None:
    page = ("<!DOCTYPE HTML><html><head><!-- Book generated using mdBook -->"
            "<title>Lints - The rustdoc book</title></head><body>"
            "<nav id='sidebar' class='sidebar'><ol class='chapter'><li>What is rustdoc?</li>"
            "<li>Lints</li></ol></nav><div id='page-wrapper'><div class='page'>"
            "<div id='menu-bar' class='menu-bar'><h1 class='menu-title'>The rustdoc book</h1>"
            "</div><main><h1 id='lints'>Lints</h1><p>rustdoc provides lints to help you "
            "write and test your documentation, such as <code>missing_docs</code>.</p>"
            "<h2>broken_intra_doc_links</h2><p>This lint warns when a link is broken.</p>"
            "</main><nav class='nav-wrapper'><a href='x'>Previous chapter</a></nav>"
            "</div></div></body></html>")
    parsed = HtmlParser().parse(page.encode(), name="lints.html")
    assert parsed.text == ("Lints\n\nrustdoc provides lints to help you write and test your "
                           "documentation, such as missing_docs.\n\nbroken_intra_doc_links\n\n"
                           "This lint warns when a link is broken.")
    assert parsed.blocks[-1].section == "Lints › broken_intra_doc_links"


def test_pdf_listing_in_a_monospace_font_is_code(tmp_path: Path) -> None:
    from fpdf import FPDF
    from makefiles import unicode_font


    pdf = FPDF()
    pdf.add_font("dv", fname=str(unicode_font()))
    pdf.add_page()
    pdf.set_font("dv", size=11)
    pdf.cell(0, 6, "Pour lister les fichiers, tapez :", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Courier", size=10)
    for line in ("$ ls -l /etc", "$ ls -a ~"):
        pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("dv", size=11)
    pdf.cell(0, 6, "La commande affiche alors les fichiers cachés.", new_x="LMARGIN",
             new_y="NEXT")
    parsed = _parse_pdf(pdf, tmp_path / "c.pdf")
    assert [(b.kind, parsed.text[b.start : b.end]) for b in parsed.blocks] == [
        ("paragraph", "Pour lister les fichiers, tapez :"),
        ("code", "$ ls -l /etc\n$ ls -a ~"),
        ("paragraph", "La commande affiche alors les fichiers cachés."),
    ]
