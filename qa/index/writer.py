"""Building and updating an index: `build_index`, and the `IndexWriter` behind it.

A build writes new segments for new or changed documents only, marks the old copies deleted
(tombstones) in a new snapshot, and only then points CURRENT at it: an interrupted build never
leaves a broken index, and readers never see a half-written one. Small segments are merged
when there are too many (and all of them by `qa index --optimize`), always by a writer, never
on the query path.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from qa.chunking import SPLITTER_VERSION
from qa.documents import (
    CorpusReader,
    Document,
    FormatStats,
    ParseLimits,
    SkippedFile,
    current_parser,
)
from qa.documents.corpus import file_digest
from qa.embedding import Embedder
from qa.errors import CorpusError, QAError
from qa.index import embed_cache
from qa.index.embed_cache import EmbedCache, RemoteEmbed, default_workers, embed_documents
from qa.index.live import Live, open_live, read_live
from qa.index.merge import live_counts, merge
from qa.index.snapshot import (
    STORES,
    DocEntry,
    SegmentEntry,
    Snapshot,
    commit,
    next_number,
    prune,
    write_error,
    writer_lock,
)
from qa.store.segments import Segment, new_segment_name, write_segment

BATCH_CHARS = 8_000_000  # documents per new segment, by size: bounds a build's memory
DEFAULT_CHUNK_SIZE = 600  # chosen on eval/questions.jsonl (README, Quality)
DEFAULT_CHUNK_OVERLAP = 100

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BuildReport:
    """What `build_index` did."""

    documents: int
    chunks: int
    added: int
    changed: int
    unchanged: int
    removed: int
    embedded_chunks: int
    skipped: list[SkippedFile]
    seconds: float
    path: str
    segments: int = 0
    merged: int = 0
    # What the corpus reader reported: per format read/skipped/pages/time, and files read
    # with a caveat (e.g. a malformed date).
    formats: list[FormatStats] = field(default_factory=list)
    warnings: list[SkippedFile] = field(default_factory=list)
    generation: str = ""  # the snapshot live after the build
    up_to_date: bool = False  # nothing changed: the live snapshot was kept, none committed


def build_index(
    corpus_dir: Path,
    index_dir: Path,
    *,
    embedder: Embedder,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
    progress: Progress | None = None,
    rebuild: bool = False,
    optimize: bool = False,
    workers: int | None = None,
    wait: float | None = None,
    embed_remote: RemoteEmbed | None = None,
    parse_limits: ParseLimits | None = None,
    retry_skipped: bool = False,
) -> BuildReport:
    """Index corpus_dir into index_dir, embedding only new or changed documents.

    Files whose size and modification time match the live index are not even read. Chunk
    size and overlap left as None keep the live index's (else 600 and 100). `rebuild`
    ignores the live index; `optimize` merges all segments into one. Raises CorpusError
    (no readable document) before anything is written, IndexBusyError when another writer
    holds the index longer than `wait` seconds. `embed_remote`, when given, embeds the
    batches of passage texts in place of this process (same batches, same vectors, in order:
    qa/distributed.py runs them on a Ray cluster); segments and the commit stay here.
    Files are parsed in worker processes under `parse_limits` (qa.documents.cage); a file
    skipped by an earlier build is not parsed again until it changes, unless `retry_skipped`.
    """
    started = time.perf_counter()
    corpus_dir, index_dir = Path(corpus_dir), Path(index_dir)
    if index_dir.exists() and not index_dir.is_dir():
        raise QAError(f"the index must be a folder, and {index_dir} is a file")
    if chunk_size is not None and chunk_overlap is not None:
        _check_chunking(chunk_size, chunk_overlap)
    if corpus_dir.exists() and not corpus_dir.is_dir():
        raise CorpusError(f"the corpus must be a folder, and {corpus_dir} is a file")
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder not found: {corpus_dir}")
    writer = IndexWriter(
        corpus_dir, index_dir, embedder, size=chunk_size, overlap=chunk_overlap,
        progress=progress, rebuild=rebuild, optimize=optimize,
        workers=default_workers() if workers is None else workers, started=started,
        embed_remote=embed_remote, parse_limits=parse_limits,
        retry_skipped=retry_skipped or rebuild,
    )
    with writer_lock(index_dir, wait=wait):
        return writer.run()


def _check_chunking(size: int, overlap: int) -> None:
    if overlap >= size:
        raise QAError(f"chunk overlap ({overlap}) must be smaller than chunk size ({size})")


@dataclass
class IndexWriter:
    """One build under the writer lock: what it was asked (the fields set by the caller) and
    where it stands (the rest), from the live snapshot to the next one."""

    corpus_dir: Path
    index_dir: Path
    embedder: Embedder
    size: int | None  # None: the live index's, else DEFAULT_CHUNK_SIZE
    overlap: int | None
    progress: Progress | None = None
    rebuild: bool = False
    optimize: bool = False
    workers: int = 1
    started: float = field(default_factory=time.perf_counter)
    embed_remote: RemoteEmbed | None = None
    parse_limits: ParseLimits | None = None
    retry_skipped: bool = False
    # Where the build stands.
    live: Live = field(default_factory=Live, init=False)
    stats: dict[str, tuple[int, int] | None] = field(default_factory=dict, init=False)
    documents: dict[str, DocEntry] = field(default_factory=dict, init=False)
    skip_records: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)
    new_names: list[str] = field(default_factory=list, init=False)
    pending: list[Document] = field(default_factory=list, init=False)
    pending_chars: int = field(default=0, init=False)
    done_bytes: int = field(default=0, init=False)
    total_bytes: int = field(default=0, init=False)
    added: int = field(default=0, init=False)
    changed: int = field(default=0, init=False)
    unchanged: int = field(default=0, init=False)
    embedded_chunks: int = field(default=0, init=False)
    merged: int = field(default=0, init=False)
    known_words: set[str] = field(default_factory=set, init=False)  # this build's

    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1), init=False)
    cache: EmbedCache | None = field(default=None, init=False)

    # The live snapshot's parts this build reads and extends.
    @property
    def old_segments(self) -> dict[str, Segment]:
        return self.live.segments

    @property
    def old_docs(self) -> dict[str, DocEntry]:
        return self.live.docs

    @property
    def deleted(self) -> dict[str, set[int]]:
        return self.live.deleted

    @property
    def restated(self) -> set[str]:
        return self.live.restated

    @property
    def hashes(self) -> Mapping[str, str]:
        return self.live.hashes

    @property
    def chunking(self) -> dict[str, Any]:
        return {"size": self.size, "overlap": self.overlap, "splitter": SPLITTER_VERSION,
                "chunk_vectors": embed_cache.CHUNK_VECTORS}

    def run(self) -> BuildReport:
        """Build, commit and prune; the caller holds the writer lock."""
        read_at_ns = time.time_ns()  # files modified after this are newer than the index
        name, manifest = read_live(self.index_dir, self.rebuild)
        live_chunking = (manifest or {}).get("chunking")
        live_chunking = live_chunking if isinstance(live_chunking, dict) else {}
        if self.size is None:
            self.size = int(live_chunking.get("size", DEFAULT_CHUNK_SIZE))
        if self.overlap is None:
            self.overlap = int(live_chunking.get("overlap",
                                                 min(DEFAULT_CHUNK_OVERLAP, self.size - 1)))
        _check_chunking(self.size, self.overlap)
        self.live = open_live(self.index_dir, name, manifest, embedder=self.embedder,
                              chunking=self.chunking, rebuild=self.rebuild)
        try:
            return self._build(read_at_ns)
        finally:
            self.live.close()

    def _build(self, read_at_ns: int) -> BuildReport:
        reader = CorpusReader(self.corpus_dir, limits=self.parse_limits)
        listing = reader.listing
        self.stats = {doc_id: reader.stats.get(doc_id) or file_stat(path)
                      for doc_id, path in listing}
        to_read = self._plan(reader)
        listed = {d for d, _ in listing}
        for doc_id in self.old_docs:
            if doc_id not in listed:
                self._tombstone(doc_id)
        self.cache = EmbedCache(self.embedder, self.workers, self.embed_remote)
        self.numbers = itertools.count(next_number(self.index_dir))
        try:
            self.index_dir.mkdir(parents=True, exist_ok=True)
            self._read(reader, to_read)
            snapshot = self._next_snapshot(reader, listing, to_read, read_at_ns)
            up_to_date = (not self.new_names and not self.merged and self.live.name is not None
                          and _same_content(snapshot, self.live.manifest))
            name = self.live.name if up_to_date and self.live.name else commit(
                self.index_dir, snapshot, next(self.numbers))
            known = {name: [e.name for e in snapshot.segments]}
            if self.live.name and self.live.reusable:
                known[self.live.name] = [e.name for e in self.live.reusable.segments]
        except BaseException as exc:
            # Segments this build wrote are named by no snapshot: remove them now.
            for n in self.new_names:
                shutil.rmtree(self.index_dir / n, ignore_errors=True)
            if isinstance(exc, OSError):
                raise write_error(self.index_dir, exc) from exc
            raise
        finally:
            self.cache.close()
        prune(self.index_dir, keep=name, known=known)
        return BuildReport(
            documents=snapshot.counts["documents"], chunks=snapshot.counts["chunks"],
            added=self.added, changed=self.changed, unchanged=self.unchanged,
            removed=sum(1 for d in self.hashes if d not in listed or d not in self.documents),
            embedded_chunks=self.embedded_chunks, skipped=reader.skipped,
            seconds=time.perf_counter() - self.started, path=str(self.index_dir),
            segments=len(snapshot.segments), merged=self.merged, formats=reader.formats,
            warnings=reader.warnings, generation=name.removesuffix(".json"),
            up_to_date=up_to_date,
        )

    def _plan(self, reader: CorpusReader) -> list[tuple[str, Path]]:
        """Keep the documents whose files did not change, remember the still-skipped ones;
        returns the files to read."""
        old_skips: Mapping[str, Any] = {}
        if self.live.manifest is not None and not self.retry_skipped:
            old_skips = dict(self.live.manifest.get("skip_records") or {})
        to_read: list[tuple[str, Path]] = []
        parsers: dict[str, str | None] = {}  # by extension: one lookup, not one per file
        for doc_id, path in reader.listing:
            old = self.old_docs.get(doc_id)
            st = self.stats[doc_id]
            suffix = path.suffix
            if suffix not in parsers:
                parsers[suffix] = current_parser(path)
            if (old is not None and st is not None and old.stat == list(st)
                    and old.meta.get("parser") == parsers[suffix]):
                self.documents[doc_id] = old  # same size, mtime and parser: not even read
                reader.keep(path)
                continue
            record = old_skips.get(doc_id)
            if record is not None and _still_skipped(record, st, path, reader.root):
                # Skipped by an earlier build and unchanged: a hostile file costs one parse.
                reader.remember_skip(doc_id, path, str(record.get("reason", "")))
                self.skip_records[doc_id] = {**record, "mtime_ns": st[1] if st else 0}
            else:
                to_read.append((doc_id, path))
        self.unchanged = len(self.documents)
        self.total_bytes = sum((self.stats[d] or (0, 0))[0] for d, _ in to_read)
        if self.progress:
            self.progress(0, self.total_bytes)
        return to_read

    def _advance(self, n: int) -> None:
        self.done_bytes = min(self.total_bytes, self.done_bytes + n)
        if self.progress:
            self.progress(self.done_bytes, self.total_bytes)

    def _tombstone(self, doc_id: str) -> None:
        old = self.old_docs.get(doc_id)
        if old is not None and old.seg in self.deleted:
            self.deleted[old.seg].add(old.n)

    def _read(self, reader: CorpusReader, to_read: list[tuple[str, Path]]) -> None:
        """Read the changed files, embed them batch by batch into new segments."""
        reading = set()
        for doc in reader.read(to_read):
            reading.add(doc.doc_id)
            self._take(doc)
            if self.pending_chars >= BATCH_CHARS:
                self._flush()
        self._flush()
        paths = dict(to_read)
        for doc_id, _ in to_read:  # listed, but the reader skipped it: gone from the index
            if doc_id not in reading:
                self._tombstone(doc_id)
        for doc_id, reason in reader.failed.items():
            st = self.stats.get(doc_id)
            if st is not None and doc_id in paths:
                self.skip_records[doc_id] = {
                    "size": st[0], "mtime_ns": st[1], "reason": reason,
                    "sha256": file_digest(paths[doc_id], reader.root),
                    "parser": current_parser(paths[doc_id])}

    def _take(self, doc: Document) -> None:
        old = self.old_docs.get(doc.doc_id)
        if (old is not None and old.seg in self.deleted
                and all(old.meta.get(k) == getattr(doc, k)
                        for k in ("sha256", "parser", "date", "title", "date_source"))):
            self.documents[doc.doc_id] = old.restat(self.stats[doc.doc_id])  # only touched
            self.restated.add(doc.doc_id)
            self.unchanged += 1
            self._advance(len(doc.text))
            return
        if self.hashes.get(doc.doc_id) == doc.sha256:
            self.unchanged += 1
        elif doc.doc_id in self.hashes:
            self.changed += 1
        else:
            self.added += 1
        self._tombstone(doc.doc_id)
        self.pending.append(doc)
        self.pending_chars += len(doc.text)

    def _flush(self) -> None:
        """Embed and write the pending documents as a new segment."""
        if not self.pending:
            return
        assert self.cache is not None
        units, words, word_vecs, n_chunks = embed_documents(
            self.pending, cache=self.cache, size=self.size or DEFAULT_CHUNK_SIZE,
            overlap=self.overlap or 0,
            new_words=self._new_words, advance=self._advance,
        )
        self.embedded_chunks += n_chunks
        name = new_segment_name(next(self.numbers))
        entries = [_doc_entry(du.document, name, n, self.stats.get(du.document.doc_id),
                              len(du.chunks)) for n, du in enumerate(units)]
        write_segment(self.index_dir, name, units, dim=self.embedder.dim, words=words,
                      word_vectors=word_vecs, table=[e.meta for e in entries])
        self.new_names.append(name)
        for du, entry in zip(units, entries, strict=True):
            self.documents[du.document.doc_id] = entry
        self.pending, self.pending_chars = [], 0
        # A long build merges its own segments as it goes (they hold no deletions), so that
        # their number stays bounded and each merge reads a few batches, not the corpus.
        fresh, done = merge(self.index_dir, [SegmentEntry(n) for n in self.new_names],
                            self.documents, dim=self.embedder.dim, optimize=False,
                            numbers=self.numbers, old_segments={})
        if done:
            self.merged += done
            kept = [e.name for e in fresh]
            for gone in set(self.new_names) - set(kept):  # named by no snapshot: ours
                shutil.rmtree(self.index_dir / gone, ignore_errors=True)
            self.new_names = kept

    def _new_words(self, candidates: list[str]) -> list[str]:
        """The words no segment has seen yet, found by lookup in the old vocabularies."""
        fresh = [w for w in candidates if w not in self.known_words]
        old: set[str] = set()
        for seg in self.old_segments.values():
            old |= seg.known_words([w for w in fresh if w not in old])
        words = [w for w in fresh if w not in old]
        self.known_words.update(words)
        return words

    def _next_snapshot(self, reader: CorpusReader, listing: list[tuple[str, Path]],
                       to_read: list[tuple[str, Path]], read_at_ns: int) -> Snapshot:
        """The snapshot this build commits: segments merged by the policy, counts checked."""
        if not self.documents:
            raise reader.nothing_readable()
        # Segments in corpus order of their first use; the documents map keeps corpus order.
        ordered = {d: self.documents[d] for d, _ in listing if d in self.documents}
        old_entries = self.live.reusable.segments if self.live.reusable else ()
        restat: dict[str, list[tuple[int, int, int]]] = {}
        for d in self.restated:
            entry = ordered.get(d)
            st = entry.stat if entry is not None else None
            if entry is not None and st is not None:
                restat.setdefault(entry.seg, []).append((entry.n, st[0], st[1]))
        entries = [SegmentEntry(e.name, tuple(sorted(self.deleted[e.name])),
                                tuple(sorted(restat.get(e.name, []))))
                   for e in old_entries] + [SegmentEntry(n) for n in self.new_names]
        entries, done = merge(self.index_dir, entries, ordered, dim=self.embedder.dim,
                              optimize=self.optimize, numbers=self.numbers,
                              old_segments=self.old_segments)
        self.merged += done
        counts = live_counts(self.index_dir, entries, self.embedder.dim,
                             opened=self.old_segments)
        if counts["chunks"] == 0:
            raise CorpusError(
                f"no text to index in {self.corpus_dir}: its documents hold only metadata; "
                "nothing was indexed"
            )
        return Snapshot(
            embedder={"id": self.embedder.id, "dim": self.embedder.dim},
            chunking=self.chunking, segments=tuple(entries),
            counts={"documents": len(ordered), **counts, "segments": len(entries)},
            corpus=str(self.corpus_dir.resolve()),
            built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            built_at_ns=read_at_ns, skipped=tuple(s.path for s in reader.skipped),
            skip_records=self.skip_records, store=STORES,
        )


# Snapshot keys that say when a build ran, not what the index holds.
_WHEN_KEYS = ("built_at", "built_at_ns")


def _same_content(snapshot: Snapshot, live: Mapping[str, Any] | None) -> bool:
    """Whether the live snapshot already holds exactly this one (a no-op build)."""
    if live is None:
        return False
    # Through JSON, so tuples and lists compare as the snapshot stores them.
    new = json.loads(json.dumps(snapshot.to_json(), ensure_ascii=False))
    return all(new.get(k) == live.get(k) for k in new.keys() | live.keys() if k not in _WHEN_KEYS)


def _doc_entry(
    doc: Document, seg: str, n: int, stat: tuple[int, int] | None, chunks: int
) -> DocEntry:
    row = {f.name: getattr(doc, f.name) for f in fields(doc)
           if f.name not in ("text", "meta", "pages", "body_start", "doc_id", "blocks")}
    row.update(length=doc.length, chunks=chunks)
    if stat is not None:
        row["stat"] = list(stat)
    return DocEntry(seg, n, row)


def _still_skipped(record: dict[str, Any], st: tuple[int, int] | None, path: Path,
                   root: Path) -> bool:
    """Whether a file skipped by an earlier build is unchanged: same parser, and same size
    and mtime, or the same size and bytes (only touched)."""
    if st is None or not isinstance(record, dict) or record.get("parser") != current_parser(path):
        return False
    if record.get("size") != st[0]:
        return False
    if record.get("mtime_ns") == st[1]:
        return True
    digest = record.get("sha256")
    return isinstance(digest, str) and file_digest(path, root) == digest


def file_stat(path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns) of a file, None when it cannot be stat'ed."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns
