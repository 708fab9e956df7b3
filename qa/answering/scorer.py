"""The learned scorer: rank candidate sentences, and say how likely the best one is right.

Two small linear models, fitted by eval/scorer/fit.py on the tuning questions of every corpus
at once and shipped in scorer.json beside this file:

- the *ranker* scores each candidate sentence from its features (features.FEATURES); it was
  fitted listwise (softmax over a question's candidates, the right ones as targets), so its
  scores order the sentences of one question and mean nothing across questions;
- the *calibrator* turns the best candidate's situation (its ranker score, the margin over
  the runner-up, its similarities, whether a short answer of the asked kind was found…) into
  the probability that the answer is right (logistic regression: Platt scaling extended to a
  few features). `Answer.confidence` is that probability.

The abstention threshold is the probability that maximised the utility (+1 right answer or
right abstention, 0 abstention on an answerable question, -1 wrong answer) over the tuning
sets; it is stored with the models.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from qa.answering.features import FEATURES, Candidate
from qa.errors import QAError

PARAMS_PATH = Path(__file__).with_name("scorer.json")
PARAMS_FORMAT = "qa-scorer/1"

# What the calibrator reads of the best candidate besides its ranker score and lead:
# computed by `pipeline.calibration_base`, stored per candidate by eval/scorer/collect.py.
CALIBRATION_BASE: tuple[str, ...] = (
    "dense",  # its cosine to the question
    "overlap",  # its IDF-weighted overlap with the question
    "plain_overlap",
    "passage_score",  # its passage's fused score over the best passage's
    "coverage",  # share of the question's words the corpus holds (translations included)
    "pinned",  # share of the question's names and rare words in it or its neighbours
    "question_words",  # log of the number of the question's content words
    "phrase",  # a short answer was found in it
    "typed_phrase",  # …of the asked kind (date, quantity, name, option, path…)
    "extended",  # the answer takes in a neighbouring sentence
    "kind_news",  # the question asks for a date, quantity, place, person or organisation
    "kind_technical",  # …for a command, option, path, package, version, or how to do it
    "kind_definition",  # "what is X"
    "wrapped",  # its document's share of short lines: reference text vs running prose
    "wrapped_other",  # …for a question of no particular kind ("why", "what did…")
    "wrapped_dense",
    "wrapped_overlap",
)
CALIBRATION_FEATURES: tuple[str, ...] = (
    "rank_score",  # the ranker's score of the best candidate
    "margin",  # its lead over the runner-up (0 when alone)
    # The old hand-weighted score (`hand_score`) of the best candidate, and how far it falls
    # behind the question's best hand score (0 when both agree): a second opinion on the
    # ranking that lets the calibrator trust agreement. Leave-one-corpus-out utility 0.443 ->
    # 0.458, the seeds' tuning utility 0.755 -> 0.767 (eval/scorer/REPORT.md).
    "hand_score",
    "hand_lead",
    *CALIBRATION_BASE,
)


@dataclass(frozen=True)
class Linear:
    """A linear model over standardised features: w · (x - mean) / scale + bias."""

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out: np.ndarray = ((x - self.mean) / self.scale) @ self.weights + self.bias
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "mean": _round(self.mean),
                "scale": _round(self.scale), "weights": _round(self.weights),
                "bias": round(float(self.bias), 8)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Linear:
        return cls(tuple(d["names"]), np.asarray(d["mean"], float),
                   np.asarray(d["scale"], float), np.asarray(d["weights"], float),
                   float(d["bias"]))


def _round(a: np.ndarray) -> list[float]:
    return [round(float(v), 8) for v in a]


@dataclass(frozen=True)
class ScorerParams:
    ranker: Linear
    calibrator: Linear
    threshold: float
    info: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"format": PARAMS_FORMAT, "ranker": self.ranker.to_dict(),
                "calibrator": self.calibrator.to_dict(),
                "threshold": round(self.threshold, 4), "info": self.info}


def params_from_dict(d: dict[str, Any]) -> ScorerParams:
    """Parameters from their JSON form; QAError when they do not fit this code."""
    if d.get("format") != PARAMS_FORMAT:
        raise QAError(f"scorer parameters have format {d.get('format')!r}, not {PARAMS_FORMAT}")
    ranker, calibrator = Linear.from_dict(d["ranker"]), Linear.from_dict(d["calibrator"])
    if ranker.names != FEATURES or calibrator.names != CALIBRATION_FEATURES:
        raise QAError("scorer parameters were fitted on other features: run "
                      "`python eval/scorer/fit.py` to refit them")
    return ScorerParams(ranker, calibrator, float(d["threshold"]), dict(d.get("info", {})))


@lru_cache(maxsize=4)
def load_params(path: Path = PARAMS_PATH) -> ScorerParams:
    """The shipped (or given) scorer parameters, read once."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise QAError(f"cannot read scorer parameters {path}: {exc}") from exc
    return params_from_dict(data)


def rank_scores(params: ScorerParams, candidates: list[Candidate]) -> np.ndarray:
    """The ranker's score of each candidate."""
    if not candidates:
        return np.zeros(0)
    return params.ranker(np.stack([c.features for c in candidates]))


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


def hand_score(x: np.ndarray) -> np.ndarray:
    """The old hand-weighted sentence score of feature rows (one row or a matrix): dense
    similarity + 0.6 IDF overlap + 0.2 asked kind present (or -0.2 absent) - 0.2 heading."""
    return np.asarray(x[..., _DENSE] + 0.6 * x[..., _OVERLAP]
                      + 0.2 * (x[..., _KIND_PRESENT] - x[..., _KIND_ABSENT])
                      - 0.2 * x[..., _HEADING])


_DENSE, _OVERLAP, _KIND_PRESENT, _KIND_ABSENT, _HEADING = (
    FEATURES.index(n) for n in ("dense", "overlap", "kind_present", "kind_absent", "heading"))


def calibration_vector(
    best: Candidate, runner_up: Candidate | None, base: np.ndarray, top_hand: float
) -> np.ndarray:
    """The calibrator's input for the best candidate (see CALIBRATION_FEATURES); `top_hand`:
    the best hand score of the question's candidates (barred ones aside)."""
    lead = best.score - runner_up.score if runner_up is not None else 0.0
    hand = float(hand_score(best.features))
    return np.concatenate([[best.score, lead, hand, hand - top_hand], base])


def confidence(params: ScorerParams, vector: np.ndarray) -> float:
    """The calibrated probability that the answer is right."""
    return sigmoid(float(params.calibrator(vector[None, :])[0]))
