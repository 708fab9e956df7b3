"""Saved web pages (.html, .htm): the article, not the page, by trafilatura.

Menus, footers, cookie banners, "most read" boxes and scripts are left out; trafilatura also
reads the title and the publication date (from the markup: meta tags, JSON-LD, <time>).
Blocks of the article are separated by a blank line, so a heading never runs into the
paragraph after it.
"""

from __future__ import annotations

import itertools
import re

from qa.documents.model import valid_date
from qa.documents.parsers import (
    Parsed,
    SkipFile,
    clean_extracted,
    looks_binary,
    missing_dependency,
)
from qa.documents.plain import title_of

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


class HtmlParser:
    """Main text of a web page (trafilatura, precision-first), title and date from it."""

    id = "html"
    version = 1
    format = "html"

    def parse(self, data: bytes, *, name: str) -> Parsed:
        try:
            import trafilatura
        except ImportError:
            raise missing_dependency("trafilatura", "web pages") from None
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
            result = trafilatura.bare_extraction(
                data, favor_precision=True, include_comments=False, include_tables=True,
                include_images=False, include_links=False, with_metadata=True,
                deduplicate=False,
                # Dates from the page's markup only (meta tags, JSON-LD, <time>): the
                # extensive search guesses, e.g. "2024-01-01" from a "© 2024" footer, and a
                # wrong date silently drops a document from date filters.
                date_extraction_params={"extensive_search": False, "original_date": True},
            )
        except Exception as exc:  # trafilatura/lxml raise many kinds on broken markup
            raise SkipFile(f"unreadable HTML ({exc.__class__.__name__})") from None
        body = getattr(result, "text", None) if result is not None else None
        # A menu or a footer alone ("Accueil", "© 2024") is what the fallback extractors find
        # on a page without an article: a few words are not an article.
        if not body or len(body.split()) < MIN_ARTICLE_WORDS:
            raise SkipFile("no article text found in the page")
        blocks = [b.strip() for b in clean_extracted(body).split("\n") if b.strip()]
        text = "\n\n".join(blocks)
        title = (getattr(result, "title", None) or "").strip()
        raw_date = (getattr(result, "date", None) or "").strip()
        author = (getattr(result, "author", None) or "").strip()
        date = valid_date(raw_date[:10]) if raw_date else None
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
        meta = {k: v[:1000] for k, v in (("title", title), ("author", author),
                                          ("date", raw_date)) if v}
        return Parsed(
            text=text,
            title=title_of(text, 0, {"title": title}),
            date=date,
            date_source="html meta" if date else None,
            meta=meta,
            warnings=warnings,
        )
