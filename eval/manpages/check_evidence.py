"""Check the man-page question sets against the rendered corpus.

Every evidence text must be an exact substring of its named file in corpus/ (byte for byte,
line breaks and indentation included) and contain one of the accepted answers; ids must be
unique across all sets; answerable questions need answers and evidence, unanswerable ones
neither. Prints the counts per set
and exits non-zero on the first kind of problem found.

    python eval/manpages/check_evidence.py
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
SETS = ("questions.jsonl", "heldout.jsonl", "heldout2.jsonl")
MAX_EVIDENCE = 150


def check_set(name: str, seen_ids: set[str], errors: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for lineno, line in enumerate((HERE / name).read_text(encoding="utf-8").splitlines(), 1):
        where = f"{name}:{lineno}"
        q = json.loads(line)
        qid = q["id"]
        if qid in seen_ids:
            errors.append(f"{where}: duplicate id {qid}")
        seen_ids.add(qid)
        if q.get("lang") not in ("en", "fr"):
            errors.append(f"{where}: {qid} has lang {q.get('lang')!r}")
        counts[f"lang_{q['lang']}"] += 1
        if q["unanswerable"]:
            counts["near_miss" if q.get("near_miss") else "off_topic"] += 1
            if q["answers"] or q["evidence"]:
                errors.append(f"{where}: unanswerable {qid} has answers or evidence")
            continue
        counts["answerable"] += 1
        counts[f"answerable_{q['lang']}"] += 1
        if not q["answers"] or not q["evidence"]:
            errors.append(f"{where}: answerable {qid} lacks answers or evidence")
        # The sentence a user is shown must carry the answer, not only its neighbourhood.
        evidence_text = "\n".join(ev["text"] for ev in q["evidence"])
        if not any(answer in evidence_text for answer in q["answers"]):
            errors.append(f"{where}: {qid} has no accepted answer inside its evidence")
        for ev in q["evidence"]:
            path = CORPUS / ev["doc_id"]
            if not path.is_file():
                errors.append(f"{where}: {qid} names missing document {ev['doc_id']}")
                continue
            if ev["text"] not in path.read_text(encoding="utf-8"):
                errors.append(f"{where}: {qid} evidence not in {ev['doc_id']}: {ev['text']!r}")
            # The first sets (ids below 101) predate the length limit; a few run a little over.
            if int(qid.lstrip("mh")) >= 101 and len(ev["text"]) > MAX_EVIDENCE:
                errors.append(f"{where}: {qid} evidence longer than {MAX_EVIDENCE} chars")
    return counts


def main() -> int:
    errors: list[str] = []
    seen: set[str] = set()
    total: Counter[str] = Counter()
    for name in SETS:
        counts = check_set(name, seen, errors)
        total += counts
        n = sum(counts[k] for k in ("answerable", "near_miss", "off_topic"))
        sys.stdout.write(
            f"{name}: {n} questions: {counts['answerable']} answerable "
            f"({counts['answerable_fr']} fr), {counts['near_miss']} near-miss, "
            f"{counts['off_topic']} off-topic; {counts['lang_en']} en / {counts['lang_fr']} fr\n"
        )
    n = sum(total[k] for k in ("answerable", "near_miss", "off_topic"))
    sys.stdout.write(
        f"all: {n} questions: {total['answerable']} answerable ({total['answerable_fr']} fr), "
        f"{total['near_miss']} near-miss, {total['off_topic']} off-topic\n"
    )
    for e in errors:
        sys.stderr.write(e + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
