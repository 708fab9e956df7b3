"""Refit the scorer with variants of fit.py and measure each on tuning data only.

    python eval/scorer/variants.py                 # every variant (about 25 s each)
    python eval/scorer/variants.py shipped cl2=5   # some of them

For each variant: leave-one-corpus-out utility (as `fit.py --cv`) and the in-sample tuning
utility, accuracy and false abstention of each corpus. Never reads held-out data. A variant
is a space-free list of `key=value` joined by `+`:

- weight=question|sqrt: every question weighs the same, or a corpus weighs by the square
  root of its number of questions (fit.py: every corpus the same);
- thr=question: the threshold maximises utility pooled over questions (fit.py: the mean of
  the corpora's utilities);
- rl2=, cl2=: the ranker's and the calibrator's L2 penalties (fit.py: 1 and 10);
- extra=a,b: more calibrator inputs of the best candidate: pre (the old hand score, i.e.
  collect.py's pre-score), prelead (its gap to the best pre-score, 0 when
  it is the pre-score's first), pretop (it is the
  pre-score's first), prose_score / prose_margin ((1 - wrapped) x ranker score / margin),
  news_score / news_margin (news kind asked x score / margin), passage_rank, ncand (log
  number of candidates).

Results were written up in REPORT.md ("Why the seeds regressed", "Variants"): the calibrator
with the old hand score and its gap, L2 10, is what fit.py now does (so `extra=pre,prelead`
adds them twice).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import fit  # noqa: E402

from qa.answering import scorer  # noqa: E402
from qa.answering.features import INDEX  # noqa: E402

VARIANTS = [
    "shipped", "weight=question", "weight=sqrt", "thr=question", "extra=pre,prelead",
    "extra=pre,prelead,pretop", "extra=pretop", "extra=prose_score,prose_margin",
    "extra=news_score,news_margin", "extra=passage_rank,ncand", "rl2=5", "cl2=3", "cl2=5",
    "cl2=10", "cl2=5+extra=pre,prelead", "cl2=10+extra=pre,prelead",
]
ORIGINAL = {name: getattr(fit, name) for name in (
    "corpus_weights", "calibration_rows", "choose_threshold", "RANKER_L2", "CALIBRATOR_L2")}


def prescore(x: np.ndarray) -> np.ndarray:
    return np.asarray(x[:, INDEX["dense"]] + 0.6 * x[:, INDEX["overlap"]]
                      + 0.2 * (x[:, INDEX["kind_present"]] - x[:, INDEX["kind_absent"]])
                      - 0.2 * x[:, INDEX["heading"]])


def configure(spec: dict[str, str]) -> None:
    """Patch fit.py's module-level choices for one variant."""
    for name, value in ORIGINAL.items():
        setattr(fit, name, value)
    fit.RANKER_L2 = float(spec.get("rl2", ORIGINAL["RANKER_L2"]))
    fit.CALIBRATOR_L2 = float(spec.get("cl2", ORIGINAL["CALIBRATOR_L2"]))
    weight, extra = spec.get("weight"), [e for e in spec.get("extra", "").split(",") if e]

    def corpus_weights(questions: list[dict[str, Any]]) -> np.ndarray:
        if weight == "question":
            return np.ones(len(questions))
        if weight == "sqrt":
            counts = {c: sum(q["corpus"] == c for q in questions)
                      for c in {q["corpus"] for q in questions}}
            w = np.array([1 / np.sqrt(counts[q["corpus"]]) for q in questions])
            return np.asarray(w * len(questions) / w.sum())
        return np.asarray(ORIGINAL["corpus_weights"](questions))

    def calibration_rows(data: dict[str, Any], ranker: scorer.Linear
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ids, rows, labels = ORIGINAL["calibration_rows"](data, ranker)
        if not extra:
            return ids, rows, labels
        x, pre = data["X"], prescore(data["X"])
        best = dict(enumerate(fit._best(data, ranker)))
        more = []
        for qi, row in zip(ids.tolist(), rows, strict=True):
            b = best[qi][0]
            pool = np.flatnonzero((data["question"] == qi) & ~data["barred"].astype(bool))
            top = pre[pool].max()
            prose, news = 1 - x[b, INDEX["wrapped"]], data["B"][b][10]
            values = {
                "pre": pre[b], "pretop": float(pre[b] >= top - 1e-9),
                "prelead": pre[b] - top,
                "prose_score": prose * row[0], "prose_margin": prose * row[1],
                "news_score": news * row[0], "news_margin": news * row[1],
                "passage_rank": x[b, INDEX["passage_rank"]], "ncand": np.log1p(len(pool)),
            }
            more.append([values[e] for e in extra])
        return ids, np.hstack([rows, np.array(more)]), labels

    def choose_threshold(data: dict[str, Any], ranker: scorer.Linear,
                         calibrator: scorer.Linear) -> float:
        if spec.get("thr") != "question":
            return float(ORIGINAL["choose_threshold"](data, ranker, calibrator))
        values = [float(np.mean([r["utility"] for r in fit.outcomes(
            data, scorer.ScorerParams(ranker, calibrator, float(t), {}))]))
            for t in fit.THRESHOLDS]
        plateau = [float(t) for t, u in zip(fit.THRESHOLDS, values, strict=True)
                   if u >= max(values) - 1e-12]
        return plateau[len(plateau) // 2]

    fit.corpus_weights = corpus_weights
    fit.calibration_rows = calibration_rows
    fit.choose_threshold = choose_threshold


def measure(name: str, data: dict[str, Any]) -> None:
    spec = dict(part.split("=", 1) for part in name.split("+") if part != "shipped")
    configure(spec)
    cv = fit.leave_one_corpus_out(data)
    params = fit.fit(data)
    rows = fit.outcomes(data, params)
    print(f"{name}: threshold {params.threshold}; CV mean {np.mean(list(cv.values())):.4f}")
    for corpus, u in fit.utility_by_corpus(rows).items():
        answerable = [r for r in rows if r["corpus"] == corpus and not r["unanswerable"]]
        accuracy = np.mean([r["answers"] and bool(r["right"]) for r in answerable])
        false_abst = np.mean([not r["answers"] for r in answerable])
        print(f"  {corpus:20} CV {cv[corpus]:+.4f}  tuning utility {u:+.4f}  "
              f"accuracy {accuracy:.3f}  false abstention {false_abst:.3f}")


def main() -> None:
    data = fit.load("tuning")
    for name in sys.argv[1:] or VARIANTS:
        measure(name, data)


if __name__ == "__main__":
    main()
