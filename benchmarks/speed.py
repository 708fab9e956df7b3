"""Speed of qa on this machine: warm in-process ask, cold `qa ask`, and indexing.

    python benchmarks/speed.py [--repeat 5] [--out benchmarks/results/speed.json]

Every number is a median over repeats (machines here are shared and noisy); alternatives
(retrieval modes) are measured in the same run so they can be compared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def qa_command() -> list[str]:
    exe = Path(sys.executable).parent / "qa"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "qa.cli"]


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from qa.answering import answer_question
    from qa.embedding import make_embedder
    from qa.index import build_index, load_index

    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    shutil.copytree(ROOT / "corpus", work / "corpus")
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "cache")}
    questions = [json.loads(line)["question"]
                 for line in (ROOT / "eval" / "questions.jsonl").read_text().splitlines()]
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "repeat": args.repeat,
    }

    # 1. Indexing the shipped corpus from scratch with `qa index` (process start, model load,
    #    chunking, embedding, writing), and re-indexing it unchanged.
    full, again = [], []
    for i in range(args.repeat):
        index_dir = work / f"index-{i}"
        full.append(timed([*qa_command(), "index", "--index", str(index_dir)], work, env))
        again.append(timed([*qa_command(), "index", "--index", str(index_dir)], work, env))
    results["index_full_s"] = round(statistics.median(full), 3)
    results["index_unchanged_s"] = round(statistics.median(again), 3)

    # 2. Cold `qa ask`: a new process, index already built (the tokenizer cache is warm, as it
    #    is after a user's first run).
    index_dir = work / "index-0"
    cold = [timed([*qa_command(), "ask", "When did Putin visit Pyongyang?", "--index",
                   str(index_dir), "--json"], work, env) for _ in range(args.repeat)]
    results["ask_cold_s"] = round(statistics.median(cold), 3)

    # 3. Warm in-process ask over the whole question set, per retrieval mode.
    embedder = make_embedder("use-m3", cache_dir=work / "cache")
    index = load_index(index_dir, embedder=embedder)
    for mode in ("hybrid", "dense", "lexical"):
        answer_question(index, questions[0], mode=mode)  # type: ignore[arg-type]
        times = []
        for _ in range(args.repeat):
            for q in questions:
                start = time.perf_counter()
                answer_question(index, q, mode=mode)  # type: ignore[arg-type]
                times.append(time.perf_counter() - start)
        times.sort()
        results[f"ask_warm_{mode}_p50_ms"] = round(1000 * statistics.median(times), 2)
        results[f"ask_warm_{mode}_p95_ms"] = round(1000 * times[int(0.95 * len(times))], 2)
    build_s = []
    for i in range(args.repeat):
        start = time.perf_counter()
        build_index(work / "corpus", work / f"inproc-{i}", embedder=embedder)
        build_s.append(time.perf_counter() - start)
    results["index_full_in_process_s"] = round(statistics.median(build_s), 3)

    shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
