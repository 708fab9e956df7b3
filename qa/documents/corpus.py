"""Walk a corpus folder and read every file qa can parse into Documents.

Hostile or odd files never abort the walk: each is skipped with one line naming it and why
(hidden, not a regular file, a link leaving the folder, a name that is not UTF-8, too large,
or whatever its parser refused). A parser crash on one file is caught the same way. Files
are parsed in the cage of qa.documents.cage (worker processes with a CPU-time and an
address-space limit), so a parser that hangs or explodes costs one skipped file.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.documents.cage import ParseLimits, release, shared_pool
from qa.documents.model import Corpus, Document, FormatStats, SkippedFile
from qa.documents.parsers import (
    EXTENSIONS,
    MAX_FILE_BYTES,
    MAX_TEXT_CHARS,
    LibraryMissing,
    Parsed,
    ReadFailed,
    SkipFile,
    format_of,
    parser_for,
)
from qa.documents.plain import PlainParser
from qa.errors import CorpusError

FORMATS = ("text", "pdf", "html", "docx")
_O_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) \
    | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class _Entry:
    doc_id: str
    path: Path
    skip: str | None = None  # why it is not read (hidden, FIFO, ...), or None
    stat: tuple[int, int] | None = None  # (size, mtime_ns) of a file that is read


def _display(rel: str) -> str:
    """A path that is always valid UTF-8 (undecodable bytes shown as \\xNN)."""
    return os.fsencode(rel).decode("utf-8", "backslashreplace")


def _walk(root: Path) -> Iterator[_Entry]:
    """Every entry below root in sorted order; folders that are links are not followed."""
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: os.fsencode(e.name))
        except OSError as exc:
            yield _Entry(_display(prefix.rstrip("/")) or ".", folder,
                         f"unreadable folder ({exc.strerror})")
            continue
        subfolders = []
        for entry in entries:
            rel = prefix + entry.name
            path = Path(entry.path)
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                yield _Entry(_display(rel), path, "file name is not valid UTF-8; rename it")
                continue
            if entry.name.startswith("."):
                kind = "folder" if entry.is_dir(follow_symlinks=False) else "file"
                yield _Entry(rel, path, f"hidden {kind} (names starting with '.' are not read)")
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                yield _Entry(rel, path, f"unreadable ({exc.strerror})")
                continue
            if stat.S_ISLNK(st.st_mode):
                try:
                    target = path.stat()
                except OSError:  # dangling, or a loop (ELOOP)
                    yield _Entry(rel, path, "broken symbolic link (or a link loop)")
                    continue
                if stat.S_ISDIR(target.st_mode):
                    yield _Entry(rel, path, "symbolic link to a folder (not followed)")
                    continue
                st = target
            if stat.S_ISDIR(st.st_mode):
                subfolders.append((path, rel + "/"))
            elif not stat.S_ISREG(st.st_mode):
                kind = ("FIFO" if stat.S_ISFIFO(st.st_mode) else
                        "socket" if stat.S_ISSOCK(st.st_mode) else "device")
                yield _Entry(rel, path, f"not a regular file ({kind})")
            else:
                yield _Entry(rel, path, None, (st.st_size, st.st_mtime_ns))
        stack.extend(reversed(subfolders))


def corpus_paths(corpus_dir: Path) -> list[tuple[str, Path]]:
    """(doc_id, path) of every file below corpus_dir that qa reads, sorted by doc_id."""
    root = Path(corpus_dir).resolve()
    out = [(e.doc_id, e.path) for e in _walk(root)
           if e.skip is None and e.path.suffix.lower() in EXTENSIONS]
    return sorted(out)


def _open_inside(path: Path, root: Path) -> int:
    """An open descriptor of `path`, checked to be a regular file inside root *after* opening.

    Checking first and opening after (the old way) lets a symlink swapped in between serve a
    file from outside the corpus. Here the file is opened (the last component not followed),
    and then what was actually opened is checked.
    """
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(root):
        raise SkipFile("links outside the corpus folder")
    fd = os.open(real, _O_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SkipFile("not a regular file")
        opened = _opened_path(fd)
        if opened is not None:
            inside = opened.is_relative_to(root)
        else:  # no /proc: the opened file must be the very file the checked path names
            try:
                now = os.stat(real, follow_symlinks=False)
            except OSError:
                inside = False
            else:
                inside = (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)
        if not inside:
            raise SkipFile("links outside the corpus folder")
        return fd
    except BaseException:
        os.close(fd)
        raise


def _opened_path(fd: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None


def read_pieces(fd: int, limit: int) -> Iterator[bytes]:
    """The file's bytes in pieces of at most 1 MiB, limit + 1 bytes at most in all (so that a
    caller can tell a file over the limit without reading the rest of it)."""
    remaining = limit + 1
    while remaining > 0:
        block = os.read(fd, min(remaining, 1 << 20))
        if not block:
            return
        yield block
        remaining -= len(block)


def _read_capped(fd: int, limit: int) -> bytes:
    """At most limit bytes; SkipFile when the file holds more (never reads past the cap)."""
    data = b"".join(read_pieces(fd, limit))
    if len(data) > limit:
        raise SkipFile(f"larger than the {limit // (1024 * 1024)} MB per-file limit")
    return data


def make_document(doc_id: str, text: str) -> Document:
    """A Document of .txt/.md text (hash, metadata, title) from its id and exact text."""
    parser = PlainParser()
    parsed = parser.parse_text(text, markdown=doc_id.lower().endswith(".md"))
    return _document(doc_id, parsed, f"{parser.id}/{parser.version}")


def _document(doc_id: str, parsed: Parsed, parser: str) -> Document:
    return Document(
        doc_id=doc_id,
        text=parsed.text,
        sha256=hashlib.sha256(parsed.text.encode("utf-8", "surrogatepass")).hexdigest(),
        body_start=parsed.body_start,
        date=parsed.date,
        title=parsed.title,
        meta=parsed.meta,
        pages=parsed.pages,
        parser=parser,
        date_source=parsed.date_source,
        blocks=parsed.blocks,
    )


def read_file(doc_id: str, path: Path, root: Path) -> tuple[Document, tuple[str, ...]]:
    """Parse one corpus file (SkipFile with the reason when it cannot be indexed)."""
    parser = parser_for(path.suffix)
    if parser is None:
        raise SkipFile(f"unsupported file type {path.suffix!r}")
    try:
        fd = _open_inside(path, root)
    except FileNotFoundError:
        raise ReadFailed("vanished while reading") from None
    except OSError as exc:  # permissions, a stale mount: fixed without touching the file
        raise ReadFailed(f"unreadable ({exc.strerror})") from None
    try:
        if os.fstat(fd).st_size > MAX_FILE_BYTES:  # say so without reading it
            raise SkipFile(f"larger than the {MAX_FILE_BYTES // (1024 * 1024)} MB per-file limit")
        data = _read_capped(fd, MAX_FILE_BYTES)
    except OSError as exc:
        raise ReadFailed(f"unreadable ({exc.strerror})") from None
    finally:
        os.close(fd)
    if not data.strip():
        raise SkipFile("empty file")
    parsed = parser.parse(data, name=doc_id)
    if len(parsed.text) > MAX_TEXT_CHARS:
        raise SkipFile(f"more than {MAX_TEXT_CHARS:,} characters of text (the per-file limit)")
    if not any(c.isalnum() for c in parsed.text[parsed.body_start :]):
        if parsed.text[parsed.body_start :].strip() == "" and parsed.body_start:
            pass  # metadata only: kept (build_index reports a corpus of metadata only)
        else:
            raise SkipFile("no text")
    # Surrogates (from broken PDF text layers) cannot be stored as UTF-8: drop them.
    if any("\ud800" <= c <= "\udfff" for c in parsed.text):
        raise SkipFile("text layer holds invalid characters (lone surrogates)")
    return _document(doc_id, parsed, f"{parser.id}/{parser.version}"), parsed.warnings


def parse_outcome(doc_id: str, path: Path, root: Path, *,
                  memory_mb: int | None = None) -> tuple[Any, ...]:
    """read_file as a value: ("ok", Document, warnings, seconds), or ("skip", "missing" (a
    library that cannot be imported) or "retry" (not read this time: I/O), reason, seconds).
    What a cage worker sends back (the Document pickled whole, whatever its fields)."""
    fmt = format_of(path.suffix)
    started = time.perf_counter()
    try:
        doc, notes = read_file(doc_id, path, root)
        return ("ok", doc, notes, time.perf_counter() - started)
    except LibraryMissing as exc:
        return ("missing", str(exc), time.perf_counter() - started)
    except ReadFailed as exc:
        return ("retry", str(exc), time.perf_counter() - started)
    except SkipFile as exc:
        reason = str(exc)
    except MemoryError:
        reason = (f"the parser exceeded its address-space limit ({memory_mb} MB; "
                  "QA_PARSE_MEMORY_MB)" if memory_mb else "too large to parse in memory")
    except RecursionError:
        reason = f"the {fmt} parser gave up: the file is nested too deeply"
    except Exception as exc:  # a parser bug on one file must not abort the build
        reason = f"the {fmt} parser failed ({exc.__class__.__name__}: {str(exc)[:200]})"
    return ("skip", reason, time.perf_counter() - started)


def file_digest(path: Path, root: Path) -> str | None:
    """sha256 of a corpus file's bytes (read in pieces, at most MAX_FILE_BYTES), or None."""
    try:
        fd = _open_inside(path, root)
    except (OSError, SkipFile):
        return None
    try:
        digest = hashlib.sha256()
        for block in read_pieces(fd, MAX_FILE_BYTES):
            digest.update(block)
        return digest.hexdigest()
    except OSError:
        return None
    finally:
        os.close(fd)


class CorpusReader:
    """A corpus folder, walked once: the files qa reads (`listing`), those skipped while
    walking, and per-format statistics. `read` parses the files asked for (in the cage's
    worker pool, yielded in order as they come), so that an incremental build reads only
    what changed and holds one batch in memory."""

    def __init__(self, corpus_dir: Path, *, limits: ParseLimits | None = None) -> None:
        corpus_dir = Path(corpus_dir)
        self.limits = limits or ParseLimits()
        # Files the parsers refused while reading (doc_id -> reason): what the index
        # remembers, so that they are not parsed again until they change.
        self.failed: dict[str, str] = {}
        if corpus_dir.exists() and not corpus_dir.is_dir():
            raise CorpusError(f"the corpus must be a folder, and {corpus_dir} is a file")
        if not corpus_dir.is_dir():
            raise CorpusError(f"corpus folder not found: {corpus_dir}")
        self.corpus_dir = corpus_dir
        self.root = corpus_dir.resolve()
        self.skipped: list[SkippedFile] = []
        self.warnings: list[SkippedFile] = []
        self._stats = {f: {"read": 0, "skipped": 0, "pages": 0, "seconds": 0.0,
                           "unchanged": 0} for f in FORMATS}
        self._unreadable: dict[str, str] = {}  # format -> why its library cannot be imported
        listing = []
        # (size, mtime_ns) of each listed file, from the walk: an update compares them with
        # the index's without a second stat per file.
        self.stats: dict[str, tuple[int, int] | None] = {}
        for entry in _walk(self.root):
            fmt = format_of(entry.path.suffix)
            if entry.skip is not None:
                self.skipped.append(SkippedFile(entry.doc_id, entry.skip))
                if fmt in self._stats:
                    self._stats[fmt]["skipped"] += 1
            elif fmt in self._stats:  # else not a format qa reads (images...): no document
                listing.append((entry.doc_id, entry.path))
                self.stats[entry.doc_id] = entry.stat
        self.listing: list[tuple[str, Path]] = sorted(listing)

    def read(self, items: Iterable[tuple[str, Path]]) -> Iterator[Document]:
        """Parse these (doc_id, path) files of the listing in the cage (qa.documents.cage);
        skips are recorded, not raised."""
        items = list(items)
        if self.limits.workers == 0:
            outcomes: Iterator[tuple[Any, ...]] = (
                parse_outcome(d, p, self.root) for d, p in items)
            yield from self._record(items, outcomes)
            return
        pool, private = shared_pool(self.limits)
        try:
            yield from self._record(items, pool.map(items, self.root))
        finally:
            release(pool, private)

    def _record(self, items: list[tuple[str, Path]],
                outcomes: Iterable[tuple[Any, ...]]) -> Iterator[Document]:
        for (doc_id, path), outcome in zip(items, outcomes, strict=False):
            fmt = format_of(path.suffix)
            self._stats[fmt]["seconds"] += float(outcome[-1])
            if outcome[0] != "ok":
                reason = str(outcome[1])
                if outcome[0] == "missing":  # the same for every file of the format, and
                    self._unreadable[fmt] = reason  # not remembered: installing it is the fix
                elif outcome[0] != "retry":  # an I/O error or a timeout: tried next build
                    self.failed[doc_id] = reason
                self.skipped.append(SkippedFile(doc_id, reason))
                self._stats[fmt]["skipped"] += 1
                continue
            doc, notes = outcome[1], outcome[2]
            self._stats[fmt]["read"] += 1
            self._stats[fmt]["pages"] += len(doc.pages)
            self.warnings.extend(SkippedFile(doc_id, note) for note in notes)
            yield doc

    def remember_skip(self, doc_id: str, path: Path, reason: str) -> None:
        """Count a file skipped by an earlier build and unchanged since: not parsed again."""
        self.skipped.append(SkippedFile(
            doc_id, f"{reason} (unchanged since it was skipped; "
            "`qa index --retry-skipped` parses it again)"))
        self._stats[format_of(path.suffix)]["skipped"] += 1

    def keep(self, path: Path) -> None:
        """Count a file that the index keeps without reading it."""
        self._stats[format_of(path.suffix)]["unchanged"] += 1

    @property
    def formats(self) -> list[FormatStats]:
        return [FormatStats(f, read=int(s["read"]), skipped=int(s["skipped"]),
                            pages=int(s["pages"]), seconds=float(s["seconds"]),
                            unchanged=int(s["unchanged"]), unreadable=self._unreadable.get(f))
                for f, s in self._stats.items() if s["read"] or s["skipped"] or s["unchanged"]]

    def nothing_readable(self) -> CorpusError:
        detail = f" ({len(self.skipped)} file(s) skipped)" if self.skipped else ""
        return CorpusError(
            f"no readable document (.txt, .md, .pdf, .html, .docx) in {self.corpus_dir}"
            f"{detail}; nothing was indexed"
        )


def current_parser(path: Path) -> str | None:
    """'<id>/<version>' of the parser that reads this file today (None: no parser)."""
    parser = parser_for(path.suffix)
    return None if parser is None else f"{parser.id}/{parser.version}"


def read_corpus(corpus_dir: Path, *, limits: ParseLimits | None = None) -> Corpus:
    """Read every supported file below corpus_dir (recursively, hidden files excluded).

    Unreadable files (empty, binary, not UTF-8, corrupt, encrypted, too large, ...) are
    skipped and reported, not fatal; a corpus with no readable document raises CorpusError.
    """
    reader = CorpusReader(corpus_dir, limits=limits)
    documents = list(reader.read(reader.listing))
    if not documents:
        raise reader.nothing_readable()
    return Corpus(documents=documents, skipped=reader.skipped, formats=reader.formats,
                  warnings=reader.warnings)
