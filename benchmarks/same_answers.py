"""Do two checkouts give the same answers, bit for bit, on every question set?

    python benchmarks/same_answers.py dump OUT.jsonl --index-root DIR [--embedder hash|use-m3]
    python benchmarks/same_answers.py diff BEFORE.jsonl AFTER.jsonl

`dump` builds (with the checkout first on PYTHONPATH) an index of each corpus of
eval/scorer/sets.json under DIR/<corpus>-<embedder> when there is none, then writes every
answer of every set (tuning and held-out parts) as one JSON line: the whole `Answer` (text,
span, section, citations with their scores, confidence, short answer, note). Indexes are
built by the checkout under test, so a change of index format or build is covered too. To
compare two checkouts, dump with each (its own --index-root) and `diff`: it exits 1 and shows
the first differences when any answer differs.

`--embedder hash` is quick (a few minutes for every corpus) and exercises the whole pipeline;
`use-m3`, the default model, is the real thing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETS = ROOT / "eval" / "scorer" / "sets.json"


def _corpora() -> list[dict[str, object]]:
    return list(json.loads(SETS.read_text(encoding="utf-8"))["corpora"])


def dump(out: Path, index_root: Path, embedder_spec: str) -> int:
    from qa.answering import answer_question
    from qa.embedding import make_embedder
    from qa.evaluation.questions import read_questions
    from qa.index import build_index, index_exists, load_index

    embedder = make_embedder(embedder_spec)
    n = 0
    with out.open("w", encoding="utf-8") as fh:
        for entry in _corpora():
            corpus = Path(str(entry["corpus"])).expanduser()
            corpus = corpus if corpus.is_absolute() else ROOT / corpus
            index_dir = index_root / f"{entry['name']}-{embedder_spec}"
            if not index_exists(index_dir):
                build_index(corpus, index_dir, embedder=embedder)
            index = load_index(index_dir, embedder=embedder)
            files = [*entry["tuning"], *entry["heldout"]]  # type: ignore[misc]
            for qfile in files:
                for q in read_questions(ROOT / qfile):
                    answer = answer_question(index, q.question)
                    fh.write(json.dumps({"set": qfile, "id": q.id, **answer.to_dict()},
                                        ensure_ascii=False, sort_keys=True) + "\n")
                    n += 1
            index.close()
    print(f"{n} answers written to {out}")
    return 0


def diff(before: Path, after: Path, show: int = 5) -> int:
    def load(p: Path) -> dict[tuple[str, str], str]:
        rows = {}
        for line in p.read_text(encoding="utf-8").splitlines():
            obj = json.loads(line)
            rows[(obj["set"], obj["id"])] = line
        return rows

    a, b = load(before), load(after)
    missing = sorted(set(a) ^ set(b))
    changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])
    print(f"{len(a)} / {len(b)} answers; {len(changed)} differ; {len(missing)} in one file only")
    for key in changed[:show]:
        print(f"--- {key}\n  before: {a[key][:400]}\n  after:  {b[key][:400]}")
    for key in missing[:show]:
        print(f"--- {key} only in {'before' if key in a else 'after'}")
    return 1 if changed or missing else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out", type=Path)
    d.add_argument("--index-root", type=Path, required=True)
    d.add_argument("--embedder", default="hash")
    c = sub.add_parser("diff")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = ap.parse_args()
    if args.cmd == "dump":
        return dump(args.out, args.index_root, args.embedder)
    return diff(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
