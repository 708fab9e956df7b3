"""Warm `answer_question` speed of several checkouts, interleaved in one run.

    python benchmarks/answer_speed.py --index DIR CHECKOUT [CHECKOUT ...] [--rounds 3]

Each round runs every checkout in turn, in its own process with the checkout first on
PYTHONPATH: it loads the index (which every checkout must be able to read), warms up on five
questions, then answers eval/questions.jsonl three times and reports the median and p95 per
question. Interleaving keeps a shared, noisy machine's drift out of the comparison;
`speed.py` measures one checkout at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = """
import json, statistics, sys, time
from pathlib import Path
from qa.answering import answer_question
from qa.embedding import make_embedder
from qa.index import load_index
questions = [json.loads(line)["question"]
             for line in Path(sys.argv[2]).read_text(encoding="utf-8").splitlines()]
index = load_index(Path(sys.argv[1]), embedder=make_embedder("use-m3"))
for q in questions[:5]:
    answer_question(index, q)
times = []
for _ in range(3):
    for q in questions:
        start = time.perf_counter()
        answer_question(index, q)
        times.append(time.perf_counter() - start)
times.sort()
print(json.dumps({"p50_ms": 1000 * statistics.median(times),
                  "p95_ms": 1000 * times[int(0.95 * len(times))]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="+", type=Path)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    questions = ROOT / "eval" / "questions.jsonl"
    results: dict[str, list[dict[str, float]]] = {str(c): [] for c in args.checkouts}
    for _ in range(args.rounds):
        for checkout in args.checkouts:
            env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
            out = subprocess.run([sys.executable, "-c", _CHILD, str(args.index), str(questions)],
                                 env=env, capture_output=True, text=True, check=True)
            results[str(checkout)].append(json.loads(out.stdout))
    summary = {c: {"p50_ms_by_round": [round(r["p50_ms"], 2) for r in rs],
                   "p50_ms_median": round(statistics.median(r["p50_ms"] for r in rs), 2),
                   "p95_ms_median": round(statistics.median(r["p95_ms"] for r in rs), 2)}
               for c, rs in results.items()}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
