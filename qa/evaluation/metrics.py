"""Question set -> metrics and reports.

`qa eval` reads a JSONL question file, checks it against the corpus, asks every question through
an *answer function* (the library, or a running service over HTTP) and scores the result dicts it
gets back (the shape of `Answer.to_dict()`), so both ways of running share all metric code.

Definitions (each computed overall and per language):

* A cited passage is *relevant* when its [start, end) overlaps an evidence span of the question in
  the same document. Evidence spans are every occurrence of each evidence string in the corpus
  (only in its named document when the item gives a doc_id).
* Recall@c: share of answerable questions with a relevant passage in the top c (hit rate).
* MRR@10: mean of 1/rank of the first relevant passage (0 when none in the top 10).
* nDCG@10, binary relevance. The relevance units are the question's evidence items, with items
  whose spans overlap merged into one unit. A passage gains 1 when it hits at least one unit no
  earlier passage hit (overlapping chunks that hit the same sentence count once); the ideal DCG
  puts min(#units, 10) gains at the top ranks. So nDCG is in [0, 1]; with one unit it is
  1/log2(1 + first relevant rank). (Two units inside one passage cap it below 1; rare here.)
* accuracy: the normalised answer contains a normalised accepted answer (see `normalize_answer`);
  an abstention on an answerable question is wrong.
* token F1: SQuAD-style bag-of-tokens F1, best over the accepted answers (0 on an abstention).
* evidence hit: the answer span overlaps an evidence span.
* false abstention: share of answerable questions on which qa abstained; correct abstention:
  share of unanswerable questions on which it abstained.
* short answer: `short_answer.text` of the result, or its normalised `value` (the year of a
  year question, the number of a quantity). short hit: either holds an accepted answer (as
  accuracy does for the sentence); short exact match: normalised, either equals one; short
  F1: the better token F1 of the two (all three 0 when there is no short answer or qa
  abstained).
* date accuracy: over questions with a `resolved_date`, the short answer's value equals it.
* abstention is also split: off-topic (unanswerable, not `near_miss`) and near-miss.
* passed (all questions): share of questions answered right or rightly abstained on; utility:
  mean of +1 (right answer or right abstention), 0 (false abstention), -1 (wrong answer).
* latency p50/p95: wall time around the answer function, all questions (the first, cold call
  included), percentiles by linear interpolation.

With k < 10 the @10 metrics are reported at @k instead (they cannot see further).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from qa.errors import QAError
from qa.evaluation.normalize import answer_contains, normalize_answer, token_f1
from qa.evaluation.questions import EvidenceSpan, Question

AnswerFn = Callable[[str, int], dict[str, Any]]
Progress = Callable[[int, int], None]

REPORT_FORMAT = "qa-eval/1"
RECALL_CUTOFFS = (1, 5, 10)
RANK_CUTOFF = 10  # for MRR and nDCG


def _overlaps(doc_id: str, start: int, end: int, span: EvidenceSpan) -> bool:
    return doc_id == span.doc_id and start < span.end and span.start < end


def _evidence_units(question: Question) -> list[list[EvidenceSpan]]:
    """Evidence items, merged when their spans overlap: the relevance units of nDCG."""
    units = [list(ev.spans) for ev in question.evidence]
    merged = True
    while merged:
        merged = False
        for i in range(len(units)):
            for j in range(i + 1, len(units)):
                if any(_overlaps(a.doc_id, a.start, a.end, b) for a in units[i] for b in units[j]):
                    units[i].extend(units.pop(j))
                    merged = True
                    break
            if merged:
                break
    return units


def ranking_metrics(
    question: Question, citations: Sequence[Mapping[str, Any]], *, cutoff: int = RANK_CUTOFF
) -> tuple[int | None, float]:
    """(1-based rank of the first relevant citation or None, nDCG@cutoff) for one question."""
    units = _evidence_units(question)
    first: int | None = None
    hit: set[int] = set()
    dcg = 0.0
    for pos, c in enumerate(citations, start=1):
        doc_id, start, end = c["doc_id"], c["start"], c["end"]
        hits = {i for i, unit in enumerate(units)
                if any(_overlaps(doc_id, start, end, s) for s in unit)}
        if hits and first is None:
            first = pos
        if pos <= cutoff and hits - hit:
            dcg += 1 / math.log2(pos + 1)
        hit |= hits
    ideal = sum(1 / math.log2(pos + 1) for pos in range(1, min(len(units), cutoff) + 1))
    return first, (dcg / ideal if ideal else 0.0)


@dataclass(frozen=True)
class QuestionResult:
    """One question's outcome; `correct` is accuracy, or abstention when unanswerable."""

    id: str
    lang: str
    question: str
    unanswerable: bool
    first_relevant_rank: int | None
    ndcg: float | None
    answer: str | None
    answer_span: dict[str, Any] | None
    abstained: bool
    confidence: float | None
    correct: bool
    f1: float | None
    evidence_hit: bool | None
    latency_ms: float
    near_miss: bool = False
    short_answer: str | None = None
    short_value: Any = None
    short_hit: bool | None = None
    short_exact: bool | None = None
    short_f1: float | None = None
    resolved_date: str | None = None
    date_correct: bool | None = None
    # The section (heading path) of each cited passage, in rank order; None: no headings.
    sections: list[str | None] = field(default_factory=list)
    note: str | None = None


def check_result(result: Any) -> dict[str, Any]:
    """The result dict if it has the shape of `Answer.to_dict()`, else QAError."""
    problem = None
    if not isinstance(result, dict):
        problem = "not a JSON object"
    elif not isinstance(result.get("abstained"), bool):
        problem = "'abstained' is missing"
    elif not isinstance(result.get("citations"), list) or not all(
        isinstance(c, dict) and isinstance(c.get("doc_id"), str)
        and isinstance(c.get("start"), int) and isinstance(c.get("end"), int)
        for c in result["citations"]
    ):
        problem = "'citations' is not a list of {doc_id, start, end}"
    elif not result["abstained"] and not (
        isinstance(result.get("answer"), str) and isinstance(result.get("answer_span"), dict)
    ):
        problem = "an answer that is not an abstention lacks 'answer' or 'answer_span'"
    if problem:
        raise QAError(f"unexpected answer result ({problem}): {str(result)[:200]}")
    return dict(result)


def score_result(
    question: Question, result: Mapping[str, Any], *, k: int, latency_ms: float = 0.0,
    fold_accents: bool = True,
) -> QuestionResult:
    """Score one result dict (the shape of `Answer.to_dict()`) against its question."""
    citations = list(result["citations"])[:k]
    abstained = bool(result["abstained"])
    answer = None if abstained else result.get("answer")
    span = None if abstained else result.get("answer_span")
    if question.unanswerable:
        rank, ndcg, f1, ev_hit, correct = None, None, None, None, abstained
    else:
        rank, ndcg = ranking_metrics(question, citations, cutoff=min(k, RANK_CUTOFF))
        if answer is None:
            f1, ev_hit, correct = 0.0, False, False
        else:
            correct = answer_contains(answer, question.answers, fold_accents=fold_accents)
            f1 = token_f1(answer, question.answers, fold_accents=fold_accents)
            ev_hit = span is not None and any(
                _overlaps(span["doc_id"], span["start"], span["end"], s)
                for ev in question.evidence for s in ev.spans
            )
    sa = None if abstained else result.get("short_answer")
    short_text = sa.get("text") if isinstance(sa, dict) and isinstance(sa.get("text"), str) \
        else None
    short_value = sa.get("value") if isinstance(sa, dict) else None
    short_hit = short_exact = short_f1 = date_correct = None
    if not question.unanswerable:
        # The short answer is its text and its normalised value: "août" with value "2023"
        # answers "En quelle année…?", "3 000 soldats" with 3000 answers "3000".
        forms = [short_text] if short_text is not None else []
        if isinstance(short_value, str | int | float) and not isinstance(short_value, bool) \
                and str(short_value) != short_text:
            forms.append(str(short_value))
        short_hit = any(answer_contains(f, question.answers, fold_accents=fold_accents)
                        for f in forms)
        short_exact = any(
            normalize_answer(f, fold_accents=fold_accents)
            == normalize_answer(a, fold_accents=fold_accents)
            for f in forms for a in question.answers)
        short_f1 = round(max((token_f1(f, question.answers, fold_accents=fold_accents)
                              for f in forms), default=0.0), 4)
        if question.resolved_date is not None:
            date_correct = short_value == question.resolved_date
    note = result.get("note")
    confidence = result.get("confidence")
    return QuestionResult(
        id=question.id, lang=question.lang, question=question.question,
        unanswerable=question.unanswerable, first_relevant_rank=rank,
        ndcg=None if ndcg is None else round(ndcg, 4), answer=answer,
        answer_span=dict(span) if span else None, abstained=abstained,
        confidence=float(confidence) if isinstance(confidence, int | float) else None,
        correct=correct, f1=None if f1 is None else round(f1, 4), evidence_hit=ev_hit,
        latency_ms=round(latency_ms, 2), near_miss=question.near_miss,
        short_answer=short_text, short_value=short_value, short_hit=short_hit,
        short_exact=short_exact, short_f1=short_f1, resolved_date=question.resolved_date,
        date_correct=date_correct, note=note if isinstance(note, str) else None,
        sections=[c.get("section") for c in citations],
    )


def run_eval(
    questions: Sequence[Question], answer_fn: AnswerFn, *, k: int,
    progress: Progress | None = None, fold_accents: bool = True,
) -> list[QuestionResult]:
    """Ask every question through answer_fn(question, k) -> result dict, and score it.

    The questions must have been through `locate_evidence`. Errors from answer_fn propagate.
    """
    if k < 1:
        raise QAError(f"k must be at least 1, got {k}")
    for q in questions:
        if not q.unanswerable and not all(ev.spans for ev in q.evidence):
            raise ValueError(f"question {q.id} has unlocated evidence: call locate_evidence first")
    results = []
    if progress:
        progress(0, len(questions))
    for done, q in enumerate(questions, start=1):
        started = time.perf_counter()
        result = check_result(answer_fn(q.question, k))
        latency = (time.perf_counter() - started) * 1000
        results.append(score_result(q, result, k=k, latency_ms=latency,
                                    fold_accents=fold_accents))
        if progress:
            progress(done, len(questions))
    return results


# ---------------------------------------------------------------------------- summaries


def metric_names(k: int) -> list[str]:
    """The per-question metrics a run with this k reports, in display order."""
    cut = min(k, RANK_CUTOFF)
    recalls = sorted({c for c in RECALL_CUTOFFS if c <= k} | {cut})
    return [
        *(f"recall@{c}" for c in recalls), f"mrr@{cut}", f"ndcg@{cut}",
        "accuracy", "f1", "evidence_hit", "short_hit", "short_exact", "short_f1",
        "date_accuracy", "false_abstention", "correct_abstention", "abstention_off_topic",
        "abstention_near_miss", "overall_accuracy", "utility", "citations_with_section",
    ]


LATENCY_METRICS = ("latency_p50_ms", "latency_p95_ms")
LOWER_IS_BETTER = frozenset({"false_abstention", *LATENCY_METRICS})
LABELS = {
    "accuracy": "accuracy", "f1": "token F1", "evidence_hit": "evidence hit",
    "false_abstention": "false abstention (answerable)",
    "correct_abstention": "abstention (unanswerable)",
    "short_hit": "short answer holds answer", "short_exact": "short answer exact match",
    "short_f1": "short answer token F1", "date_accuracy": "date resolved right",
    "abstention_off_topic": "abstention (off-topic)",
    "abstention_near_miss": "abstention (near-miss)",
    "overall_accuracy": "passed (all questions)", "utility": "utility (+1/0/-1)",
    "latency_p50_ms": "latency p50 (ms)", "latency_p95_ms": "latency p95 (ms)",
    "questions": "questions", "answerable": "answerable", "unanswerable": "unanswerable",
    "citations_with_section": "citations naming a section",
}


def metric_label(name: str) -> str:
    base, _, cut = name.partition("@")
    prefix = {"recall": "Recall", "mrr": "MRR", "ndcg": "nDCG"}.get(base)
    return f"{prefix}@{cut}" if prefix else LABELS.get(name, name)


def question_score(row: Mapping[str, Any], metric: str) -> float | None:
    """One question's score on a metric (a per-question row of a report); None if n/a."""
    answerable = not row["unanswerable"]
    if metric == "overall_accuracy":
        return float(row["correct"])
    if metric == "utility":  # +1 right answer or right abstention, 0 false abstention, -1 wrong
        return 1.0 if row["correct"] else (0.0 if answerable and row["abstained"] else -1.0)
    if metric == "correct_abstention":
        return None if answerable else float(row["abstained"])
    if metric in ("abstention_off_topic", "abstention_near_miss"):
        if answerable or bool(row.get("near_miss")) != (metric == "abstention_near_miss"):
            return None
        return float(row["abstained"])
    if metric == "citations_with_section":  # how much of the structure reaches a reader
        sections = row.get("sections") or []  # reports written before sections lack it
        return sum(1 for sec in sections if sec) / len(sections) if sections else None
    if metric == "date_accuracy":
        value = row.get("date_correct")
        return None if value is None else float(value)
    if not answerable:
        return None
    if metric == "false_abstention":
        return float(row["abstained"])
    if metric == "accuracy":
        return float(row["correct"])
    if metric in ("f1", "evidence_hit"):
        return float(row[metric])
    if metric in ("short_hit", "short_exact", "short_f1"):
        value = row.get(metric)  # reports written before short answers lack it
        return None if value is None else float(value)
    base, _, cut = metric.partition("@")
    rank = row["first_relevant_rank"]
    within = rank is not None and rank <= int(cut)
    if base == "recall":
        return float(within)
    if base == "mrr":
        return 1 / rank if within else 0.0
    if base == "ndcg":
        return float(row["ndcg"])
    raise ValueError(f"unknown metric {metric!r}")


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def _summary(rows: Sequence[Mapping[str, Any]], k: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "questions": len(rows),
        "answerable": sum(1 for r in rows if not r["unanswerable"]),
        "unanswerable": sum(1 for r in rows if r["unanswerable"]),
    }
    for name in metric_names(k):
        scores = [s for r in rows if (s := question_score(r, name)) is not None]
        out[name] = _mean(scores)
    latencies = [float(r["latency_ms"]) for r in rows]
    out["latency_p50_ms"] = _percentile(latencies, 50)
    out["latency_p95_ms"] = _percentile(latencies, 95)
    return out


def summarize(rows: Sequence[Mapping[str, Any]], *, k: int) -> dict[str, Any]:
    """{"overall": metrics, "by_lang": {lang: metrics}} over per-question rows."""
    langs = sorted({r["lang"] for r in rows})
    return {
        "overall": _summary(rows, k),
        "by_lang": {lang: _summary([r for r in rows if r["lang"] == lang], k) for lang in langs},
    }


def make_report(
    results: Sequence[QuestionResult], *, k: int, config: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON report: config (plus k and a timestamp), summary and per-question results."""
    rows = [asdict(r) for r in results]
    timestamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return {
        "format": REPORT_FORMAT,
        "config": {**config, "k": k, "timestamp": config.get("timestamp", timestamp)},
        "summary": summarize(rows, k=k),
        "questions": rows,
    }
