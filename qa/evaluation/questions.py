"""Question files: parse, check, and locate evidence in the corpus."""

from __future__ import annotations

import json
import os
import re
import stat
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from qa.answering import MAX_QUESTION_CHARS, validate_question
from qa.errors import InvalidQuestionError, QuestionSetError
from qa.evaluation.normalize import _APOSTROPHES, normalize_answer
from qa.temporal import parse_iso

UNKNOWN_LANG = "und"  # BCP 47 "undetermined", for questions without a lang
# The shipped set is 60 KB; a question file past this is a mistake (or /dev/zero), not a set.
MAX_QUESTION_FILE_BYTES = 50 * 1024 * 1024


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
    near_miss: bool = False  # unanswerable, but about what the documents discuss
    resolved_date: str | None = None  # ISO value the short answer's date must have


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
            ev = Evidence(item)
        elif (
            isinstance(item, dict)
            and isinstance(item.get("text"), str) and item["text"]
            and isinstance(item.get("doc_id"), str) and item["doc_id"]
        ):
            ev = Evidence(item["text"], item["doc_id"])
        else:
            return [], (f"evidence item {i} must be a non-empty string or an object "
                        '{"doc_id": "...", "text": "..."}')
        # A space (or a lone dash) occurs in every document: the question would be "found" at
        # rank 1 whatever was retrieved, a trivial 1.000.
        if not any(ch.isalnum() for ch in ev.text):
            return [], (f"evidence item {i} has no letter or digit ({ev.text!r}): quote the "
                        "words of the document that hold the answer")
        items.append(ev)
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
    try:  # what qa ask would refuse stops the run midway, naming no line: refuse it here
        validate_question(text, 1)
    except InvalidQuestionError as exc:
        return None, f"'question' would be refused: {exc}"
    lang = obj.get("lang")
    if lang is not None and (not isinstance(lang, str) or not lang.strip()):
        return None, "'lang' must be a language code such as \"fr\""
    unanswerable = obj.get("unanswerable", False)
    if not isinstance(unanswerable, bool):
        return None, "'unanswerable' must be true or false"
    near_miss = obj.get("near_miss", False)
    if not isinstance(near_miss, bool):
        return None, "'near_miss' must be true or false"
    if near_miss and not unanswerable:
        return None, "'near_miss' applies to unanswerable questions only"
    resolved = obj.get("resolved_date")
    if resolved is not None and (not isinstance(resolved, str) or parse_iso(resolved) is None):
        return None, "'resolved_date' must be an ISO date YYYY, YYYY-MM or YYYY-MM-DD"
    if resolved is not None and unanswerable:
        return None, "an unanswerable question cannot have a 'resolved_date'"
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
        evidence=tuple(evidence), unanswerable=unanswerable, line=line, near_miss=near_miss,
        resolved_date=resolved,
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
        except ValueError as exc:  # also an integer literal over Python's 4,300-digit limit
            problems.append(f"line {line_no}: not valid JSON ({exc})")
            continue
        except RecursionError:  # the parser recurses once per [ or {
            problems.append(f"line {line_no}: not valid JSON (nested too deeply)")
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


def _read_bounded(path: Path) -> bytes:
    """The bytes of a regular file of at most MAX_QUESTION_FILE_BYTES."""
    # O_NONBLOCK: opening a FIFO does not wait for a writer (no effect on a regular file);
    # what was opened is then checked, so a path swapped after a stat cannot slip through.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise QuestionSetError(f"{path} is not a regular file: give qa eval a .jsonl file")
        limit = MAX_QUESTION_FILE_BYTES
        too_big = QuestionSetError(f"{path} is larger than {limit // (1024 * 1024)} MB: "
                                   "is it really a question set (one JSON object per line)?")
        if info.st_size > limit:
            raise too_big
        data = f.read(limit + 1)  # +1: a file that grew after the fstat is refused too
        if len(data) > limit:
            raise too_big
        return data


def read_questions(path: Path) -> list[Question]:
    """Read and check a JSONL question file (structure only; see `locate_evidence`)."""
    path = Path(path)
    try:
        # Newlines as Path.read_text reads them (\r\n and a lone \r end a line).
        text = _read_bounded(path).decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except FileNotFoundError as exc:
        raise QuestionSetError(f"question file not found: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionSetError(f"cannot read question file {path}: {exc}") from exc
    return parse_questions(text, source=str(path))


def _occurrences(text: str, needle: str) -> list[tuple[int, int]]:
    """[start, end) of each occurrence of needle in text: exactly, else with any run of white
    space (line breaks, no-break spaces) standing for any other. Evidence is copied from a
    page as a reader sees it, and a parser may wrap or space a paragraph differently."""
    spans, i = [], text.find(needle)
    while i >= 0:
        spans.append((i, i + len(needle)))
        i = text.find(needle, i + 1)
    words = needle.split()
    if spans or not words:
        return spans
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words))
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


def _loose(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    return re.sub(r"\s+", " ", text).casefold()


def locate_evidence(
    questions: Sequence[Question], documents: Mapping[str, str], *, source: str = "questions",
    missing: list[str] | None = None,
) -> list[Question]:
    """The questions with every evidence item located in the documents (doc_id -> exact text).

    Raises QuestionSetError, naming line and id, for evidence found nowhere (or not in its doc_id).
    With `missing` (a list), evidence absent from a document that exists is dropped instead and
    described there: the question stays, and its retrieval counts as a miss (text the parser
    lost is measured as lost, not hidden).
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
                EvidenceSpan(d, s, e)
                for d in doc_ids for s, e in _occurrences(documents[d], ev.text)
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
                problem = f"line {q.line} ({q.id}): evidence {short!r} is not in {where}" + hint
                (missing if missing is not None else problems).append(problem)
                continue
            items.append(replace(ev, spans=spans))
        located.append(replace(q, evidence=tuple(items)))
    if problems:
        raise _problems_error(source, problems)
    return located
