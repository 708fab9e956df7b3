"""Read a corpus folder into Documents: exact text as stored, plus metadata."""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import CorpusError

EXTENSIONS = (".txt", ".md")

# A leading "date 2024-03" (as in the shipped 001_*.txt, where it shares the first line with
# the text) or YAML front matter. Both are metadata, kept out of chunks.
# A byte-order mark (files saved by some Windows editors) may come first.
_DATE_PREFIX = re.compile(
    r"\A\ufeff?\s*date\s*[:=]?\s*(\d{4}-\d{2}(?:-\d{2})?)\b[ \t]*\n?\s*", re.I
)
_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)\s*", re.S)
_DATE_VALUE = re.compile(r"\A\d{4}-\d{2}(?:-\d{2})?\Z")


@dataclass(frozen=True)
class Document:
    """One file of the corpus. `text` is the decoded file, unchanged; offsets index it."""

    doc_id: str
    text: str
    sha256: str
    body_start: int = 0
    date: str | None = None
    title: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return len(self.text)


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass(frozen=True)
class Corpus:
    documents: list[Document]
    skipped: list[SkippedFile]


def date_bounds(date: str) -> tuple[dt.date, dt.date]:
    """The first and last day a 'YYYY-MM' or 'YYYY-MM-DD' date stands for."""
    parts = [int(p) for p in date.split("-")]
    if len(parts) == 3:
        day = dt.date(parts[0], parts[1], parts[2])
        return day, day
    year, month = parts
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def _valid_date(value: str) -> str | None:
    if not _DATE_VALUE.match(value):
        return None
    try:
        date_bounds(value)
    except ValueError:
        return None
    return value


def parse_metadata(text: str) -> tuple[int, dict[str, str]]:
    """Return (offset where the body starts, metadata) for a document's text."""
    meta: dict[str, str] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        import yaml

        try:
            loaded = yaml.safe_load(match.group(1))
        except yaml.YAMLError:
            loaded = None
        if isinstance(loaded, dict):
            meta = {str(k): str(v) for k, v in loaded.items() if v is not None}
            return match.end(), meta
    match = _DATE_PREFIX.match(text)
    if match:
        meta["date"] = match.group(1)
        return match.end(), meta
    return 0, meta


def _title(text: str, body_start: int, meta: dict[str, str]) -> str:
    if meta.get("title"):
        return meta["title"]
    for line in text[body_start:].splitlines():
        line = line.strip(" \t.•*#")
        if len(line) >= 12:  # skip "Sommaire"-like headings
            return line if len(line) <= 100 else line[:97].rstrip() + "..."
    return ""


def make_document(doc_id: str, text: str) -> Document:
    """Build a Document (hash, metadata, title) from its id and exact text."""
    body_start, meta = parse_metadata(text)
    date = _valid_date(meta.get("date", ""))
    return Document(
        doc_id=doc_id,
        text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        body_start=body_start,
        date=date,
        title=_title(text, body_start, meta),
        meta=meta,
    )


def _read(path: Path) -> tuple[str | None, str]:
    data = path.read_bytes()
    if b"\x00" in data:
        return None, "binary file"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte {exc.start})"
    if not text.strip():
        return None, "empty file"
    return text, ""


def corpus_paths(corpus_dir: Path) -> list[tuple[str, Path]]:
    """(doc_id, path) of every .txt/.md file below corpus_dir, hidden ones excluded, sorted."""
    root = Path(corpus_dir).resolve()
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if path.suffix.lower() in EXTENSIONS:
            out.append((rel.as_posix(), path))
    return out


def read_documents(
    corpus_dir: Path, items: Iterable[tuple[str, Path]]
) -> Iterator[Document | SkippedFile]:
    """Read these (doc_id, path) files of corpus_dir one at a time: a Document for each
    readable one, a SkippedFile (with the reason) for the others."""
    root = Path(corpus_dir).resolve()
    for doc_id, path in items:
        if not path.resolve().is_relative_to(root):
            yield SkippedFile(doc_id, "links outside the corpus folder")
            continue
        try:
            text, reason = _read(path)
        except OSError as exc:
            text, reason = None, f"unreadable ({exc.strerror})"
        if text is None:
            yield SkippedFile(doc_id, reason)
            continue
        yield make_document(doc_id, text)


def read_corpus(corpus_dir: Path) -> Corpus:
    """Read every .txt/.md file below corpus_dir (recursively, hidden files excluded).

    Unreadable files (empty, binary, not UTF-8) are skipped and reported, not fatal;
    a corpus with no readable document raises CorpusError.
    """
    corpus_dir = Path(corpus_dir)
    if corpus_dir.exists() and not corpus_dir.is_dir():
        raise CorpusError(f"the corpus must be a folder, and {corpus_dir} is a file")
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder not found: {corpus_dir}")
    documents: list[Document] = []
    skipped: list[SkippedFile] = []
    for item in read_documents(corpus_dir, corpus_paths(corpus_dir)):
        if isinstance(item, SkippedFile):
            skipped.append(item)
        else:
            documents.append(item)
    if not documents:
        detail = f" ({len(skipped)} file(s) skipped)" if skipped else ""
        raise CorpusError(
            f"no readable .txt or .md document in {corpus_dir}{detail}; nothing was indexed"
        )
    return Corpus(documents=documents, skipped=skipped)
