"""Check the Debian Reference question sets against the HTML they quote.

    python eval/debian-reference/check_evidence.py [--corpora DIR] [FILE.jsonl ...]

Default files: every *.jsonl next to this script. `fr_*` files are checked against
DIR/debian-reference-fr/, `en_*` files against DIR/debian-reference-en/ (DIR defaults to
$XDG_CACHE_HOME/qa/corpora, as made by eval/fetch_corpora.py).

For every evidence item: the text must be at most 150 characters and an exact substring of the
whitespace-collapsed text_content() of one block element (paragraph, list item, table cell,
term/definition, pre, heading) of the named page, parsed with lxml.html. A text that occurs more
than once in the page's collapsed visible text is reported as a warning (it still passes), and so
is an answerable question none of whose answers appears in its evidence's block or table row.
Prints per file the counts (answerable by language, near-miss, off-topic) and where the answerable
questions' evidence sits: DocBook sidebars (Note/Tip/Caution/Warning), tables, definition lists,
list items or running text.
Also checked: unique ids, required fields, answerable questions have answers and evidence,
unanswerable ones have neither, near_miss only on unanswerables. Exit status 1 on any error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import lxml.html

BLOCKS = ("p", "li", "td", "th", "dt", "dd", "pre", "h1", "h2", "h3", "h4", "h5")
MAX_EVIDENCE = 150
CORPUS_BY_PREFIX = {"fr_": "debian-reference-fr", "en_": "debian-reference-en"}
ADMONITIONS = ("note", "tip", "caution", "warning", "important")


def location(el: lxml.html.HtmlElement) -> str:
    """Where a block sits: inside a DocBook sidebar (note/tip/...), a table, a definition list,
    a list item, or the running text. Sidebars are drawn as tables, so they are tested first."""
    ancestors = list(el.iterancestors())
    if any(a.get("class") in ADMONITIONS for a in ancestors):
        return "sidebar"
    if el.tag in ("td", "th") or any(a.tag == "table" for a in ancestors):
        return "table"
    if el.tag in ("dt", "dd") or any(a.tag == "dl" for a in ancestors):
        return "deflist"
    if el.tag == "li" or any(a.tag == "li" for a in ancestors):
        return "list"
    return "text"


def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class Page:
    """One parsed HTML page: its block elements' collapsed texts and its whole visible text."""

    def __init__(self, path: Path) -> None:
        root = lxml.html.parse(str(path)).getroot()
        for bad in root.xpath("//script|//style"):
            bad.drop_tree()
        body = root.find("body")
        self.text = collapse((body if body is not None else root).text_content())
        self.blocks: list[tuple[lxml.html.HtmlElement, str]] = [
            (el, collapse(el.text_content())) for el in root.iter(*BLOCKS)
        ]

    def containing(self, evidence: str) -> list[lxml.html.HtmlElement]:
        """The innermost block elements whose text contains the evidence."""
        hits = [el for el, text in self.blocks if evidence in text]
        inner: set[int] = set()
        for el in hits:
            inner.update(id(a) for a in el.iterancestors())
        return [el for el in hits if id(el) not in inner]


def default_corpora() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "qa" / "corpora"


def check_file(
    path: Path, corpora: Path, pages: dict[Path, Page], seen_ids: dict[str, str]
) -> tuple[list[str], list[str], dict[str, int]]:
    errors: list[str] = []
    warnings: list[str] = []
    counts = {
        "answerable_en": 0,
        "answerable_fr": 0,
        "near_miss": 0,
        "off_topic": 0,
        "sidebar": 0,
        "table": 0,
        "deflist": 0,
        "list": 0,
        "text": 0,
    }
    prefix = next((p for p in CORPUS_BY_PREFIX if path.name.startswith(p)), None)
    if prefix is None:
        return [f"{path.name}: name must start with one of {sorted(CORPUS_BY_PREFIX)}"], [], counts
    corpus = corpora / CORPUS_BY_PREFIX[prefix]
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path.name}:{n}"
        q = json.loads(line)
        for key in ("id", "question", "lang", "answers", "evidence", "unanswerable"):
            if key not in q:
                errors.append(f"{where}: missing {key!r}")
        qid = q.get("id", "?")
        where = f"{where} ({qid})"
        if qid in seen_ids:
            errors.append(f"{where}: id already used in {seen_ids[qid]}")
        seen_ids[qid] = path.name
        if q.get("lang") not in ("en", "fr"):
            errors.append(f"{where}: lang must be en or fr")
        if q.get("unanswerable"):
            if q.get("answers") or q.get("evidence"):
                errors.append(f"{where}: unanswerable question with answers or evidence")
            counts["near_miss" if q.get("near_miss") else "off_topic"] += 1
            continue
        if q.get("near_miss"):
            errors.append(f"{where}: near_miss on an answerable question")
        if not q.get("answers") or not q.get("evidence"):
            errors.append(f"{where}: answerable question without answers or evidence")
            continue
        counts[f"answerable_{q['lang']}"] += 1
        answer_found = False
        places: set[str] = set()
        for ev in q["evidence"]:
            doc = corpus / ev["doc_id"]
            text = ev["text"]
            if not doc.is_file():
                errors.append(f"{where}: no such document {doc}")
                continue
            if len(text) > MAX_EVIDENCE:
                errors.append(f"{where}: evidence longer than {MAX_EVIDENCE} chars: {text[:60]}…")
            if text != collapse(text):
                errors.append(f"{where}: evidence has uncollapsed whitespace: {text[:60]}…")
            page = pages.setdefault(doc, Page(doc))
            blocks = page.containing(text)
            if not blocks:
                errors.append(f"{where}: not inside one block of {ev['doc_id']}: {text!r}")
                continue
            places.update(location(b) for b in blocks)
            occurrences = page.text.count(text)
            if occurrences != 1:
                warnings.append(f"{where}: occurs {occurrences}x in {ev['doc_id']}: {text!r}")
            context = [text] + [collapse(b.text_content()) for b in blocks]
            for b in blocks:
                row = next((a for a in b.iterancestors("tr")), None)
                if row is not None:
                    context.append(collapse(row.text_content()))
            lowered = " ".join(context).lower()
            if any(a.lower() in lowered for a in q["answers"]):
                answer_found = True
        # a question counts once, under the first of these its evidence reaches
        counts[
            next((k for k in ("sidebar", "table", "deflist", "list") if k in places), "text")
        ] += 1
        if not answer_found:
            warnings.append(f"{where}: no answer appears in its evidence block or table row")
    return errors, warnings, counts


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=default_corpora())
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args()
    files = args.files or sorted(Path(__file__).resolve().parent.glob("*.jsonl"))
    pages: dict[Path, Page] = {}
    seen: dict[str, str] = {}
    failed = False
    for path in files:
        errors, warnings, counts = check_file(path, args.corpora, pages, seen)
        for w in warnings:
            _say(f"warning: {w}")
        for e in errors:
            _say(f"ERROR: {e}")
        failed = failed or bool(errors)
        _say(
            f"{path.name}: answerable en={counts['answerable_en']} fr={counts['answerable_fr']}, "
            f"near-miss={counts['near_miss']}, off-topic={counts['off_topic']}; evidence in "
            f"sidebars={counts['sidebar']} tables={counts['table']} "
            f"definition lists={counts['deflist']} list items={counts['list']} "
            f"running text={counts['text']}"
            f"{'' if not errors else f', {len(errors)} error(s)'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
