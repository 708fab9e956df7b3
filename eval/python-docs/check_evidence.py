"""Check the python-docs question sets against the corpus.

Every evidence text must be an exact substring of the whitespace-collapsed text_content() of
one block element (paragraph, list item, definition term/description, table cell, heading,
code listing) of the named page, as lxml parses it; it must not contain Sphinx's "¶"
permalink sign. Also checks the record format, unique ids, and the page split (a page is
held out iff zlib.crc32(doc_id) % 5 < 2), and prints counts and where the evidence sits
(admonition, definition list, table, list item, plain paragraph).

    python eval/python-docs/check_evidence.py [--corpus DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zlib
from collections import Counter
from pathlib import Path

from lxml import html

HERE = Path(__file__).resolve().parent
DEFAULT_CORPUS = Path.home() / ".cache/qa/corpora/python-docs"
FILES = {"questions.jsonl": False, "heldout.jsonl": True}  # file -> holds held-out pages
BLOCK_TAGS = ("p", "li", "dt", "dd", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
              "caption")
MAX_EVIDENCE = 150


def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def is_heldout(doc_id: str) -> bool:
    return zlib.crc32(doc_id.encode("utf-8")) % 5 < 2


def blocks(page: Path) -> list[tuple[str, str]]:
    """(kind, collapsed text) of each block element, smallest elements first."""
    tree = html.parse(str(page))
    out = []
    for el in tree.iter(*BLOCK_TAGS):
        kind = el.tag
        for anc in el.iterancestors():
            cls = anc.get("class") or ""
            if "admonition" in cls.split():
                kind = "admonition"
                break
            if anc.tag == "table":
                kind = "table"
                break
            if anc.tag == "dl":
                kind = "dl"
                break
            if anc.tag in ("ul", "ol") and kind in ("p", "li"):
                kind = "li"
        if el.tag in ("dt", "dd"):
            kind = "dl"
        elif el.tag in ("td", "th"):
            kind = "table"
        out.append((kind, collapse(el.text_content())))
    # Leaf-most first, so a paragraph wins over the list item or cell containing it.
    out.sort(key=lambda kt: len(kt[1]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = ap.parse_args()
    cache: dict[str, list[tuple[str, str]]] = {}
    errors: list[str] = []
    ids: set[str] = set()
    pages_by_file: dict[str, set[str]] = {}
    for name, heldout in FILES.items():
        counts: Counter[str] = Counter()
        kinds: Counter[str] = Counter()
        pages_by_file[name] = set()
        for n, line in enumerate((HERE / name).read_text(encoding="utf-8").splitlines(), 1):
            where = f"{name}:{n}"
            q = json.loads(line)
            for key in ("id", "question", "lang", "answers", "evidence", "unanswerable"):
                if key not in q:
                    errors.append(f"{where}: missing {key}")
            if q["id"] in ids:
                errors.append(f"{where}: duplicate id {q['id']}")
            ids.add(q["id"])
            if q["unanswerable"]:
                if q["answers"] or q["evidence"]:
                    errors.append(f"{where}: unanswerable with answers/evidence")
                counts["near-miss" if q.get("near_miss") else "off-topic"] += 1
                continue
            counts[f"answerable/{q['lang']}"] += 1
            if not q["answers"] or not q["evidence"]:
                errors.append(f"{where}: answerable without answers or evidence")
            q_kinds = []
            for ev in q["evidence"]:
                doc, text = ev["doc_id"], ev["text"]
                pages_by_file[name].add(doc)
                if is_heldout(doc) != heldout:
                    errors.append(f"{where}: {doc} belongs to the other file")
                if "¶" in text or text != collapse(text) or len(text) > MAX_EVIDENCE:
                    errors.append(f"{where}: evidence not collapsed, too long or has ¶: {text!r}")
                if doc not in cache:
                    page = args.corpus / doc
                    if not page.is_file():
                        errors.append(f"{where}: no page {doc}")
                        continue
                    cache[doc] = blocks(page)
                hit = next((k for k, t in cache[doc] if text in t), None)
                if hit is None:
                    errors.append(f"{where}: not in any block of {doc}: {text!r}")
                else:
                    q_kinds.append(hit)
            if q_kinds:
                kinds[q_kinds[0]] += 1
        sys.stdout.write(f"{name}: {dict(sorted(counts.items()))}; first evidence in: "
                         f"{dict(sorted(kinds.items()))}; {len(pages_by_file[name])} pages\n")
    both = set.intersection(*pages_by_file.values())
    if both:
        errors.append(f"pages in both files: {sorted(both)}")
    for e in errors:
        sys.stderr.write(f"ERROR {e}\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
