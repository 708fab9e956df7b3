"""Saved web pages (.html, .htm): the page's content as blocks, without its navigation.

Documentation pages (DocBook, Sphinx and other generators, found by their markup) are read
whole over lxml: the main content element (<main>, role=main, Sphinx's div.body, DocBook's
div.chapter/sect1...) minus navigation (nav, headers and footers, DocBook's navheader/
navfooter/toc, Sphinx's sidebar/related bars, ¶ links), every paragraph with its inline
code in place, notes/tips/warnings (kind note), definition lists (term/definition), table
rows and listings. Other pages (news articles) go through trafilatura, which finds the
article among menus, "most read" boxes and banners. Measured on real pages by
benchmarks/extraction.py.

Dates come only from publication markup (meta tags, JSON-LD, <time>), never from the text:
a date in a log listing is not the page's date.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from qa.documents.blocks import BlockWriter, collapse_inline
from qa.documents.parsers import (
    Parsed,
    SkipFile,
    clean_extracted,
    import_library,
    looks_binary,
)
from qa.documents.plain import title_of
from qa.temporal import valid_date

MIN_ARTICLE_WORDS = 5
# Publication-date meta tags, read only to name a malformed date that trafilatura dropped.
_DATE_META = re.compile(
    rb"""<meta\s[^>]*(?:property|name|itemprop)\s*=\s*["']?(?:article:published_time|"""
    rb"""date|pubdate|publishdate|datePublished|dc\.date)["']?[^>]*?content\s*=\s*"""
    rb"""["']([^"'>]{1,100})["']""", re.I)
# trafilatura's time grows faster than the number of blocks (10k short paragraphs: 1 s, 100k:
# 23 s); the largest page of the real corpora holds 3k. Past this many, the page is skipped
# before extraction (the parsing cage's CPU limit catches what is slow otherwise).
MAX_HTML_BLOCKS = 50_000
_BLOCK_TAG = re.compile(rb"<(?:p|div|li|tr|td|dt|dd|h[1-6]|br|pre|blockquote)\b", re.I)
_DAY = re.compile(r"\A\d{4}-\d{2}-\d{2}")
# lxml builds a tree several times the page's size; trafilatura itself gives up (silently)
# past 20 MB. A saved news page is well under 5 MB.
MAX_HTML_BYTES = 20_000_000

# Meta tags that state when a page was published, most specific first.
DATE_METAS = ("article:published_time", "datepublished", "pubdate", "publishdate",
              "publish-date", "og:published_time", "dc.date.issued", "dc.date",
              "dcterms.date", "dcterms.created", "sailthru.date", "parsely-pub-date", "date")
_ISO_DATE = re.compile(r"\A\s*(\d{4})-(\d{2})(?:-(\d{2}))?")
_GENERATORS = re.compile(r"docbook|sphinx|docutils|mkdocs|doxygen|javadoc|rustdoc|pandoc|"
                         r"asciidoc|texinfo|texi2html|makeinfo|jekyll|hugo|gitbook|"
                         r"docusaurus|mdbook|antora|readthedocs", re.I)
# Containers of a documentation page's content, best first.
_MAIN_XPATHS = (
    "//main", "//*[@role='main']",
    "//div[contains(concat(' ', normalize-space(@class), ' '), ' body ')]",
    "//div[contains(concat(' ', normalize-space(@class), ' '), ' document ')]",
    *(f"//div[contains(concat(' ', normalize-space(@class), ' '), ' {c} ')]"
      for c in ("book", "set", "part", "chapter", "appendix", "preface", "article",
                "reference", "refentry", "glossary", "bibliography", "index", "colophon",
                "sect1", "section")),
    "//article",
)
# Never content: dropped with everything inside.
_DROP_TAGS = ("script", "style", "noscript", "template", "svg", "form", "button", "input",
              "select", "textarea", "iframe", "object", "embed", "canvas", "nav", "footer",
              "link", "meta")
_NAV_CLASSES = frozenset("""navheader navfooter toc sphinxsidebar sphinxsidebarwrapper related
footer headerlink breadcrumb breadcrumbs mobile-nav nav-content navbar menu menu-wrapper
skip-link skiplink list-of-tables list-of-figures list-of-examples list-of-equations
version_switcher_placeholder language_switcher_placeholder inline-search
""".split())  # noqa: SIM905
_NAV_ROLES = frozenset({"navigation", "banner", "contentinfo", "search", "menu", "menubar"})
_NOTE_CLASSES = frozenset("""note tip warning caution important admonition attention hint
danger error seealso sidebar callout""".split())  # noqa: SIM905
_INLINE = frozenset("""a abbr acronym b bdi bdo big cite code data del dfn em font i img ins
kbd label mark nobr q rp rt ruby s samp small span strike strong sub sup time tt u var wbr
br""".split())  # noqa: SIM905
_BLOCK_TAGS = frozenset("""address article aside blockquote caption center dd details dialog
div dl dt fieldset figcaption figure h1 h2 h3 h4 h5 h6 header hgroup hr li main ol p pre
section summary table tbody td tfoot th thead tr ul""".split())  # noqa: SIM905
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
# The label of an admonition ("Note", "Astuce", "Warning") says only its kind.
MAX_LABEL_WORDS = 3


_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]{1,40})""", re.I)
_XML_DECLARATION = re.compile(r"\A\ufeff?\s*<\?xml[^>]*\?>")


def decode_html(data: bytes) -> str:
    """The page as text: UTF-8 when it is valid UTF-8, else its declared charset, else
    cp1252 (what browsers assume); without an XML declaration, which lxml refuses in text."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        declared = _CHARSET.search(data[:4096])
        encoding = declared.group(1).decode("ascii") if declared else "cp1252"
        try:
            text = data.decode(encoding, "replace")
        except LookupError:
            text = data.decode("cp1252", "replace")
    return _XML_DECLARATION.sub("", text, count=1)


_BR = "\ue000"  # a <br>, through whitespace collapsing (a private-use character)
_BR_RUN = re.compile(f" ?{_BR}[ {_BR}]*")
_WHITESPACE = re.compile(r"\s+")


def _prose(text: str) -> str:
    """Markup text as it reads: whitespace collapsed, a <br> kept as a line break."""
    text = _WHITESPACE.sub(" ", text.replace(_BR, f" {_BR} ")).strip(f" {_BR}")
    return _BR_RUN.sub("\n", text)


def _classes(el: Any) -> set[str]:
    return set((el.get("class") or "").split())


def _is_navigation(el: Any) -> bool:
    if el.tag in _DROP_TAGS:
        return True
    if el.get("role") in _NAV_ROLES or el.get("aria-hidden") == "true":
        return True
    classes = _classes(el)
    if classes & _NAV_CLASSES:
        return True
    # An aside that navigates (Sphinx's and DocBook's "sidebar" asides are content).
    if el.tag == "aside" and classes & {"nav", "related", "toc", "menu"}:
        return True
    # A header without a heading (a site banner); a header holding the page's h1 is content.
    return el.tag == "header" and not any(d.tag in _HEADINGS for d in el.iterdescendants())


def is_documentation(root: Any) -> bool:
    """Pages made by a documentation generator (its meta tag, or DocBook/Sphinx markup)."""
    for meta in root.iter("meta"):
        if (meta.get("name") or "").lower() == "generator" and \
                _GENERATORS.search(meta.get("content") or ""):
            return True
    # DocBook, Sphinx, mdBook and Doxygen by their markup.
    return bool(root.xpath("//div[contains(concat(' ', @class, ' '), ' titlepage ')]"
                           "|//div[contains(concat(' ', @class, ' '), ' sphinxsidebar ')]"
                           "|//div[contains(concat(' ', @class, ' '), ' documentwrapper ')]"
                           "|//div[@class='navheader']|//div[@id='doc-content']"
                           "|//*[starts-with(@id, 'mdbook-')]"
                           "|//comment()[contains(., 'Book generated using mdBook')]"))


def main_content(root: Any) -> Any:
    """The element holding the page's content (its <body> when nothing says better)."""
    for xpath in _MAIN_XPATHS:
        found = root.xpath(xpath)
        if found:
            return found[0]
    body = root.find("body")
    return body if body is not None else root


class _Walker:
    """Turns a content tree into blocks; `kind` is the kind prose takes where it sits."""

    def __init__(self, writer: BlockWriter) -> None:
        self.w = writer

    def emit(self, parts: list[str], kind: str) -> None:
        text = _prose("".join(parts))
        if text:
            self.w.add(kind, text)

    def container(self, el: Any, kind: str) -> None:
        parts = [el.text or ""]
        for child in el:
            tag = child.tag
            if not isinstance(tag, str):  # a comment or processing instruction
                parts.append(child.tail or "")
                continue
            if tag in _INLINE and not any(isinstance(d.tag, str) and d.tag in _BLOCK_TAGS
                                          for d in child.iterdescendants()):
                parts.append(child.text_content())
            else:
                self.emit(parts, kind)
                parts = []
                self.block(child, kind)
            parts.append(child.tail or "")
        self.emit(parts, kind)

    def block(self, el: Any, kind: str) -> None:
        tag = el.tag
        classes = _classes(el)
        if tag in _HEADINGS or "admonition-title" in classes:
            text = _prose(el.text_content())
            if kind == "note":  # an admonition's title: its label says only its kind
                if len(text.split()) > MAX_LABEL_WORDS:
                    self.w.add("note", text)
            elif tag in _HEADINGS:
                self.w.add("heading", text, level=_HEADINGS[tag])
            else:
                self.w.add(kind, text)
        elif tag == "pre":
            self.w.add("code", el.text_content().replace(_BR, "\n"))
        elif tag == "table":
            self.table(el, kind)
        elif tag in ("caption", "figcaption") or (tag == "p" and "title" in classes):
            self.w.add("caption", _prose(el.text_content()))
        elif tag == "li":
            self.container(el, "note" if kind == "note" else "list_item")
        elif tag == "dt":
            self.container(el, "note" if kind == "note" else "term")
        elif tag == "dd":
            self.container(el, "note" if kind == "note" else "definition")
        elif classes & _NOTE_CLASSES or tag == "aside":
            self.container(el, "note")
        else:
            self.container(el, kind)

    def table(self, table: Any, kind: str) -> None:
        rows = [tr for tr in table.iter("tr")
                if next(tr.iterancestors("table"), None) is table]
        layout = any(d.tag in ("p", "div", "ul", "ol", "dl", "pre", "table", "h1", "h2", "h3")
                     for tr in rows for cell in tr for d in cell.iterdescendants())
        for caption in table.iterchildren("caption"):
            self.w.add("caption", _prose(caption.text_content()))
        for tr in rows:
            cells = [cell for cell in tr if cell.tag in ("td", "th")]
            if layout:  # a table used for layout: its cells are containers
                for cell in cells:
                    self.container(cell, kind)
                continue
            values: list[str] = []
            for cell in cells:
                value = " ".join(cell.text_content().split())
                if value and (not values or values[-1] != value):
                    values.append(value)
            if values:
                self.w.add("note" if kind == "note" else "table_row", " | ".join(values))


def extract_documentation(root: Any) -> BlockWriter:
    """Blocks of a documentation page's main content, navigation left out."""
    content = main_content(root)
    for el in list(content.iter()):
        if isinstance(el.tag, str) and el.getparent() is not None and _is_navigation(el):
            el.drop_tree()
    for br in content.iter("br"):
        br.tail = _BR + (br.tail or "")
    writer = BlockWriter()
    _Walker(writer).block(content, "paragraph")
    return writer


def _text_of(el: Any) -> str:
    return "".join(el.itertext())


# A list of three or more short items that each link elsewhere is a list of other pages
# ("More Must-Reads", "Related stories"), not the article's.
LINK_LIST_ITEMS = 3
LINK_ITEM_WORDS = 20


def _is_link_list(el: Any) -> bool:
    items = [item for item in el if item.tag == "item"]
    return len(items) >= LINK_LIST_ITEMS and all(
        item.find(".//ref") is not None and len("".join(item.itertext()).split())
        <= LINK_ITEM_WORDS for item in items)


def blocks_from_trafilatura(body: Any) -> BlockWriter:
    """Blocks of trafilatura's article tree (p, head, list/item, table/row, code, quote),
    without lists of links; a heading left with nothing under it at the end is dropped."""
    entries: list[tuple[str, str, int]] = []
    for lb in body.iter("lb"):
        lb.tail = "\n" + (lb.tail or "")

    def walk(el: Any) -> None:
        for child in el:
            tag = child.tag
            if tag == "head":
                rend = child.get("rend") or "h2"
                level = int(rend[1]) if re.fullmatch(r"h[1-6]", rend) else 2
                entries.append(("heading", collapse_inline(_text_of(child)), level))
            elif tag == "item":
                entries.append(("list_item", collapse_inline(_text_of(child)), 0))
            elif tag == "row":
                cells = [collapse_inline(_text_of(c)) for c in child if c.tag == "cell"]
                entries.append(("table_row", " | ".join(c for c in cells if c), 0))
            elif tag == "code":
                entries.append(("code", _text_of(child), 0))
            elif tag == "list" and _is_link_list(child):
                continue
            elif tag in ("list", "table", "div", "body"):
                walk(child)
            elif tag == "graphic":
                continue
            else:  # p, quote and anything else: prose
                entries.append(("paragraph", collapse_inline(_text_of(child)), 0))

    walk(body)
    while entries and (entries[-1][0] == "heading" or not entries[-1][1].strip()):
        entries.pop()
    writer = BlockWriter()
    for kind, text, level in entries:
        writer.add(kind, text, level=level)
    return writer


def publication_date(root: Any) -> str | None:
    """The date the page's markup states (meta tags, JSON-LD, <time>), as written."""
    metas: dict[str, str] = {}
    for meta in root.iter("meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
        if key in DATE_METAS and meta.get("content") and key not in metas:
            metas[key] = meta.get("content").strip()
    for key in DATE_METAS:
        if key in metas:
            return metas[key]
    for script in root.xpath("//script[@type='application/ld+json']"):
        found = _json_ld_date(script.text or "")
        if found:
            return found
    for time in root.xpath("//time[@pubdate or @itemprop='datePublished']"
                           "|//article//time[@datetime]|//header//time[@datetime]"):
        value = time.get("datetime") or time.text_content()
        if value and value.strip():
            return str(value).strip()
    return None


def _json_ld_date(source: str) -> str | None:
    try:
        data = json.loads(source)
    except ValueError:
        return None
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            for key in ("datePublished", "dateCreated"):
                if isinstance(item.get(key), str):
                    return str(item[key])
            stack.extend(v for v in item.values() if isinstance(v, dict | list))
    return None


def _iso_date(raw: str) -> str | None:
    """'2021-06-02T08:00Z' or a written date from markup ('Tue, 3 Jan 2021') as ISO."""
    match = _ISO_DATE.match(raw)
    if match:
        return valid_date("-".join(p for p in match.groups() if p))
    # Digits only ("12/03/2021") is ambiguous (day or month first): no date rather than a
    # wrong one.
    if not re.search(r"\d{4}", raw) or len(raw) > 60 or not re.search(r"[A-Za-z]", raw):
        return None
    try:  # python-dateutil comes with trafilatura (through htmldate)
        from dateutil import parser as date_parser

        return str(date_parser.parse(raw, fuzzy=False).date().isoformat())
    except (ImportError, ValueError, OverflowError):
        return None


class HtmlParser:
    """Content of a web page as blocks; title and date from its markup."""

    id = "html"
    version = 2
    format = "html"
    libraries = ("lxml.html", "trafilatura")  # trafilatura for article pages only

    def parse(self, data: bytes, *, name: str) -> Parsed:
        lxml_html = import_library("lxml.html")
        if not data.strip():
            raise SkipFile("empty file")
        if len(data) > MAX_HTML_BYTES:
            raise SkipFile(f"HTML larger than the {MAX_HTML_BYTES // 1_000_000} MB limit "
                           "for web pages")
        if b"\x00" in data[:4096] or looks_binary(data):
            raise SkipFile("binary file, not HTML")
        n_blocks = sum(1 for _ in itertools.islice(_BLOCK_TAG.finditer(data),
                                                   MAX_HTML_BLOCKS + 1))
        if n_blocks > MAX_HTML_BLOCKS:
            raise SkipFile(f"HTML with more than {MAX_HTML_BLOCKS:,} paragraphs and blocks "
                           "(the limit for web pages)")
        try:
            root = lxml_html.document_fromstring(decode_html(data))
        except Exception as exc:  # lxml raises several kinds on broken markup
            raise SkipFile(f"unreadable HTML ({exc.__class__.__name__})") from None
        raw_date = publication_date(root) or ""
        title = collapse_inline(root.findtext(".//title") or "")
        author = ""
        for meta in root.iter("meta"):
            if (meta.get("name") or "").lower() == "author" and meta.get("content"):
                author = collapse_inline(meta.get("content"))
                break
        if is_documentation(root):
            writer = extract_documentation(root)
        else:
            writer, found_title, found_author = _article(data)
            title = found_title or title  # trafilatura trims the site's name off
            author = author or found_author
        text = writer.text
        # A menu or a footer alone ("Accueil", "© 2024") is what is left of a page without
        # content: a few words are not an article.
        if len(text.split()) < MIN_ARTICLE_WORDS:
            raise SkipFile("no article text found in the page")
        date = _iso_date(raw_date) if raw_date else None
        warnings: tuple[str, ...] = ()
        declared = _DATE_META.search(data[:200_000])
        value = declared.group(1).decode("utf-8", "replace").strip() if declared else ""
        if date is not None and _DAY.match(value) and valid_date(value[:10]) is None:
            # trafilatura turns an impossible day ("2024-02-30") into another date: a wrong
            # date silently moves the document in date filters, so none is kept.
            date = None
            warnings = (f"malformed date {value[:40]!r} in the html meta; indexed undated",)
        elif raw_date and date is None:
            warnings = (f"malformed date {raw_date[:40]!r} in the html meta; indexed undated",)
        elif not raw_date and declared:
            warnings = (f"malformed date {value[:40]!r} in the html meta; indexed undated",)
        if not title:
            title = next((text[b.start : b.end] for b in writer.blocks if b.kind == "heading"),
                         "")
        meta = {k: v[:1000] for k, v in (("title", title), ("author", author),
                                          ("date", raw_date)) if v}
        return Parsed(
            text=text,
            title=title_of(text, 0, {"title": title}),
            date=date,
            date_source="html meta" if date else None,
            meta=meta,
            warnings=warnings,
            blocks=writer.blocks,
        )


def _article(data: bytes) -> tuple[BlockWriter, str, str]:
    """(blocks, title, author) of an article page, by trafilatura."""
    trafilatura = import_library("trafilatura")
    try:
        result = trafilatura.bare_extraction(
            data, favor_precision=True, include_comments=False, include_tables=True,
            include_images=False, include_links=True, with_metadata=True,
            deduplicate=False,
            date_extraction_params={"extensive_search": False, "original_date": True},
        )
    except Exception as exc:  # trafilatura/lxml raise many kinds on broken markup
        raise SkipFile(f"unreadable HTML ({exc.__class__.__name__})") from None
    body = getattr(result, "body", None) if result is not None else None
    if body is None:
        raise SkipFile("no article text found in the page")
    writer = blocks_from_trafilatura(body)
    plain = str(getattr(result, "text", None) or "")
    if not writer.blocks and plain:
        for line in clean_extracted(plain).split("\n"):
            writer.add("paragraph", line)
    title = (getattr(result, "title", None) or "").strip()
    author = (getattr(result, "author", None) or "").strip()
    return writer, title, author
