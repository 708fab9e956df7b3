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
* latency p50/p95: wall time around the answer function, all questions (the first, cold call
  included), percentiles by linear interpolation.

With k < 10 the @10 metrics are reported at @k instead (they cannot see further).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np

from qa.answering import MAX_QUESTION_CHARS, answer_question
from qa.errors import QAError, QuestionSetError

if TYPE_CHECKING:
    from qa.index import Index
    from qa.retrieval import Mode

AnswerFn = Callable[[str, int], dict[str, Any]]
Progress = Callable[[int, int], None]

REPORT_FORMAT = "qa-eval/1"
RECALL_CUTOFFS = (1, 5, 10)
RANK_CUTOFF = 10  # for MRR and nDCG
UNKNOWN_LANG = "und"  # BCP 47 "undetermined", for questions without a lang
# ranx's default is 1000; 10,000 keeps the p-value's own Monte Carlo error near 0.005 at p=0.05.
PERMUTATIONS = 10_000
SEED = 0

# ---------------------------------------------------------------------------- normalisation

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'", "′": "'"})
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae"})
# Digit groups: 1-3 digits, then groups of exactly 3 joined by one and the same separator
# (space -- NBSP and narrow NBSP become spaces under NFKC --, comma or period). A separator
# followed by something other than exactly three digits stops the number, so "2024, 3" and
# "1, 2, 300" (comma then space) or "1,5" stay apart, while "3 000", "3,000", "3.000" and
# "10 000 000" all become digits only. "18 100" would also be joined: a rare misreading we accept.
_THOUSANDS = re.compile(r"(?<![\d.,])(\d{1,3})([ ,.])(\d{3}(?:\2\d{3})*)(?!\d)(?!\2\d)")
# French elisions (l', d', qu', j', n', s', c', m', t') at the start of a word. "aujourd'hui"
# keeps its d' because no word boundary precedes it; English "n't" and "'s" are unaffected.
_ELISION = re.compile(r"\b(?:qu|[ldjnscmt])'(?=\w)")
_PUNCTUATION = re.compile(r"[^\w\s]|_")
ARTICLES = frozenset(["le", "la", "les", "un", "une", "des", "du", "de", "the", "a", "an"])


def normalize_answer(text: str, *, fold_accents: bool = True) -> str:
    """Lower-case, drop punctuation, French elisions and articles, join digit groups, fold accents.

    'L’armée a tiré 3 000 obus' and "l'armee a tire 3,000 obus" both give 'armee tire 3000 obus'.
    """
    text = unicodedata.normalize("NFKC", text).casefold().translate(_APOSTROPHES)
    text = _THOUSANDS.sub(lambda m: m.group(1) + m.group(3).replace(m.group(2), ""), text)
    text = _ELISION.sub("", text)
    if fold_accents:
        decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = _PUNCTUATION.sub(" ", text).split()
    return " ".join(w for w in words if w not in ARTICLES)


def answer_contains(answer: str, accepted: Sequence[str], *, fold_accents: bool = True) -> bool:
    """True when the normalised answer holds a normalised accepted answer, as whole words."""
    padded = f" {normalize_answer(answer, fold_accents=fold_accents)} "
    for gold in accepted:
        norm = normalize_answer(gold, fold_accents=fold_accents)
        if norm and f" {norm} " in padded:
            return True
    return False


def token_f1(answer: str, accepted: Sequence[str], *, fold_accents: bool = True) -> float:
    """SQuAD-style token F1 of the answer, best over the accepted answers (0.0 if none)."""
    pred = normalize_answer(answer, fold_accents=fold_accents).split()
    best = 0.0
    for gold_text in accepted:
        gold = normalize_answer(gold_text, fold_accents=fold_accents).split()
        if not pred or not gold:
            best = max(best, float(pred == gold))
            continue
        common = sum((Counter(pred) & Counter(gold)).values())
        if common:
            precision, recall = common / len(pred), common / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


# ---------------------------------------------------------------------------- question sets


@dataclass(frozen=True)
class EvidenceSpan:
    doc_id: str
    start: int
    end: int


@dataclass(frozen=True)
class Evidence:
    """An evidence item of the question file and, once located, every place it occurs."""

    text: str
    doc_id: str | None = None
    spans: tuple[EvidenceSpan, ...] = ()


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    lang: str
    answers: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    unanswerable: bool
    line: int


def _problems_error(source: str, problems: list[str]) -> QuestionSetError:
    shown = "; ".join(problems[:5])
    more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
    count = "" if len(problems) == 1 else f"{len(problems)} problems: "
    return QuestionSetError(f"{source}: {count}{shown}{more}")


def _parse_evidence(value: Any) -> tuple[list[Evidence], str | None]:
    if not isinstance(value, list):
        return [], "'evidence' must be a list"
    items = []
    for i, item in enumerate(value, start=1):
        if isinstance(item, str) and item:
            items.append(Evidence(item))
        elif (
            isinstance(item, dict)
            and isinstance(item.get("text"), str) and item["text"]
            and isinstance(item.get("doc_id"), str) and item["doc_id"]
        ):
            items.append(Evidence(item["text"], item["doc_id"]))
        else:
            return [], (f"evidence item {i} must be a non-empty string or an object "
                        '{"doc_id": "...", "text": "..."}')
    return items, None


def _parse_question(obj: Any, line: int) -> tuple[Question | None, str | None]:
    """The question of one JSONL line, or (None, what is wrong with it)."""
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    qid = obj.get("id")
    if not isinstance(qid, str) or not qid.strip():
        return None, "missing or empty 'id' (a string)"
    text = obj.get("question")
    if not isinstance(text, str) or not text.strip():
        return None, "missing or empty 'question' (a string)"
    if len(text) > MAX_QUESTION_CHARS:
        return None, f"'question' is longer than {MAX_QUESTION_CHARS} characters"
    lang = obj.get("lang")
    if lang is not None and (not isinstance(lang, str) or not lang.strip()):
        return None, "'lang' must be a language code such as \"fr\""
    unanswerable = obj.get("unanswerable", False)
    if not isinstance(unanswerable, bool):
        return None, "'unanswerable' must be true or false"
    answers = obj.get("answers", [])
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        return None, "'answers' must be a list of strings"
    evidence, problem = _parse_evidence(obj.get("evidence", []))
    if problem:
        return None, problem
    if unanswerable:
        if evidence:
            return None, "an unanswerable question cannot have evidence"
    else:
        if "answers" not in obj or not answers:
            return None, "an answerable question needs 'answers' (accepted answer strings)"
        if any(not normalize_answer(a) for a in answers):
            return None, "an accepted answer is empty once normalised (only articles/punctuation)"
        if not evidence:
            return None, "an answerable question needs 'evidence' (or set \"unanswerable\": true)"
    return Question(
        id=qid, question=text, lang=(lang or UNKNOWN_LANG).strip(), answers=tuple(answers),
        evidence=tuple(evidence), unanswerable=unanswerable, line=line,
    ), None


def parse_questions(text: str, *, source: str = "questions") -> list[Question]:
    """Parse and check a JSONL question set; QuestionSetError names every bad line and id."""
    questions: list[Question] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    # Split on newlines only: str.splitlines() also splits on U+2028 and U+0085, which JSON
    # strings may hold raw (json.dumps(..., ensure_ascii=False) writes them).
    for line_no, line in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            problems.append(f"line {line_no}: not valid JSON ({exc})")
            continue
        question, problem = _parse_question(obj, line_no)
        if question is None:
            qid = obj.get("id") if isinstance(obj, dict) else None
            label = f" ({qid})" if isinstance(qid, str) and qid else ""
            problems.append(f"line {line_no}{label}: {problem}")
            continue
        if question.id in seen:
            problems.append(f"line {line_no} ({question.id}): duplicate id, "
                            f"first used on line {seen[question.id]}")
            continue
        seen[question.id] = line_no
        questions.append(question)
    if not questions and not problems:
        problems.append("no questions in the file")
    if problems:
        raise _problems_error(source, problems)
    return questions


def read_questions(path: Path) -> list[Question]:
    """Read and check a JSONL question file (structure only; see `locate_evidence`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise QuestionSetError(f"question file not found: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionSetError(f"cannot read question file {path}: {exc}") from exc
    return parse_questions(text, source=str(path))


def _occurrences(text: str, needle: str) -> list[int]:
    starts, i = [], text.find(needle)
    while i >= 0:
        starts.append(i)
        i = text.find(needle, i + 1)
    return starts


def _loose(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    return re.sub(r"\s+", " ", text).casefold()


def locate_evidence(
    questions: Sequence[Question], documents: Mapping[str, str], *, source: str = "questions"
) -> list[Question]:
    """The questions with every evidence item located in the documents (doc_id -> exact text).

    Raises QuestionSetError, naming line and id, for evidence found nowhere (or not in its doc_id).
    """
    problems: list[str] = []
    located: list[Question] = []
    loose_docs: dict[str, str] = {}
    for q in questions:
        items = []
        for ev in q.evidence:
            if ev.doc_id is not None and ev.doc_id not in documents:
                problems.append(f"line {q.line} ({q.id}): evidence names doc_id {ev.doc_id!r}, "
                                "which is not in the corpus")
                continue
            doc_ids = [ev.doc_id] if ev.doc_id is not None else sorted(documents)
            spans = tuple(
                EvidenceSpan(d, s, s + len(ev.text))
                for d in doc_ids for s in _occurrences(documents[d], ev.text)
            )
            if not spans:
                where = f"document {ev.doc_id!r}" if ev.doc_id else "any document"
                short = ev.text if len(ev.text) <= 60 else ev.text[:57] + "..."
                hint = ""
                for d in doc_ids:
                    if d not in loose_docs:
                        loose_docs[d] = _loose(documents[d])
                    if _loose(ev.text) in loose_docs[d]:
                        hint = (f" (it occurs in {d!r} with other spaces, apostrophes or case: "
                                "copy it exactly)")
                        break
                problems.append(f"line {q.line} ({q.id}): evidence {short!r} is not in {where}"
                                + hint)
                continue
            items.append(replace(ev, spans=spans))
        located.append(replace(q, evidence=tuple(items)))
    if problems:
        raise _problems_error(source, problems)
    return located


# ---------------------------------------------------------------------------- scoring


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
    confidence = result.get("confidence")
    return QuestionResult(
        id=question.id, lang=question.lang, question=question.question,
        unanswerable=question.unanswerable, first_relevant_rank=rank,
        ndcg=None if ndcg is None else round(ndcg, 4), answer=answer,
        answer_span=dict(span) if span else None, abstained=abstained,
        confidence=float(confidence) if isinstance(confidence, int | float) else None,
        correct=correct, f1=None if f1 is None else round(f1, 4), evidence_hit=ev_hit,
        latency_ms=round(latency_ms, 2),
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
        "accuracy", "f1", "evidence_hit", "false_abstention", "correct_abstention",
    ]


LATENCY_METRICS = ("latency_p50_ms", "latency_p95_ms")
LOWER_IS_BETTER = frozenset({"false_abstention", *LATENCY_METRICS})
LABELS = {
    "accuracy": "accuracy", "f1": "token F1", "evidence_hit": "evidence hit",
    "false_abstention": "false abstention (answerable)",
    "correct_abstention": "abstention (unanswerable)",
    "latency_p50_ms": "latency p50 (ms)", "latency_p95_ms": "latency p95 (ms)",
    "questions": "questions", "answerable": "answerable", "unanswerable": "unanswerable",
}


def metric_label(name: str) -> str:
    base, _, cut = name.partition("@")
    prefix = {"recall": "Recall", "mrr": "MRR", "ndcg": "nDCG"}.get(base)
    return f"{prefix}@{cut}" if prefix else LABELS.get(name, name)


def question_score(row: Mapping[str, Any], metric: str) -> float | None:
    """One question's score on a metric (a per-question row of a report); None if n/a."""
    answerable = not row["unanswerable"]
    if metric == "correct_abstention":
        return None if answerable else float(row["abstained"])
    if not answerable:
        return None
    if metric == "false_abstention":
        return float(row["abstained"])
    if metric == "accuracy":
        return float(row["correct"])
    if metric in ("f1", "evidence_hit"):
        return float(row[metric])
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


def _write_text(path: Path, text: str) -> None:
    path = Path(path)
    if path.parent != Path():
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(report: Mapping[str, Any], path: Path) -> None:
    """Write a report as JSON (replacing the file only once written)."""
    _write_text(path, json.dumps(report, ensure_ascii=False, indent=2) + "\n")


def load_report(path: Path) -> dict[str, Any]:
    """Read a JSON report written by `qa eval --out`."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise QAError(f"cannot read eval report {path}: {exc}") from exc
    if not isinstance(report, dict) or report.get("format") != REPORT_FORMAT or not all(
        k in report for k in ("config", "summary", "questions")
    ):
        raise QAError(f"{path} is not a `qa eval --out` report (format {REPORT_FORMAT})")
    required = ("id", "lang", "question", "unanswerable", "correct", "first_relevant_rank",
                "latency_ms")
    for n, row in enumerate(report["questions"], start=1):
        missing = [k for k in required if not isinstance(row, dict) or k not in row]
        if missing:
            raise QAError(f"{path}: question row {n} lacks {', '.join(missing)}; "
                          "is it a `qa eval --out` report?")
    return report


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


# ---------------------------------------------------------------------------- comparison


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


# ---------------------------------------------------------------------------- formatting


def _fmt(value: Any, metric: str) -> str:
    if value is None:
        return "–"
    if metric in ("questions", "answerable", "unanswerable"):
        return str(value)
    if metric in LATENCY_METRICS:
        return f"{value:.1f}"
    return f"{value:.3f}"


def _summary_rows(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    summary = report["summary"]
    groups = [("all", summary["overall"]), *summary["by_lang"].items()]
    header = ["metric", *(name for name, _ in groups)]
    names = ["questions", "answerable", "unanswerable",
             *metric_names(int(report["config"]["k"])), *LATENCY_METRICS]
    rows = [[metric_label(m), *(_fmt(g.get(m), m) for _, g in groups)] for m in names]
    return header, rows


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                          strict=True))]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def _describe(config: Mapping[str, Any]) -> str:
    if config.get("url"):
        where = f"service {config['url']}"
    else:
        where = f"{config.get('mode', 'hybrid')} retrieval, embedder {config.get('embedder')}"
    return f"{where}, k={config['k']}, {config.get('questions_file', '')}".rstrip(", ")


def format_table(report: Mapping[str, Any]) -> str:
    """The summary as a plain-text table (rows: metrics; columns: all, then each language)."""
    header, rows = _summary_rows(report)
    config = report["config"]
    title = f"qa eval: {_run_name(report)} ({_describe(config)})"
    return f"{title}\n{_text_table(header, rows)}"


def _change_text(c: Mapping[str, Any]) -> str:
    parts = []
    if c["old_correct"] != c["new_correct"]:
        word = ("abstained", "answered") if c["unanswerable"] else ("right", "wrong")
        old = word[0] if c["old_correct"] else word[1]
        new = word[0] if c["new_correct"] else word[1]
        parts.append(f"{old} -> {new}")
    if c["old_rank"] != c["new_rank"]:
        parts.append(f"rank {c['old_rank'] or '-'} -> {c['new_rank'] or '-'}")
    return f"{c['id']} ({', '.join(parts)})"


def _delta(m: Mapping[str, Any]) -> str:
    if m["metric"] in LATENCY_METRICS:
        return f"{m['delta']:+.1f}"
    return f"{m['delta']:+.3f}"


def _p(m: Mapping[str, Any]) -> str:
    return "–" if m["p_value"] is None else f"{m['p_value']:.4f}"


def format_comparison(comparison: Mapping[str, Any]) -> str:
    """Per-metric deltas and changed questions, as plain text."""
    c = comparison
    lines = [f"compared with {c['old']['label']} ({c['old']['timestamp']}): {c['paired']} "
             f"paired questions; two-sided paired randomization test, "
             f"{c['permutations']} permutations"]
    if c["only_old"] or c["only_new"]:
        lines.append(f"not paired: {len(c['only_old'])} only in the old run, "
                     f"{len(c['only_new'])} only in this one")
    if c.get("changed_text"):
        lines.append(f"warning: {len(c['changed_text'])} paired question(s) changed wording: "
                     + ", ".join(c["changed_text"][:10]))
    rows = [[metric_label(m["metric"]), _fmt(m["old"], m["metric"]), _fmt(m["new"], m["metric"]),
             _delta(m), _p(m)] for m in c["metrics"]]
    lines.append(_text_table(["metric", "old", "new", "delta", "p"], rows))
    for name in ("better", "worse"):
        items = c[name]
        shown = ", ".join(_change_text(x) for x in items) if items else "none"
        lines.append(f"{name} ({len(items)}): {shown}")
    return "\n".join(lines)


def _md_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], *, left: int = 1
) -> list[str]:
    """A Markdown table whose first `left` columns are text and the rest numbers."""
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |",
             "|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


def _short(text: str | None, limit: int = 120) -> str:
    if text is None:
        return "(abstained)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def report_markdown(
    report: Mapping[str, Any], *, comparison: Mapping[str, Any] | None = None
) -> str:
    """A Markdown report for humans: config, summary table, comparison, missed questions."""
    config = report["config"]
    overall = report["summary"]["overall"]
    lines = [f"# qa eval: {_run_name(report)}", ""]
    where = (f"service `{config['url']}`" if config.get("url")
             else f"library, {config.get('mode')} retrieval, embedder `{config.get('embedder')}`,"
                  f" index `{config.get('index')}`")
    lines += [
        f"- questions: `{config.get('questions_file')}` ({overall['questions']}: "
        f"{overall['answerable']} answerable, {overall['unanswerable']} unanswerable)",
        f"- run: {where}, k={config['k']}",
        f"- at: {config.get('timestamp')}",
        "",
        "## Summary",
        "",
    ]
    header, rows = _summary_rows(report)
    lines += _md_table(header, rows[3:])  # counts are in the list above
    lines.append("")
    if comparison is not None:
        c = comparison
        lines += [f"## Compared with {c['old']['label']}", "",
                  f"{c['paired']} paired questions; p from a two-sided paired randomization test "
                  f"({c['permutations']} permutations, seed {c['seed']}).", ""]
        lines += _md_table(["metric", "old", "new", "delta", "p"], [
            [metric_label(m["metric"]), _fmt(m["old"], m["metric"]),
             _fmt(m["new"], m["metric"]), _delta(m), _p(m)] for m in c["metrics"]])
        for name in ("better", "worse"):
            lines += ["", f"**{name.capitalize()}** ({len(c[name])}): "
                      + (", ".join(_change_text(x) for x in c[name]) or "none")]
        lines.append("")
    missed = [r for r in report["questions"] if not r["correct"]]
    lines += [f"## Questions not passed ({len(missed)})", ""]
    if missed:
        lines += _md_table(
            ["id", "lang", "question", "answer", "first relevant rank"],
            [[r["id"], r["lang"], ("[unanswerable] " if r["unanswerable"] else "") + r["question"],
              _short(r["answer"]),
              r["first_relevant_rank"] if r["first_relevant_rank"] is not None else "–"]
             for r in missed], left=4)
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def write_markdown(
    report: Mapping[str, Any], path: Path, *, comparison: Mapping[str, Any] | None = None
) -> None:
    _write_text(path, report_markdown(report, comparison=comparison))


def _unique_names(reports: Sequence[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for i, report in enumerate(reports, start=1):
        name = _run_name(report)
        names.append(f"{name} #{i}" if name in names else name)
    return names


def comparison_markdown(
    reports: Sequence[Mapping[str, Any]], *, permutations: int = PERMUTATIONS, seed: int = SEED
) -> str:
    """Several runs side by side: one table per language group, then deltas vs the first run."""
    if not reports:
        raise QAError("no reports to compare")
    names = _unique_names(reports)
    files = sorted({str(r["config"].get("questions_file")) for r in reports})
    lines = ["# Evaluation runs compared", "",
             f"Question set: {', '.join(f'`{f}`' for f in files)}. "
             "Each column is one `qa eval --out` report; bold marks the best value in a row.", ""]
    lines += _md_table(["run", "mode / service", "embedder", "k", "at"], left=5, rows=[
        [n, r["config"].get("url") or r["config"].get("mode"), r["config"].get("embedder") or "–",
         r["config"].get("k"), r["config"].get("timestamp")] for n, r in zip(names, reports,
                                                                              strict=True)])
    k = min(int(r["config"]["k"]) for r in reports)
    metrics = [*metric_names(k), *LATENCY_METRICS]
    langs = sorted({lang for r in reports for lang in r["summary"]["by_lang"]})
    groups = [("All questions", "overall", None)] + [(f"Language: {lang}", "by_lang", lang)
                                                     for lang in langs]
    for title, key, lang in groups:
        summaries = [r["summary"][key] if lang is None else r["summary"][key].get(lang, {})
                     for r in reports]
        counts = sorted({s["questions"] for s in summaries if s})
        lines += ["", f"## {title} ({'/'.join(map(str, counts))} questions)", ""]
        rows = []
        for m in metrics:
            values = [s.get(m) for s in summaries]
            present = [v for v in values if v is not None]
            best = (min(present) if m in LOWER_IS_BETTER else max(present)) if present else None
            rows.append([metric_label(m), *(
                f"**{_fmt(v, m)}**" if v is not None and v == best and len(reports) > 1
                else _fmt(v, m) for v in values)])
        lines += _md_table(["metric", *names], rows)
    if len(reports) > 1:
        comparisons = [compare_reports(reports[0], r, permutations=permutations, seed=seed)
                       for r in reports[1:]]
        lines += ["", f"## Against {names[0]}", "",
                  "Difference from the first run over the questions both answered, with the "
                  f"p-value of a two-sided paired randomization test ({permutations} permutations, "
                  f"seed {seed}); latency has no test.", ""]
        by_metric: dict[str, list[str]] = {}
        for i, c in enumerate(comparisons):
            for m in c["metrics"]:
                cell = _delta(m) if m["p_value"] is None else f"{_delta(m)} (p={_p(m)})"
                by_metric.setdefault(m["metric"], ["–"] * len(comparisons))[i] = cell
        lines += _md_table(["metric", *names[1:]],
                           [[metric_label(m), *cells] for m, cells in by_metric.items()])
    return "\n".join(lines) + "\n"


def write_comparison_markdown(
    reports: Sequence[Mapping[str, Any]], path: Path, *, permutations: int = PERMUTATIONS,
    seed: int = SEED,
) -> None:
    """Write `comparison_markdown(reports)` to path (e.g. eval/REPORT.md)."""
    _write_text(path, comparison_markdown(reports, permutations=permutations, seed=seed))


# ---------------------------------------------------------------------------- answer sources


def library_answer_fn(index: Index, *, mode: Mode = "hybrid") -> AnswerFn:
    """An answer function over a loaded index (what `qa ask --json` prints)."""

    def answer(question: str, k: int) -> dict[str, Any]:
        return answer_question(index, question, k=k, mode=mode).to_dict()

    return answer


def index_documents(index: Index) -> dict[str, str]:
    """doc_id -> exact text of an index's documents, for `locate_evidence`."""
    return {doc_id: index.doc(doc_id).text for doc_id in index.doc_ids()}


class ServiceClient:
    """A running `qa` service as an answer function (POST /ask) and a document source."""

    def __init__(
        self, url: str, *, api_key: str | None = None, timeout: float = 120.0,
        transport: Any = None,
    ) -> None:
        import httpx

        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                                    transport=transport)

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise QAError(f"cannot reach the service at {self.url}: {exc}") from exc
        if response.status_code in (401, 403):
            raise QAError(f"the service at {self.url} refused {method} {path} "
                          f"(HTTP {response.status_code}); set QA_API_KEY to its API key")
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except (ValueError, AttributeError):
                detail = response.text
            raise QAError(f"{method} {self.url}{path} failed (HTTP {response.status_code}): "
                          f"{str(detail)[:300]}")
        try:
            return response.json()
        except ValueError as exc:
            raise QAError(f"{method} {self.url}{path} did not return JSON") from exc

    def documents(self) -> dict[str, str]:
        """doc_id -> exact text, from GET /documents and GET /documents/{doc_id}."""
        listing = self._request("GET", "/documents")
        if isinstance(listing, dict):  # tolerate a wrapped or paginated listing
            listing = listing.get("documents", listing.get("items"))
        if not isinstance(listing, list):
            raise QAError(f"GET {self.url}/documents did not return a list of documents")
        texts = {}
        for item in listing:
            doc_id = item.get("doc_id") if isinstance(item, dict) else None
            if not isinstance(doc_id, str):
                raise QAError(f"GET {self.url}/documents returned an item without a doc_id")
            doc = self._request("GET", f"/documents/{quote(doc_id, safe='/')}")
            if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
                raise QAError(f"GET {self.url}/documents/{doc_id} returned no 'text'")
            texts[doc_id] = doc["text"]
        return texts

    def answer(self, question: str, k: int) -> dict[str, Any]:
        """POST /ask; the response is `Answer.to_dict()`."""
        result: dict[str, Any] = self._request("POST", "/ask", json={"question": question, "k": k})
        return result
