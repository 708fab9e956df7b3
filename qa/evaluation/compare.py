"""Comparing runs: paired randomization tests and changed questions."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from qa.errors import QAError
from qa.evaluation.metrics import LATENCY_METRICS, _percentile, question_score

# ranx's default is 1000; 10,000 keeps the p-value's own Monte Carlo error near 0.005 at p=0.05.
PERMUTATIONS = 10_000
SEED = 0

def check_comparable(old: Mapping[str, Any], *, k: int, questions_file: str) -> list[str]:
    """Refuse a comparison across different k; warnings when the question sets differ."""
    old_k = old["config"].get("k")
    if old_k != k:
        raise QAError(f"cannot compare with a report made with k={old_k} (this run: k={k}); "
                      f"rerun with --k {old_k}")
    old_file = old["config"].get("questions_file")
    if old_file and old_file != questions_file:
        return [f"the earlier report used {old_file}, this run uses {questions_file}"]
    return []




def randomization_test(
    old: Sequence[float], new: Sequence[float], *, permutations: int = PERMUTATIONS,
    seed: int = SEED,
) -> float:
    """Two-sided paired randomization test p-value for mean(new - old) == 0.

    Each permutation swaps the two runs' scores on a random subset of questions, i.e. flips
    the sign of those per-question differences (Fisher's test, as in ranx). p counts the
    permutations whose |mean difference| reaches the observed one, plus the observed itself.
    """
    diffs = np.asarray(new, dtype=np.float64) - np.asarray(old, dtype=np.float64)
    if diffs.size == 0:
        return 1.0
    observed = abs(diffs.mean())
    tolerance = 1e-12 * max(1.0, observed)
    rng = np.random.default_rng(seed)
    reached, batch = 0, 1000
    for start in range(0, permutations, batch):
        n = min(batch, permutations - start)
        signs = rng.integers(0, 2, size=(n, diffs.size)) * 2 - 1
        stats = np.abs((signs * diffs).mean(axis=1))
        reached += int(np.count_nonzero(stats >= observed - tolerance))
    return (reached + 1) / (permutations + 1)


def _run_name(report: Mapping[str, Any]) -> str:
    config = report["config"]
    return str(config.get("label") or config.get("url") or "run")


def _rank_key(rank: int | None) -> float:
    return math.inf if rank is None else float(rank)


def compare_reports(
    old: Mapping[str, Any], new: Mapping[str, Any], *, permutations: int = PERMUTATIONS,
    seed: int = SEED,
) -> dict[str, Any]:
    """Per-metric deltas (new - old) with paired randomization p-values, over the questions
    both reports share; and the questions whose correctness or first relevant rank changed."""
    old_rows = {r["id"]: r for r in old["questions"]}
    new_rows = {r["id"]: r for r in new["questions"]}
    paired = [i for i in new_rows if i in old_rows]
    old_names = [m for m in old["summary"]["overall"] if m not in LATENCY_METRICS]
    metrics: list[dict[str, Any]] = []
    for name in new["summary"]["overall"]:
        if name not in old_names or name in ("questions", "answerable", "unanswerable"):
            continue
        pairs = [
            (a, b) for i in paired
            if (a := question_score(old_rows[i], name)) is not None
            and (b := question_score(new_rows[i], name)) is not None
        ]
        if not pairs:
            continue
        before, after = [a for a, _ in pairs], [b for _, b in pairs]
        o, n = sum(before) / len(pairs), sum(after) / len(pairs)
        metrics.append({
            "metric": name, "old": round(o, 4), "new": round(n, 4), "delta": round(n - o, 4),
            "p_value": round(randomization_test(before, after, permutations=permutations,
                                                seed=seed), 4),
            "n": len(pairs),
        })
    for name, q in (("latency_p50_ms", 50), ("latency_p95_ms", 95)):
        o_lat = _percentile([float(old_rows[i]["latency_ms"]) for i in paired], q)
        n_lat = _percentile([float(new_rows[i]["latency_ms"]) for i in paired], q)
        if o_lat is not None and n_lat is not None:
            metrics.append({"metric": name, "old": o_lat, "new": n_lat,
                            "delta": round(n_lat - o_lat, 1), "p_value": None, "n": len(paired)})
    better: list[dict[str, Any]] = []
    worse: list[dict[str, Any]] = []
    changed_text = [i for i in paired if old_rows[i]["question"] != new_rows[i]["question"]]
    for i in paired:
        a, b = old_rows[i], new_rows[i]
        change = {
            "id": i, "lang": b["lang"], "question": b["question"],
            "unanswerable": b["unanswerable"],
            "old_correct": a["correct"], "new_correct": b["correct"],
            "old_rank": a["first_relevant_rank"], "new_rank": b["first_relevant_rank"],
        }
        if a["correct"] != b["correct"]:
            (better if b["correct"] else worse).append(change)
        elif _rank_key(b["first_relevant_rank"]) < _rank_key(a["first_relevant_rank"]):
            better.append(change)
        elif _rank_key(b["first_relevant_rank"]) > _rank_key(a["first_relevant_rank"]):
            worse.append(change)
    return {
        "old": {"label": _run_name(old), "timestamp": old["config"].get("timestamp")},
        "new": {"label": _run_name(new), "timestamp": new["config"].get("timestamp")},
        "paired": len(paired),
        "only_old": [i for i in old_rows if i not in new_rows],
        "only_new": [i for i in new_rows if i not in old_rows],
        "permutations": permutations, "seed": seed,
        "metrics": metrics, "better": better, "worse": worse,
        "changed_text": changed_text,
    }
