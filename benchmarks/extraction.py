"""How much of a real page reaches the index: paragraphs intact, navigation kept, pages/s.

    python benchmarks/extraction.py [--before 377ddb7] [--fetch-news] [--out NAME]

Per kind of page (DocBook HTML fr/en, Sphinx HTML, news articles, the DocBook PDF edition):

- **intact**: the share of the source's paragraphs found whole in the extracted text, both
  with whitespace collapsed. The source paragraphs are the visible text of the page's
  <p>/<li>/<dd> elements (inline text only: a nested list or listing is its own paragraph),
  outside navigation (nav, header, footer, DocBook navheader/navfooter/toc, Sphinx
  sphinxsidebar/related/footer); notes/tips/warnings are counted apart ("notes"). For the
  Sphinx pages the .rst sources' paragraphs are a second, rougher measure (markup stripped by
  regexes). For the PDF, the paragraphs of the HTML edition of the same book. For news
  articles, the paragraphs of the article text that newspaper4k's tests expect.
- **nav lines**: extracted lines equal to a line of the page's navigation (and found
  nowhere in its content); for news, extracted lines found nowhere in the expected article.
- **pages/s**: files parsed per second (PDF: PDF pages per second).

"Before" is the parser of another commit (git archive of --before), run in a subprocess on
the same files in the same run. Corpora: `python eval/fetch_corpora.py`; news pages:
--fetch-news downloads the newspaper4k sdist from PyPI (its tests ship saved news pages).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPORA = Path(os.environ.get("QA_CORPORA", Path.home() / ".cache" / "qa" / "corpora"))
NEWS = CORPORA / "news-pages"
NEWS_PAGES = ["cnn_article", "spanish_article", "cleveland.com1", "fox13now_001", "time_001",
              "wired_001", "article_with_divs", "latvian_article"]
NAV_CLASSES = {"navheader", "navfooter", "toc", "sphinxsidebar", "related", "footer",
               "sphinxsidebarwrapper", "mobile-nav", "breadcrumbs", "docnav"}
NOTE_CLASSES = {"note", "tip", "warning", "caution", "important", "admonition", "seealso",
                "sidebar"}
# Publican's DocBook (the Debian Administrator's Handbook) writes paragraphs as div.para.
PARA_DIVS = {"para", "simpara"}
_WS = re.compile(r"\s+")


# The PDF edition typesets ASCII quotes as ” and the HTML edition keeps them: quotes and
# dashes are folded on both sides, so the measure is of extraction, not typesetting.
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "\u00a0": " ",
                         "\u2011": "-"})


def collapse(text: str) -> str:
    return _WS.sub(" ", text.translate(_QUOTES)).strip()


# ------------------------------------------------------------------------- ground truth


def _classes(el: Any) -> set[str]:
    return set((el.get("class") or "").split())


def html_truth(data: bytes) -> tuple[list[str], list[str], set[str]]:
    """(content paragraphs, note paragraphs, navigation lines) of a documentation page."""
    import lxml.html

    root = lxml.html.document_fromstring(data)
    for bad in root.xpath("//script|//style|//noscript"):
        bad.drop_tree()
    blockish = {"p", "ul", "ol", "dl", "pre", "table", "div", "blockquote", "li", "dd", "dt"}

    def inline_text(el: Any) -> str:
        parts = [el.text or ""]
        for child in el:
            if isinstance(child.tag, str) and child.tag in blockish:
                parts.append("\n\n")
            elif isinstance(child.tag, str):
                parts.append(child.text_content())
            parts.append(child.tail or "")
        return "".join(parts)

    paragraphs, notes, content_lines = [], [], set()
    nav_lines: set[str] = set()
    other: list[str] = []  # content that is not counted (headings, cells, listings)
    for el in root.iter("p", "li", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th",
                        "pre", "dt", "caption", "div"):
        if el.tag == "div" and not _classes(el) & PARA_DIVS:
            continue
        ancestors = list(el.iterancestors())
        if el.tag not in ("p", "li", "dd", "div"):
            if not any(a.tag in ("nav", "header", "footer") or _classes(a) & NAV_CLASSES
                       for a in ancestors):
                other.append(collapse(el.text_content()))
            continue
        if any(a.tag in ("nav", "header", "footer") or _classes(a) & NAV_CLASSES
               or a.get("role") == "navigation" for a in ancestors):
            for line in el.text_content().splitlines():
                if collapse(line):
                    nav_lines.add(collapse(line))
            continue
        is_note = any(_classes(a) & NOTE_CLASSES for a in ancestors)
        for piece in inline_text(el).split("\n\n"):
            text = collapse(piece)
            if len(text) < 2 or "admonition-title" in _classes(el):
                continue
            (notes if is_note else paragraphs).append(text)
    for el in root.iter():
        if isinstance(el.tag, str) and (el.tag in ("nav", "header", "footer")
                                        or _classes(el) & NAV_CLASSES):
            for line in el.text_content().splitlines():
                if collapse(line):
                    nav_lines.add(collapse(line))
    body = root.find("body")
    for line in (body.text_content() if body is not None else "").splitlines():
        content_lines.add(collapse(line))
    # A line both in the navigation and in the content (a section title listed in the table
    # of contents) is content.
    content_text = collapse(" ".join(paragraphs + notes + other)).replace("¶", "")
    nav_only = {n for n in nav_lines if n not in content_text and len(n) > 1}
    return paragraphs, notes, nav_only


_RST_ROLE = re.compile(r":[\w:+-]+:`([^`<]*?)(?:\s*<[^>]*>)?`")
_RST_LINK = re.compile(r"`([^`<]+?)\s*<[^>]*>`_+")
_RST_MARK = re.compile(r"``(.+?)``|\*\*(.+?)\*\*|\*(.+?)\*|`(.+?)`_*")


def rst_truth(source: str) -> list[str]:
    """Prose paragraphs of a .rst file, inline markup stripped (roughly)."""
    out = []
    for block in re.split(r"\n\s*\n", source):
        lines = block.split("\n")
        if not block.strip() or block.startswith((" ", "\t", "..", ":")):
            continue
        if any(set(line.strip()) <= set("=-~^\"'*#+`") and line.strip() for line in lines):
            continue
        text = " ".join(line.strip() for line in lines)
        if text.startswith(("* ", "- ", "#. ")) or re.match(r"\d+\. ", text):
            continue
        if text.endswith("::"):
            text = text[:-1]
        text = _RST_ROLE.sub(lambda m: m.group(1).lstrip("~!"), text)
        text = _RST_LINK.sub(lambda m: m.group(1), text)
        text = _RST_MARK.sub(lambda m: next(g for g in m.groups() if g is not None), text)
        text = re.sub(r"\s*\[#\w*\]_", "", text).replace("\\", "")
        text = text.replace("---", "\u2014").replace("--", "\u2013")
        if len(text.split()) >= 4:
            out.append(collapse(text))
    return out


def news_truth(name: str) -> list[str]:
    text = (NEWS / f"{name}.txt").read_text(encoding="utf-8")
    return [collapse(p) for p in re.split(r"\n\s*\n|\n", text) if len(p.split()) >= 3]


# ------------------------------------------------------------------------- extraction


def extract_all(files: list[str]) -> dict[str, Any]:
    """Parse each file with the parser importable here: text, seconds, pages."""
    from qa.documents.parsers import SkipFile, parser_for

    out = {}
    for f in files:
        path = Path(f)
        parser = parser_for(path.suffix)
        assert parser is not None
        data = path.read_bytes()
        t0 = time.perf_counter()
        try:
            parsed = parser.parse(data, name=path.name)
            text, pages = parsed.text, len(parsed.pages)
            sections = sum(1 for b in getattr(parsed, "blocks", ()) if b.path)
            blocks = len(getattr(parsed, "blocks", ()))
        except SkipFile as exc:
            text, pages, sections, blocks = f"<skipped: {exc}>", 0, 0, 0
        out[f] = {"text": text, "seconds": time.perf_counter() - t0, "pages": pages,
                  "blocks": blocks, "with_section": sections}
    return out


def extract_with(rev: str | None, files: list[str]) -> dict[str, Any]:
    """extract_all with this checkout (rev None) or with the code of commit `rev`."""
    if rev is None:
        return extract_all(files)
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "qa"],
                                 check=True, capture_output=True).stdout
        tar_path = Path(tmp) / "src.tar"
        tar_path.write_bytes(archive)
        with tarfile.open(tar_path) as tf:
            tf.extractall(tmp, filter="data")
        code = ("import json,sys; sys.path.insert(0, sys.argv[1]); "
                "sys.path.insert(0, sys.argv[2]); from extraction import extract_all; "
                "print(json.dumps(extract_all(json.load(sys.stdin))))")
        env = {**os.environ, "PYTHONPATH": tmp}
        done = subprocess.run([sys.executable, "-c", code, tmp, str(ROOT / "benchmarks")],
                              input=json.dumps(files), capture_output=True, text=True,
                              check=True, env=env)
        result: dict[str, Any] = json.loads(done.stdout)
        return result


# ------------------------------------------------------------------------- scoring


def score(truth: list[str], text: str, *, edition: bool = False) -> tuple[int, list[str]]:
    hay = collapse(text)
    if edition:
        hay = _edition(hay)
    missing = [p for p in truth if (_edition(p) if edition else p) not in hay]
    return len(truth) - len(missing), missing


# The PDF edition writes a cross-reference without the target's title ("see Section 9.7.1"
# where the HTML has 'see Section 9.7.1, "Making the disk image file"') and numbers
# captions "Table 1.17:" where the HTML has "Table 1.17.": both sides are normalised so.
_XREF = re.compile(r'((?:Section|Chapter|Appendix) [\dA-Z][\d.]*?)\.?, "[^"]*"')
_CAPTION = re.compile(r"((?:Table|Figure|Example) \d+(?:\.\d+)*)[.:]")


def _edition(text: str) -> str:
    return _CAPTION.sub(r"\1", _XREF.sub(r"\1", text))


def nav_kept(nav: set[str], text: str) -> int:
    return sum(1 for line in text.split("\n") if collapse(line) and collapse(line) in nav)


def fetch_news() -> None:
    """The saved news pages (and expected texts) that newspaper4k's sdist ships."""
    NEWS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:",
                        "--no-deps", "newspaper4k==0.9.6", "-d", tmp], check=True)
        sdist = next(Path(tmp).glob("newspaper4k-*.tar.gz"))
        with tarfile.open(sdist) as tf:
            for member in tf.getmembers():
                stem = Path(member.name).stem
                if stem in NEWS_PAGES and "/tests/data/" in member.name and \
                        member.name.endswith((".html", ".txt")):
                    data = tf.extractfile(member)
                    assert data is not None
                    (NEWS / Path(member.name).name).write_bytes(data.read())


def kinds() -> dict[str, list[Path]]:
    out = {
        "docbook-fr": sorted((CORPORA / "debian-reference-fr").glob("*.html")),
        "docbook-en": sorted((CORPORA / "debian-reference-en").glob("*.html")),
        "docbook-handbook-fr": sorted((CORPORA / "debian-handbook-fr").glob("*.html")),
        "sphinx": sorted((CORPORA / "python-docs").rglob("*.html")),
        "news": [NEWS / f"{n}.html" for n in NEWS_PAGES if (NEWS / f"{n}.html").exists()],
        "pdf-en": [CORPORA / "debian-reference-pdf" / "debian-reference.en.pdf"],
    }
    return {k: [p for p in v if p.exists()] for k, v in out.items()}


def evaluate(files: dict[str, list[Path]], extracted: dict[str, Any]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for kind, paths in files.items():
        total = intact = n_notes = notes_ok = nav = 0
        seconds = 0.0
        pages = 0
        rst_total = rst_ok = blocks = sectioned = 0
        examples: list[str] = []
        if kind.startswith("pdf"):
            html_dir = CORPORA / "debian-reference-en"
            truth: list[str] = []
            for h in sorted(html_dir.glob("*.html")):
                p, n, _ = html_truth(h.read_bytes())
                truth += p + n
            for path in paths:
                got = extracted[str(path)]
                ok, missing = score(truth, got["text"], edition=True)
                total, intact = len(truth), ok
                examples += missing[:5]
                seconds += got["seconds"]
                pages += got["pages"]
                blocks += got["blocks"]
                sectioned += got["with_section"]
        for path in paths if not kind.startswith("pdf") else []:
            got = extracted[str(path)]
            text = got["text"]
            seconds += got["seconds"]
            pages += 1
            blocks += got["blocks"]
            sectioned += got["with_section"]
            if kind == "news":
                truth = news_truth(path.stem)
                ok, missing = score(truth, text)
                expected = collapse((NEWS / f"{path.stem}.txt").read_text(encoding="utf-8"))
                nav += sum(1 for line in text.split("\n")
                           if len(collapse(line).split()) >= 2
                           and collapse(line) not in expected)
            else:
                truth, notes, nav_lines = html_truth(path.read_bytes())
                ok, missing = score(truth, text)
                n_ok, n_missing = score(notes, text)
                n_notes += len(notes)
                notes_ok += n_ok
                missing += n_missing
                nav += nav_kept(nav_lines, text)
                if kind == "sphinx":
                    rel = path.relative_to(CORPORA / "python-docs").with_suffix(".rst.txt")
                    src = CORPORA / "python-docs-sources" / rel
                    if src.exists():
                        rst = rst_truth(src.read_text(encoding="utf-8"))
                        r_ok, _ = score(rst, text)
                        rst_total += len(rst)
                        rst_ok += r_ok
            total += len(truth)
            intact += ok
            examples += [f"{path.name}: {m[:120]}" for m in missing[:2]]
        rows[kind] = {
            "files": len(paths), "paragraphs": total, "intact": intact,
            "intact_share": round(intact / total, 4) if total else None,
            "notes": n_notes, "notes_intact": notes_ok,
            "notes_share": round(notes_ok / n_notes, 4) if n_notes else None,
            "all_share": round((intact + notes_ok) / (total + n_notes), 4)
            if total + n_notes else None,
            "rst_paragraphs": rst_total,
            "rst_share": round(rst_ok / rst_total, 4) if rst_total else None,
            "nav_lines_kept": nav, "seconds": round(seconds, 3),
            "pages_per_s": round(pages / seconds, 1) if seconds else None,
            "blocks": blocks,
            "blocks_with_section": round(sectioned / blocks, 4) if blocks else None,
            "missing_examples": examples[:12],
        }
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", default="377ddb7", help="commit whose parsers are 'before'")
    ap.add_argument("--fetch-news", action="store_true", help="download the news pages first")
    ap.add_argument("--out", default="extraction", help="results/<out>.json and .md")
    ap.add_argument("--only", help="comma-separated kinds")
    args = ap.parse_args()
    if args.fetch_news or not NEWS.exists():
        fetch_news()
    files = kinds()
    if args.only:
        files = {k: v for k, v in files.items() if k in args.only.split(",")}
    flat = [str(p) for v in files.values() for p in v]
    report = {"before": evaluate(files, extract_with(args.before, flat)),
              "after": evaluate(files, extract_with(None, flat)), "before_rev": args.before}
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    (results / f"{args.out}.json").write_text(json.dumps(report, indent=1, ensure_ascii=False),
                                              encoding="utf-8")
    lines = ["| kind | files | paragraphs intact (before → after) | notes intact | "
             ".rst paragraphs | nav lines kept | pages/s | blocks with a section |",
             "|---|---|---|---|---|---|---|---|"]
    for kind in files:
        b, a = report["before"][kind], report["after"][kind]

        def pair(key: str, b: dict[str, Any] = b, a: dict[str, Any] = a) -> str:
            return f"{b[key]} → {a[key]}"
        lines.append(f"| {kind} | {a['files']} | {pair('intact_share')} ({a['paragraphs']}) | "
                     f"{pair('notes_share')} ({a['notes']}) | {pair('rst_share')} | "
                     f"{pair('nav_lines_kept')} | {pair('pages_per_s')} | "
                     f"{a['blocks_with_section']} |")
    table = "\n".join(lines)
    (results / f"{args.out}.md").write_text(table + "\n", encoding="utf-8")
    sys.stdout.write(table + "\n")
    for kind in files:
        for ex in report["after"][kind]["missing_examples"][:6]:
            sys.stdout.write(f"  {kind} missing: {ex}\n")


if __name__ == "__main__":
    main()
