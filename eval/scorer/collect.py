"""Collect the scorer's training data: every candidate sentence of every question, with its
features and whether answering with it would be right.

    python eval/scorer/collect.py [--index-root DIR]

For each corpus of eval/scorer/sets.json: open (or build) its index under DIR, run retrieval
and the answer stage up to the candidates (k=10, as `qa eval`), check each candidate the way
the pipeline does, and label it right when the answer it would give contains an accepted
answer. Writes eval/scorer/data/tuning.npz and heldout.npz (the held-out file is only ever
read to report calibration, never to fit). Every candidate (the ranker must have seen all it
will rank), features as float16 (they lie in [-1, 1] or close), compressed: about a megabyte.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from qa.answering import pipeline  # noqa: E402
from qa.answering.features import FEATURES, candidates  # noqa: E402
from qa.answering.scorer import CALIBRATION_BASE, hand_score  # noqa: E402
from qa.embedding import make_embedder  # noqa: E402
from qa.evaluation import read_questions  # noqa: E402
from qa.evaluation.normalize import answer_contains  # noqa: E402
from qa.index import open_index  # noqa: E402

HERE = Path(__file__).resolve().parent
TOP = 10_000  # every candidate: the ranker must see at fit time all it ranks at run time
K = 10


def corpus_path(spec: str) -> Path:
    return Path(spec).expanduser() if spec.startswith("~") else ROOT / spec


def collect(part: str, index_root: Path) -> dict[str, Any]:
    sets = json.loads((HERE / "sets.json").read_text(encoding="utf-8"))["corpora"]
    rows: list[np.ndarray] = []
    base_rows: list[np.ndarray] = []
    cand_cols: dict[str, list[Any]] = {k: [] for k in (
        "question", "right", "check_ok", "phrase", "typed_phrase", "extended", "barred",
        "passage_pos", "rank_prescore")}
    questions: list[dict[str, Any]] = []
    emb = make_embedder("use-m3")
    for entry in sets:
        index, _ = open_index(corpus_path(entry["corpus"]), index_root / entry["name"],
                              embedder=emb)
        for qfile in entry[part]:
            for q in read_questions(ROOT / qfile):
                view, passages = pipeline.retrieve_for(index, q.question, k=K)
                cands = candidates(index, view, passages)
                hand = hand_score(np.stack([c.features for c in cands])) if cands else []
                order = sorted(range(len(cands)), key=lambda i: -float(hand[i]))
                qi = len(questions)
                kept = 0
                for rank, i in enumerate(order):
                    c = cands[i]
                    check = pipeline.check_candidate(index, c, view)
                    text = index.doc(c.doc_id).text
                    start, end = pipeline.answer_span(c, check) if check.ok else c.span
                    answer = text[start:end]
                    right = not q.unanswerable and answer_contains(answer, q.answers)
                    if rank >= TOP and not right:
                        continue
                    kept += 1
                    rows.append(c.features.astype(np.float16))
                    base_rows.append(pipeline.calibration_base(index, view, c, check)
                                     .astype(np.float16))
                    phrase = check.phrase
                    for key, value in (
                        ("question", qi), ("right", right), ("check_ok", check.ok),
                        ("phrase", phrase is not None),
                        ("typed_phrase", phrase is not None and phrase.kind != "other"),
                        ("extended", check.start is not None or check.end is not None),
                        ("barred", pipeline.barred(c)), ("passage_pos", c.passage_pos),
                        ("rank_prescore", rank),
                    ):
                        cand_cols[key].append(value)
                questions.append({
                    "corpus": entry["name"], "file": qfile, "id": q.id,
                    "unanswerable": q.unanswerable, "near_miss": q.near_miss,
                    "kind": view.asked.kind, "group": pipeline.kind_group(view.asked.kind),
                    "coverage": round(view.query.coverage, 6), "candidates": kept,
                })
    return {"X": np.stack(rows) if rows else np.zeros((0, len(FEATURES)), np.float32),
            "B": np.stack(base_rows) if base_rows else np.zeros(
                (0, len(CALIBRATION_BASE)), np.float32),
            **{k: np.asarray(v) for k, v in cand_cols.items()}, "questions": questions}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index-root", type=Path, default=Path("/tmp/qa-scorer-indexes"),
                    help="where each corpus's index is kept (built when missing)")
    ap.add_argument("--part", choices=["tuning", "heldout", "both"], default="both")
    args = ap.parse_args()
    out_dir = HERE / "data"
    out_dir.mkdir(exist_ok=True)
    for part in (["tuning", "heldout"] if args.part == "both" else [args.part]):
        started = time.perf_counter()
        data = collect(part, args.index_root)
        qs = data.pop("questions")
        np.savez_compressed(out_dir / f"{part}.npz", features=np.asarray(FEATURES),
                            base_features=np.asarray(CALIBRATION_BASE),
                            questions=np.asarray(json.dumps(qs)), **data)
        print(f"{part}: {len(qs)} questions, {len(data['X'])} candidates "
              f"({time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()
