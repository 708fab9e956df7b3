"""Fit the answer scorer from eval/scorer/data/tuning.npz -> qa/answering/scorer.json.

    python eval/scorer/fit.py            # refit and write the parameters and FIT.md
    python eval/scorer/fit.py --check    # refit and fail unless it equals the shipped file

Deterministic (Newton's method from zeros, no sampling): the same data gives the same
parameters, which tests/test_scorer.py checks. Every corpus weighs the same, whatever its
number of questions, so the seeds (the largest set) do not decide alone.

1. Ranker: a linear model over features.FEATURES, fitted listwise: for each answerable
   question with a right candidate, the softmax over its candidates (barred ones excluded)
   should put its mass on the right ones (any of them: -log of their summed probability);
   L2 penalty RANKER_L2. (A softmax towards all right ones evenly ranked worse: the seeds'
   tuning top-1 fell from 103 to 101 right, against 104 this way.)
2. Calibrator: logistic regression over scorer.CALIBRATION_FEATURES of each question's best
   candidate (by the ranker) that passes the pipeline's checks (its ranker score and lead,
   its old hand score and that score's gap to the question's best, `calibration_base`);
   target: answering with it is right (never, on an unanswerable question); L2 penalty
   CALIBRATOR_L2.
3. Threshold: the probability that maximises the mean over corpora of the utility (+1 right
   answer or right abstention, 0 abstention on an answerable question, -1 wrong answer).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from qa.answering import scorer  # noqa: E402
from qa.answering.features import FEATURES  # noqa: E402

HERE = Path(__file__).resolve().parent
RANKER_L2 = 1.0
# Measured by leave-one-corpus-out utility (REPORT.md, variants.py): 1 -> 10 raised it on
# every corpus left out; a calibrator fitted on five corpora must not lean on any one.
CALIBRATOR_L2 = 10.0
MM_STEPS = 60
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.01), 2)
BINS = 10


def load(part: str) -> dict[str, Any]:
    with np.load(HERE / "data" / f"{part}.npz") as z:
        data = {k: z[k] for k in z.files}
    if tuple(str(f) for f in data.pop("features")) != FEATURES or tuple(
            str(f) for f in data.pop("base_features")) != scorer.CALIBRATION_BASE:
        raise SystemExit(f"{part}.npz was collected with other features: run "
                         "python eval/scorer/collect.py first")
    data["questions"] = json.loads(str(data["questions"]))
    data["X"] = data["X"].astype(np.float64)
    data["B"] = data["B"].astype(np.float64)
    return data


def corpus_weights(questions: list[dict[str, Any]]) -> np.ndarray:
    """Per-question weights: every corpus sums to the same, the total to len(questions)."""
    corpora = sorted({q["corpus"] for q in questions})
    counts = {c: sum(q["corpus"] == c for q in questions) for c in corpora}
    w = np.array([len(questions) / (len(corpora) * counts[q["corpus"]]) for q in questions])
    return w


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    return np.round(mean, 8), np.round(scale, 8)


def _newton(f: Any, w: np.ndarray, *, steps: int = 30) -> np.ndarray:
    """Minimise a convex loss by Newton steps with backtracking (deterministic)."""
    loss, grad, hess = f(w)
    for _ in range(steps):
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-6:
            new = w - t * step
            new_loss, new_grad, new_hess = f(new)
            if new_loss <= loss - 1e-4 * t * float(grad @ step):
                break
            t /= 2
        else:
            break
        converged = loss - new_loss < 1e-10
        w, loss, grad, hess = new, new_loss, new_grad, new_hess
        if converged:
            break
    return w


def fit_ranker(data: dict[str, Any], weights: np.ndarray) -> scorer.Linear:
    """Maximise, over answerable questions, the probability (softmax over a question's
    candidates) that the top candidate is one of the right ones: -log sum_right p. That is
    not convex; it is minimised by majorisation (the concave part linearised at the current
    weights, the convex rest minimised by Newton steps), deterministically from zero."""
    X, qidx = data["X"], data["question"]
    usable = ~data["barred"].astype(bool)
    mean, scale = _standardise(X[usable])
    Z = (X - mean) / scale
    groups = []
    for qi, q in enumerate(data["questions"]):
        rows = np.flatnonzero((qidx == qi) & usable)
        right = data["right"][rows].astype(bool)
        if q["unanswerable"] or not right.any() or right.all():
            continue  # nothing to learn about ordering
        groups.append((Z[rows], right, weights[qi]))

    def softmax(s: np.ndarray) -> np.ndarray:
        e = np.exp(s - s.max())
        return e / e.sum()

    w = np.zeros(Z.shape[1])
    for _ in range(MM_STEPS):
        # The share of the right candidates among themselves, at the current weights.
        targets = [softmax(np.where(right, z @ w, -np.inf)) for z, right, _ in groups]

        def majoriser(v: np.ndarray, targets: list[np.ndarray] = targets
                      ) -> tuple[float, np.ndarray, np.ndarray]:
            loss = 0.5 * RANKER_L2 * float(v @ v)
            grad = RANKER_L2 * v
            hess = RANKER_L2 * np.eye(len(v))
            for (z, _, qw), target in zip(groups, targets, strict=True):
                s = z @ v
                m = s.max()
                e = np.exp(s - m)
                p = e / e.sum()
                loss += qw * float(-(target @ s) + m + np.log(e.sum()))
                grad = grad + qw * z.T @ (p - target)
                zp = z.T @ p
                hess = hess + qw * (z.T @ (z * p[:, None]) - np.outer(zp, zp))
            return loss, grad, hess

        new = _newton(majoriser, w, steps=3)
        done = float(np.max(np.abs(new - w))) < 1e-7
        w = new
        if done:
            break
    return scorer.Linear(FEATURES, mean, scale, np.round(w, 8), 0.0)


def _best(data: dict[str, Any], ranker: scorer.Linear) -> list[tuple[int, int | None]]:
    """Per question: row of the best non-barred candidate (or -1) and of the runner-up."""
    scores = ranker(data["X"])
    out = []
    for qi in range(len(data["questions"])):
        rows = np.flatnonzero((data["question"] == qi) & ~data["barred"].astype(bool))
        if not len(rows):
            out.append((-1, None))
            continue
        order = rows[np.argsort(-scores[rows], kind="stable")]
        out.append((int(order[0]), int(order[1]) if len(order) > 1 else None))
    return out


def calibration_rows(
    data: dict[str, Any], ranker: scorer.Linear
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(question ids whose best candidate passes the checks, their calibrator inputs, labels)."""
    scores = ranker(data["X"])
    hand = scorer.hand_score(data["X"])
    usable = ~data["barred"].astype(bool)
    ids, rows, labels = [], [], []
    for qi, (best, second) in enumerate(_best(data, ranker)):
        if best < 0 or not data["check_ok"][best]:
            continue
        q = data["questions"][qi]
        ids.append(qi)
        lead = scores[best] - scores[second] if second is not None else 0.0
        top_hand = hand[(data["question"] == qi) & usable].max()
        rows.append([scores[best], lead, hand[best], hand[best] - top_hand, *data["B"][best]])
        labels.append(float(bool(data["right"][best]) and not q["unanswerable"]))
    return np.array(ids, int), np.array(rows), np.array(labels)


def fit_calibrator(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> scorer.Linear:
    mean, scale = _standardise(x)
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    penalty = np.full(z.shape[1], CALIBRATOR_L2)
    penalty[-1] = 0.0  # the intercept is not shrunk

    def loss_grad_hess(w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        s = z @ w
        p = 1 / (1 + np.exp(-s))
        loss = float(weights @ (np.logaddexp(0, s) - y * s)) + 0.5 * float(penalty @ (w * w))
        grad = z.T @ (weights * (p - y)) + penalty * w
        hess = (z * (weights * p * (1 - p))[:, None]).T @ z + np.diag(penalty) \
            + 1e-6 * np.eye(len(w))
        return loss, grad, hess

    w = _newton(loss_grad_hess, np.zeros(z.shape[1]))
    return scorer.Linear(scorer.CALIBRATION_FEATURES, mean, scale, np.round(w[:-1], 8),
                         round(float(w[-1]), 8))


def outcomes(
    data: dict[str, Any], params: scorer.ScorerParams, threshold: float | None = None
) -> list[dict[str, Any]]:
    """Per question: confidence of the best candidate, whether qa answers, and the outcome."""
    t = params.threshold if threshold is None else threshold
    ids, x, y = calibration_rows(data, params.ranker)
    probs = dict(zip(ids.tolist(), (1 / (1 + np.exp(-params.calibrator(x)))).tolist(),
                     strict=True)) if len(ids) else {}
    right = dict(zip(ids.tolist(), y.tolist(), strict=True))
    out = []
    for qi, q in enumerate(data["questions"]):
        p = probs.get(qi)
        answers = p is not None and p >= t
        utility = (1.0 if right[qi] else -1.0) if answers else float(q["unanswerable"])
        out.append({"corpus": q["corpus"], "file": q["file"], "p": p, "right": right.get(qi),
                    "answers": answers, "utility": utility,
                    "unanswerable": q["unanswerable"]})
    return out


def utility_by_corpus(rows: list[dict[str, Any]]) -> dict[str, float]:
    corpora = sorted({r["corpus"] for r in rows})
    return {c: round(float(np.mean([r["utility"] for r in rows if r["corpus"] == c])), 4)
            for c in corpora}


def choose_threshold(data: dict[str, Any], ranker: scorer.Linear,
                     calibrator: scorer.Linear) -> float:
    best_t, best_u = 0.5, -np.inf
    values = []
    for t in THRESHOLDS:
        rows = outcomes(data, scorer.ScorerParams(ranker, calibrator, float(t), {}))
        u = float(np.mean(list(utility_by_corpus(rows).values())))
        values.append(u)
        if u > best_u + 1e-12:
            best_t, best_u = float(t), u
    # The middle of the plateau of best thresholds, not its edge.
    plateau = [float(t) for t, u in zip(THRESHOLDS, values, strict=True) if u >= best_u - 1e-12]
    if plateau:
        best_t = plateau[len(plateau) // 2]
    return best_t


def reliability(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Binned predicted probability vs observed share right, over questions with a checked
    best candidate (the others abstain whatever their probability)."""
    out = []
    for b in range(BINS):
        lo, hi = b / BINS, (b + 1) / BINS
        inside = [r for r in rows if r["p"] is not None
                  and (lo <= r["p"] < hi or (b == BINS - 1 and r["p"] == 1.0))]
        if inside:
            out.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": len(inside),
                        "predicted": round(float(np.mean([r["p"] for r in inside])), 4),
                        "observed": round(float(np.mean([r["right"] for r in inside])), 4)})
    return out


def fit(data: dict[str, Any]) -> scorer.ScorerParams:
    weights = corpus_weights(data["questions"])
    ranker = fit_ranker(data, weights)
    ids, x, y = calibration_rows(data, ranker)
    calibrator = fit_calibrator(x, y, weights[ids])
    threshold = choose_threshold(data, ranker, calibrator)
    params = scorer.ScorerParams(ranker, calibrator, threshold, {})
    rows = outcomes(data, params)
    info = {
        "fitted_by": "eval/scorer/fit.py on eval/scorer/data/tuning.npz",
        "files": sorted({q["file"] for q in data["questions"]}),
        "questions": len(data["questions"]),
        "candidates": len(data["X"]),
        "ranker_l2": RANKER_L2, "calibrator_l2": CALIBRATOR_L2,
        "tuning_utility": utility_by_corpus(rows),
    }
    return scorer.ScorerParams(ranker, calibrator, threshold, info)


def subset(data: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    """The data of the questions of some corpora only (question ids renumbered)."""
    qs = data["questions"]
    old_ids = [i for i, q in enumerate(qs) if q["corpus"] in keep]
    new_id = {old: new for new, old in enumerate(old_ids)}
    rows = np.isin(data["question"], old_ids)
    out = {k: v[rows] for k, v in data.items() if isinstance(v, np.ndarray)}
    out["question"] = np.array([new_id[int(i)] for i in data["question"][rows]], int)
    out["questions"] = [qs[i] for i in old_ids]
    return out


def leave_one_corpus_out(data: dict[str, Any]) -> dict[str, float]:
    """Utility on each corpus of a scorer fitted (threshold included) on the other corpora:
    how it does on a kind of document it never saw."""
    corpora = sorted({q["corpus"] for q in data["questions"]})
    out = {}
    for c in corpora:
        params = fit(subset(data, set(corpora) - {c}))
        out[c] = utility_by_corpus(outcomes(subset(data, {c}), params))[c]
    return out


def _md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(c) for c in r) + " |" for r in rows)]


def write_fit_report(params: scorer.ScorerParams, parts: dict[str, dict[str, Any]]) -> None:
    lines = ["# The fitted answer scorer", "",
             "Written by `python eval/scorer/fit.py` (do not edit). Utility: +1 right answer or "
             "right abstention, 0 abstention on an answerable question, -1 wrong answer; "
             "computed here from the collected candidates (`qa eval` gives the same decisions).",
             "", f"Threshold: **{params.threshold}** (probability that the answer is right).", "",
             "## Ranker weights (standardised features)", ""]
    lines += _md_table(["feature", "weight"], [[n, f"{w:+.3f}"] for n, w in sorted(
        zip(params.ranker.names, params.ranker.weights, strict=True), key=lambda t: -abs(t[1]))])
    lines += ["", "## Calibrator weights", ""]
    lines += _md_table(["feature", "weight"], [[n, f"{w:+.3f}"] for n, w in zip(
        params.calibrator.names, params.calibrator.weights, strict=True)]
        + [["(intercept)", f"{params.calibrator.bias:+.3f}"]])
    for part, data in parts.items():
        rows = outcomes(data, params)
        lines += ["", f"## {part}: utility by corpus", ""]
        lines += _md_table(["corpus", "questions", "utility"], [
            [c, sum(r["corpus"] == c for r in rows), u]
            for c, u in utility_by_corpus(rows).items()])
        lines += ["", f"## {part}: reliability (best candidate that passes the checks)", ""]
        lines += _md_table(["bin", "questions", "predicted", "observed"],
                           [[b["bin"], b["n"], b["predicted"], b["observed"]]
                            for b in reliability(rows)])
    (HERE / "FIT.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="fail unless refitting reproduces the shipped parameters")
    ap.add_argument("--cv", action="store_true",
                    help="print leave-one-corpus-out utilities of the tuning data, fit nothing")
    args = ap.parse_args()
    if args.cv:
        scores = leave_one_corpus_out(load("tuning"))
        print(f"leave-one-corpus-out utility: {scores}; mean "
              f"{np.mean(list(scores.values())):.4f}")
        return
    params = fit(load("tuning"))
    if args.check:
        shipped = json.loads(scorer.PARAMS_PATH.read_text(encoding="utf-8"))
        if shipped != json.loads(json.dumps(params.to_dict())):
            raise SystemExit("refitting does not reproduce qa/answering/scorer.json")
        print("refit reproduces qa/answering/scorer.json")
        return
    scorer.PARAMS_PATH.write_text(json.dumps(params.to_dict(), indent=1) + "\n",
                                  encoding="utf-8")
    parts = {"tuning": load("tuning")}
    if (HERE / "data" / "heldout.npz").exists():
        parts["held-out (never fitted)"] = load("heldout")
    write_fit_report(params, parts)
    print(f"threshold {params.threshold}; tuning utility {params.info['tuning_utility']}")


if __name__ == "__main__":
    main()
