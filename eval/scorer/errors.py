"""Error analysis of the answer scorer on TUNING questions: for each answerable question,
whether its evidence was retrieved, whether any candidate is right (the ceiling), what the
best one says, and the lines around the gold in the retrieved passages.

    python eval/scorer/errors.py OUT.jsonl [--index-root DIR] [--corpus NAME ...]
    python eval/scorer/errors.py OUT.jsonl --summary

Reads only the tuning part of eval/scorer/sets.json (held-out is never analysed here).
One JSON record per answerable question; `--summary` counts them per corpus as REPORT.md
does (best candidate right and answered, right but under the threshold, some lower candidate
right, no candidate right). The buckets of the wrong ones were read by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from qa.answering import pipeline, scorer  # noqa: E402
from qa.answering.sentences import score_sentences  # noqa: E402
from qa.embedding import make_embedder  # noqa: E402
from qa.evaluation import read_questions  # noqa: E402
from qa.evaluation.normalize import answer_contains  # noqa: E402
from qa.index import open_index  # noqa: E402

HERE = Path(__file__).resolve().parent
K = 10


def _gold_lines(text: str, start: int, end: int, answers: list[str]) -> list[str]:
    """The lines of text[start:end] holding a gold answer, with the line before and after."""
    lines = text[start:end].split("\n")
    out: list[str] = []
    for i, line in enumerate(lines):
        if answer_contains(line, answers):
            out.append(" ⏎ ".join(x.strip() for x in lines[max(0, i - 1) : i + 2]))
    return out[:3]


def analyse(index: Any, q: Any, sp: scorer.ScorerParams) -> dict[str, Any]:
    view, passages = pipeline.retrieve_for(index, q.question, k=K)
    cands = score_sentences(index, view, passages, sp)
    ranked = sorted(cands, key=lambda c: -c.score)
    rec: dict[str, Any] = {"id": q.id, "question": q.question, "answers": list(q.answers),
                           "kind": view.asked.kind, "candidates": len(cands)}
    gold_passages = [p for p in passages if answer_contains(p.chunk.text, q.answers)]
    rec["gold_in_passages"] = len(gold_passages)
    rec["gold_lines"] = [ln for p in gold_passages[:2]
                         for ln in _gold_lines(index.doc(p.chunk.doc_id).text, p.chunk.start,
                                               p.chunk.end, list(q.answers))]
    first_right = None
    rec["best"] = None
    for rank, c in enumerate(ranked):
        check = pipeline.check_candidate(index, c, view)
        text = index.doc(c.doc_id).text
        s, e = pipeline.answer_span(c, check) if check.ok else c.span
        right = answer_contains(text[s:e], q.answers)
        barred = pipeline.barred(c)
        if rec["best"] is None and not barred:
            runner = next((r for r in ranked[rank + 1:] if not pipeline.barred(r)), None)
            conf = pipeline.calibrated(sp, index, view, c, runner, check,
                                      pipeline.top_hand_score(cands)) if check.ok else 0.0
            rec["best"] = {"text": text[s:e][:300], "right": right, "ok": check.ok,
                           "conf": round(conf, 3), "passage": c.passage_pos,
                           "doc": c.doc_id,
                           "short": text[check.phrase.start:check.phrase.end]
                           if check.phrase else None}
        if right and first_right is None:
            first_right = {"rank": rank, "text": text[s:e][:300], "barred": barred,
                           "ok": check.ok, "passage": c.passage_pos, "doc": c.doc_id}
    rec["first_right"] = first_right
    return rec


def summary(path: Path, threshold: float) -> None:
    counts: dict[str, dict[str, int]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        best, first = r["best"], r["first_right"]
        if best and best["right"]:
            status = "best right, answered" if best["ok"] and best["conf"] >= threshold \
                else "best right, abstained"
        elif first:
            status = "a lower candidate right"
        else:
            status = "no candidate right"
        by = counts.setdefault(r["corpus"], {})
        by[status] = by.get(status, 0) + 1
    for corpus, by in sorted(counts.items()):
        print(f"{corpus}: {sum(by.values())} answerable, {by}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--summary", action="store_true", help="count the records of OUT.jsonl")
    ap.add_argument("--index-root", type=Path, default=Path("/tmp/qa-scorer-indexes"))
    ap.add_argument("--corpus", nargs="*", default=None)
    args = ap.parse_args()
    sp = scorer.load_params()
    if args.summary:
        summary(args.out, sp.threshold)
        return
    emb = make_embedder("use-m3")
    sets = json.loads((HERE / "sets.json").read_text(encoding="utf-8"))["corpora"]
    with args.out.open("w", encoding="utf-8") as fh:
        for entry in sets:
            if args.corpus and entry["name"] not in args.corpus:
                continue
            spec = entry["corpus"]
            path = Path(spec).expanduser() if spec.startswith("~") else ROOT / spec
            index, _ = open_index(path, args.index_root / entry["name"], embedder=emb)
            for qfile in entry["tuning"]:
                for q in read_questions(ROOT / qfile):
                    if q.unanswerable:
                        continue
                    rec = analyse(index, q, sp)
                    rec["corpus"] = entry["name"]
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
