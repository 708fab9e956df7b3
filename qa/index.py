"""Build, update and open the on-disk index: immutable segments named by snapshots.

Layout of an index folder (format 2)::

    index/
      CURRENT              name of the live snapshot (replaced atomically)
      LOCK                 held by the one writer at a time (flock)
      snap-<n>.json        a snapshot: format, embedder, chunking, its segments with their
                           deleted documents, and per-document hashes, stats and metadata
      seg-<n>-<rand>/      an immutable segment (qa.store.segments)

A build writes new segments for new or changed documents only, marks the old copies deleted
(tombstones) in a new snapshot, and only then points CURRENT at it: an interrupted build never
leaves a broken index, and readers never see a half-written one. Small segments are merged
when there are too many (and all of them by `qa index --optimize`), always by a writer, never
on the query path. Snapshots and segments no longer named by a kept snapshot are deleted only
after a grace period, so that readers still opening an older snapshot find its files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import itertools
import json
import os
import re
import shutil
import stat
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from qa.chunking import (
    SPLITTER_VERSION,
    Chunk,
    Span,
    chunk_document,
    chunk_section,
    contextual_text,
    split_sentences,
)
from qa.documents import (
    CorpusReader,
    Document,
    FormatStats,
    ParseLimits,
    SkippedFile,
    corpus_paths,
    current_parser,
)
from qa.documents.corpus import file_digest, read_pieces
from qa.documents.model import BLOCK_KINDS
from qa.embedding import Embedder, make_embedder
from qa.errors import (
    CorpusError,
    IndexBusyError,
    IndexDamagedError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexWriteError,
    QAError,
)
from qa.store.lexical import LEXICAL_ID, LEXICAL_VERSION, bm25_idf
from qa.store.segments import DocUnits, Segment, new_segment_name, read_units, write_segment
from qa.store.vectors import STORE_ID, STORE_VERSION
from qa.text import fold, tokens, vocabulary

# 3: documents carry their blocks (kind, heading path), and chunks their heading path in
# what is embedded and matched.
FORMAT_VERSION = 3
CURRENT = "CURRENT"
LOCK = "LOCK"
KEEP_SNAPSHOTS = 2  # the live one and the one before, for readers and citation checks
GRACE_SECONDS = 60.0  # a superseded snapshot's files live at least this long
MAX_SEGMENTS = 8  # more than this after a build: the smallest are merged
BATCH_CHARS = 8_000_000  # documents per new segment, by size: bounds a build's memory
STALE_CHECK_MAX_FILES = 5_000  # qa ask's staleness check stats at most this many files
# A chunk's vector is the mean of its sentences' vectors (weighted by the characters it holds)
# rather than an embedding of its own: the sentences are embedded anyway, for answering, and
# chunks were 45% of all embedded characters. On eval/questions.jsonl and eval/precise.jsonl
# (same run): R@5 0.963 -> 0.950 (one English question), accuracy 0.838 -> 0.838 and
# 0.763 -> 0.763, abstention unchanged; the build embeds about half as much.
CHUNK_VECTORS = "sentence-mean"  # or "embedded"

Progress = Callable[[int, int], None]

_SNAPSHOT = re.compile(r"snap-(\d{6,})\.json")
_SEGMENT = re.compile(r"seg-\d{6,}-[0-9a-f]{6}")
_OLD_GENERATION = re.compile(r"g-\d{8}T\d{6}-[0-9a-f]{6}")


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


# ---------------------------------------------------------------------------- snapshots


# CURRENT holds one name; a snapshot at 50k documents is about 30 MB. Anything larger is not
# ours, and is refused before it is read.
MAX_CURRENT_BYTES = 4096
MAX_SNAPSHOT_BYTES = 512 * 1024 * 1024
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


class _Unreadable(Exception):
    """A CURRENT or snapshot file that is not a small regular file (reason in the message)."""


def _read_regular(path: Path, cap: int) -> bytes:
    """The bytes of a regular file of at most `cap` bytes. O_NONBLOCK: opening a FIFO never
    waits for a writer; it is then refused, as are links, folders and devices.
    FileNotFoundError when it is missing."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _Unreadable(f"{path.name} is a symbolic link") from None
        raise _Unreadable(f"{path.name} is unreadable ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Unreadable(f"{path.name} is not a regular file")
        if st.st_size > cap:
            raise _Unreadable(f"{path.name} is larger than {cap:,} bytes")
        data = b"".join(read_pieces(fd, cap))
        if len(data) > cap:
            raise _Unreadable(f"{path.name} is larger than {cap:,} bytes")
        return data
    except OSError as exc:
        raise _Unreadable(f"{path.name} is unreadable ({exc.strerror})") from None
    finally:
        os.close(fd)


def _current(index_dir: Path) -> tuple[str | None, str | None]:
    """(the snapshot CURRENT names, None), (None, None) when there is no CURRENT (no index),
    or (None, what is wrong) when CURRENT exists but cannot be used."""
    try:
        raw = _read_regular(index_dir / CURRENT, MAX_CURRENT_BYTES)
    except (FileNotFoundError, NotADirectoryError):
        return None, None
    except _Unreadable as exc:
        return None, str(exc)
    try:
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None, "CURRENT is not text"
    if not (_SNAPSHOT.fullmatch(name) or _OLD_GENERATION.fullmatch(name)):
        return None, f"CURRENT names {name[:80]!r}, which is not a snapshot name"
    if not os.path.lexists(index_dir / name):
        return None, f"CURRENT names {name}, which is missing"
    return name, None


def _live_name(index_dir: Path) -> str | None:
    return _current(index_dir)[0]


# The last answer of newest_intact_snapshot, by the folder's entries and its snapshots' stat:
# a server watching a damaged CURRENT asks every tick, and each answer parses snapshots.
_INTACT: list[tuple[tuple[Any, ...], str | None]] = []


def newest_intact_snapshot(index_dir: Path, *, dim: int | None = None) -> str | None:
    """The newest snapshot that reads, validates and whose segments are all present."""
    try:
        entries = sorted(Path(index_dir).iterdir())
        names = sorted((p.name for p in entries if _SNAPSHOT.fullmatch(p.name)), reverse=True)
        key = (str(Path(index_dir).resolve()), tuple(p.name for p in entries),
               tuple((st.st_mtime_ns, st.st_size, st.st_ino) for st in
                     (Path(index_dir, n).lstat() for n in names)))
    except OSError:
        return None
    cached = _INTACT[0] if _INTACT else None
    if cached is not None and cached[0] == key:
        return cached[1]
    found = _newest_intact(Path(index_dir), names)
    _INTACT[:] = [(key, found)]
    return found


def _newest_intact(index_dir: Path, names: list[str]) -> str | None:
    for name in names:
        try:
            manifest = _read_snapshot(index_dir, name)
            if manifest.get("format_version") != FORMAT_VERSION:
                continue
            if all((Path(index_dir) / e["name"] / "segment.json").is_file()
                   for e in manifest["segments"]):
                return name
        except (QAError, OSError, KeyError, TypeError):
            continue
    return None


def _damaged_current(index_dir: Path, problem: str) -> IndexMismatchError:
    """The error for a CURRENT that cannot be used: what is wrong, and the repair."""
    intact = newest_intact_snapshot(index_dir)
    rebuild = f"`qa index --rebuild --index {index_dir} --corpus <folder>`"
    if intact is None:
        repair = f"no intact snapshot is left: run {rebuild}"
    else:
        intact = intact.removesuffix(".json")
        repair = (f"the newest intact snapshot is {intact}: run `qa index --index {index_dir} "
                  f"--restore {intact}` to serve it again (or {rebuild})")
    return IndexDamagedError(f"the index at {index_dir} is damaged ({problem}); {repair}")


def live_generation(index_dir: Path, *, strict: bool = False) -> str | None:
    """The generation CURRENT names (what a fresh load_index would open), or None: how a
    server notices a commit made by another process (POST /reload, QA_WATCH_INDEX).
    `strict`: a damaged CURRENT raises IndexDamagedError instead of giving None."""
    name, problem = _current(Path(index_dir))
    if problem is not None and strict:
        raise _damaged_current(Path(index_dir), problem)
    return name.removesuffix(".json") if name is not None else None


def index_exists(index_dir: Path) -> bool:
    """True when index_dir holds an index (of any format), intact or damaged: a damaged one
    is reported with its repair when opened, never silently rebuilt."""
    name, problem = _current(Path(index_dir))
    return name is not None or problem is not None


def _read_snapshot(index_dir: Path, name: str) -> dict[str, Any]:
    path = index_dir / name
    if path.is_dir():  # a format-1 generation folder
        path = path / "manifest.json"
    try:
        manifest = json.loads(_read_regular(path, MAX_SNAPSHOT_BYTES).decode("utf-8"))
    except FileNotFoundError:
        raise
    except (_Unreadable, ValueError, RecursionError) as exc:
        # RecursionError: JSON nested thousands deep; never let it escape a reader.
        why = str(exc) if isinstance(exc, _Unreadable) else exc.__class__.__name__
        raise IndexMismatchError(f"{path} is unreadable ({why}); run `qa index --rebuild`") \
            from None
    if not isinstance(manifest, dict):
        raise IndexMismatchError(f"{path} is not an index snapshot; run `qa index --rebuild`")
    if manifest.get("format_version") == FORMAT_VERSION:
        problem = snapshot_problem(manifest)
        if problem is not None:
            raise IndexMismatchError(f"{path} is not a valid snapshot ({problem})")
    return manifest


def snapshot_problem(manifest: dict[str, Any]) -> str | None:
    """What makes a snapshot of this format unusable (schema, types, segment names that would
    leave the index folder), or None."""
    segments = manifest.get("segments")
    if not isinstance(segments, list):
        return "'segments' is not a list"
    names: set[str] = set()
    for e in segments:
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            return "a segment entry has no name"
        if not _SEGMENT.fullmatch(e["name"]):  # never '../x' or '/abs': inside the folder
            return f"segment name {e['name'][:80]!r} is not a segment of this folder"
        deleted = e.get("deleted", [])
        if not isinstance(deleted, list) or not all(
                type(n) is int and n >= 0 for n in deleted):
            return f"segment {e['name']} has invalid deletions"
        names.add(e["name"])
    documents = manifest.get("documents")
    if not isinstance(documents, dict):
        return "'documents' is not a mapping"
    for doc_id, info in documents.items():
        if not isinstance(info, dict) or info.get("seg") not in names or \
                type(info.get("n")) is not int or info["n"] < 0 or \
                not isinstance(info.get("sha256"), str) or \
                type(info.get("length", 0)) is not int:
            return f"document {str(doc_id)[:80]!r} has an invalid entry"
    for key in ("embedder", "chunking", "counts"):
        if not isinstance(manifest.get(key, {}), dict):
            return f"{key!r} is not a mapping"
    if not isinstance(manifest.get("skipped", []), list) or \
            not isinstance(manifest.get("skip_records", {}), dict):
        return "'skipped' is invalid"
    return None


def read_manifest(index_dir: Path) -> dict[str, Any]:
    """The live snapshot's manifest; IndexNotFoundError, or IndexDamagedError naming the
    repair when CURRENT cannot be used."""
    index_dir = Path(index_dir)
    name, problem = _current(index_dir)
    if name is None:
        if problem is not None:
            raise _damaged_current(index_dir, problem)
        raise IndexNotFoundError(f"no index at {index_dir}; run `qa index` to build it")
    try:
        return _read_snapshot(index_dir, name)
    except IndexMismatchError as exc:  # unreadable or invalid: named with its repair
        raise _damaged_current(index_dir, f"{name} is invalid: {exc}") from None


def check_manifest(
    manifest: dict[str, Any], *, embedder_id: str, embedder_dim: int, where: Path
) -> None:
    """Refuse an index of another format or embedder, saying what to run."""
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index at {where} has format version {version}, this qa reads {FORMAT_VERSION}; "
            "run `qa index` to rebuild it"
        )
    emb = manifest.get("embedder", {})
    if emb.get("id") != embedder_id or emb.get("dim") != embedder_dim:
        raise IndexMismatchError(
            f"index at {where} was built with embedder {emb.get('id')!r} "
            f"(dim {emb.get('dim')}), not {embedder_id!r} (dim {embedder_dim}); "
            f"run `qa index` to rebuild it with {embedder_id!r}"
        )


def _write_atomic(path: Path, data: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def writer_lock(index_dir: Path, *, wait: float | None = None) -> Iterator[None]:
    """Hold the index folder's writer lock; wait up to `wait` seconds (None: forever), then
    IndexBusyError. The kernel drops the lock when its process dies, so a kill -9 leaves
    no stale lock behind."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        fh = open(index_dir / LOCK, "a+")  # noqa: SIM115 - held for the block
    except OSError as exc:
        raise _write_error(index_dir, exc) from exc
    try:
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if deadline is not None and time.monotonic() >= deadline:
                    raise IndexBusyError(
                        f"another qa index is writing {index_dir}; try again when it is done"
                    ) from exc
                time.sleep(0.1)
        yield
    finally:
        fh.close()


# ---------------------------------------------------------------------------- the Index


@dataclass
class _Open:
    segment: Segment
    deleted: frozenset[int]  # local document numbers
    chunk_alive: np.ndarray | None  # bool mask over the segment's chunks; None: all alive


class Index:
    """An opened snapshot: its segments memory-mapped, texts read on demand.

    Chunk and sentence ids are global: a segment's local ids plus the counts of the segments
    before it in the snapshot.
    """

    def __init__(
        self, index_dir: Path, name: str, manifest: dict[str, Any], embedder: Embedder,
        segments: list[_Open],
    ) -> None:
        self.path = index_dir / name
        self.manifest = manifest
        self.embedder = embedder
        self._segments = segments
        self._docs: dict[str, Any] = manifest["documents"]
        self._chunk_base = np.cumsum([0] + [len(s.segment.chunks) for s in segments])
        self._sent_base = np.cumsum([0] + [len(s.segment.sentences) for s in segments])
        self._seg_of_name = {s.segment.name: i for i, s in enumerate(segments)}
        self._texts: OrderedDict[str, Document] = OrderedDict()
        # Lexical terms of each sentence, filled as questions need them (CPython dict
        # writes are atomic, so threads serving requests can share it).
        self.sentence_terms: dict[int, frozenset[str]] = {}
        self._n_units = sum(s.segment.lexical.n_units for s in segments)
        total = sum(s.segment.lexical.total_length for s in segments)
        self._avg_length = total / self._n_units if self._n_units else 1.0

    # -- snapshot facts
    @property
    def built_at(self) -> str:
        return str(self.manifest.get("built_at", ""))

    @property
    def generation(self) -> str:
        """Name of the snapshot this Index reads (returned with answers, so that a citation
        can be checked against the same texts after a swap)."""
        return self.path.name.removesuffix(".json")

    @property
    def n_documents(self) -> int:
        return len(self._docs)

    @property
    def n_chunks(self) -> int:
        """Live chunks (deleted documents' chunks excluded)."""
        return int(self.manifest.get("counts", {}).get("chunks", 0))

    @property
    def n_units(self) -> int:
        """Chunks counted by the lexical statistics: deleted documents' chunks included until
        a merge drops them, as `doc_freq` counts them (Lucene does the same)."""
        return self._n_units

    @property
    def segments(self) -> list[Segment]:
        return [s.segment for s in self._segments]

    # -- documents
    def doc_ids(self) -> list[str]:
        return list(self._docs)

    def has_doc(self, doc_id: str) -> bool:
        return doc_id in self._docs

    def doc_meta(self, doc_id: str) -> dict[str, Any]:
        """The document's metadata without its text: sha256, date, title, length, ..."""
        return {k: v for k, v in self._docs[doc_id].items() if k not in ("seg", "n")}

    def doc(self, doc_id: str) -> Document:
        """The document with its full text (KeyError when absent); recent ones cached."""
        cached = self._texts.get(doc_id)
        if cached is not None:
            return cached
        info = self._docs[doc_id]
        doc = self._segments[self._seg_of_name[info["seg"]]].segment.document(int(info["n"]))
        self._texts[doc_id] = doc
        while len(self._texts) > 256:
            self._texts.popitem(last=False)
        return doc

    # -- chunks and sentences
    def _locate(self, base: np.ndarray, gid: int) -> tuple[int, int]:
        s = int(np.searchsorted(base, gid, side="right")) - 1
        return s, gid - int(base[s])

    def chunk(self, chunk_id: int) -> Chunk:
        s, local = self._locate(self._chunk_base, chunk_id)
        seg = self._segments[s].segment
        n, start, end = (int(v) for v in seg.chunks[local])
        doc = self.doc(seg.doc_ids[n])
        return Chunk(doc.doc_id, start, end, doc.text[start:end])

    def live_chunk_ids(self) -> Iterator[int]:
        """Ids of the chunks of live documents (not deleted), in storage order."""
        for i, entry in enumerate(self._segments):
            base = int(self._chunk_base[i])
            alive = entry.chunk_alive
            n = len(entry.segment.chunks)
            for local in (range(n) if alive is None else np.flatnonzero(alive).tolist()):
                yield base + local

    def sentences_of_chunk(self, chunk_id: int) -> list[int]:
        """Ids of the sentences that overlap the chunk, in text order."""
        s, local = self._locate(self._chunk_base, chunk_id)
        lo, hi = (int(v) for v in self._segments[s].segment.chunk_sents[local])
        base = int(self._sent_base[s])
        return list(range(base + lo, base + hi))

    def sentence(self, sentence_id: int) -> Span:
        s, local = self._locate(self._sent_base, sentence_id)
        seg = self._segments[s].segment
        n, start, end = (int(v) for v in seg.sentences[local])
        return Span(seg.doc_ids[n], start, end)

    def sentence_vectors_of(self, sentence_ids: list[int]) -> np.ndarray:
        """float32 vectors of these sentences (dequantised), one row each."""
        out = np.zeros((len(sentence_ids), self.embedder.dim), np.float32)
        ids = np.asarray(sentence_ids, dtype=np.int64)
        segs = np.searchsorted(self._sent_base, ids, side="right") - 1
        for s in np.unique(segs):
            rows = np.flatnonzero(segs == s)
            local = ids[rows] - self._sent_base[s]
            out[rows] = self._segments[int(s)].segment.sentence_vectors(local)
        return out

    def terms_of_sentence(self, i: int) -> frozenset[str]:
        terms = self.sentence_terms.get(i)
        if terms is None:
            s = self.sentence(i)
            terms = frozenset(tokens(self.doc(s.doc_id).text[s.start : s.end]))
            self.sentence_terms[i] = terms
        return terms

    # -- lexical statistics
    def doc_freq(self, term: str) -> int:
        """Number of chunks holding the (stemmed) term; 0 when the corpus lacks it."""
        return sum(s.segment.lexical.doc_freq(term) for s in self._segments)

    def has_term(self, term: str) -> bool:
        """Whether a live (not deleted) chunk holds the term."""
        for entry in self._segments:
            units, _ = entry.segment.lexical.postings(term)
            if len(units) and (entry.chunk_alive is None or entry.chunk_alive[units].any()):
                return True
        return False

    # -- search (used by qa.retrieval)
    def chunk_mask(self, seg_index: int, allowed_docs: set[str] | None) -> np.ndarray | None:
        """Bool mask of a segment's chunks that are alive and (optionally) allowed."""
        entry = self._segments[seg_index]
        if allowed_docs is None:
            return entry.chunk_alive
        seg = entry.segment
        ok = np.array([d in allowed_docs and n not in entry.deleted
                       for n, d in enumerate(seg.doc_ids)], dtype=bool)
        return ok[np.asarray(seg.chunks[:, 0])] if len(seg.chunks) else np.zeros(0, bool)

    def dense_search(
        self, vector: np.ndarray, k: int, *, allowed_docs: set[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, global chunk ids) of the k chunks closest to the vector."""
        sims_parts, id_parts = [], []
        for i, entry in enumerate(self._segments):
            mask = self.chunk_mask(i, allowed_docs)
            if mask is not None and not mask.any():
                continue
            sims, ids = entry.segment.vectors.search(vector, k, allowed=mask)
            sims_parts.append(sims)
            id_parts.append(ids + int(self._chunk_base[i]))
        if not sims_parts:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        sims, ids = np.concatenate(sims_parts), np.concatenate(id_parts)
        top = np.argsort(-sims, kind="stable")[:k]
        return sims[top], ids[top]

    def lexical_search(
        self, terms: Sequence[str], k: int, *, allowed_docs: set[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(BM25 scores, global chunk ids) of the best k chunks holding any of the terms;
        statistics are corpus-wide, summed over segments."""
        from qa.store.lexical import bm25_scores

        if not terms or not self._n_units:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        idfs = [bm25_idf(self.doc_freq(t), self._n_units) for t in terms]
        score_parts, id_parts = [], []
        for i, entry in enumerate(self._segments):
            ids, scores = bm25_scores(entry.segment.lexical, terms, idfs, self._avg_length)
            mask = self.chunk_mask(i, allowed_docs)
            if mask is not None and len(ids):
                keep = mask[ids]
                ids, scores = ids[keep], scores[keep]
            score_parts.append(scores)
            id_parts.append(ids + int(self._chunk_base[i]))
        scores, ids = np.concatenate(score_parts), np.concatenate(id_parts)
        if len(scores) > k:
            part = np.argpartition(-scores, k - 1)[:k]
            scores, ids = scores[part], ids[part]
        # Ties by chunk id, so that equal scores rank the same whichever way they arrive.
        order = np.lexsort((ids, -scores))
        return scores[order], ids[order]

    def translate(
        self, vectors: np.ndarray, *, per_word: int, min_sim: float
    ) -> list[list[str]]:
        """For each word vector, the corpus words at least min_sim close (best first): one
        search per segment for all the words together."""
        found: list[list[tuple[float, str]]] = [[] for _ in range(len(vectors))]
        if not len(vectors):
            return []
        for entry in self._segments:
            seg = entry.segment
            if not seg.n_words:
                continue
            sims, ids = seg.word_vectors.search_many(vectors, per_word)
            for row in range(len(vectors)):
                found[row].extend((float(s), seg.word(int(j)))
                                  for s, j in zip(sims[row], ids[row], strict=True)
                                  if j >= 0 and s >= min_sim)
        return [[w for _, w in sorted(f, key=lambda t: -t[0])[:per_word]] for f in found]

    def close_spellings(self, folded: str, *, n: int, cutoff: float) -> list[str]:
        """Corpus words (folded) spelt close to `folded` (difflib ratio >= cutoff), found
        through a trigram index rather than a scan of the vocabulary."""
        import difflib

        from qa.store.segments import trigram_keys

        keys = np.array(trigram_keys(folded), dtype=np.int64)
        candidates: set[str] = set()
        for entry in self._segments:
            seg = entry.segment
            if not len(seg.tri_keys):
                continue
            pos = np.minimum(np.searchsorted(seg.tri_keys, keys), len(seg.tri_keys) - 1)
            pos = pos[np.asarray(seg.tri_keys[pos]) == keys]
            if not len(pos):
                continue
            members = np.concatenate([
                np.asarray(seg.tri_words[int(seg.tri_indptr[p]) : int(seg.tri_indptr[p + 1])])
                for p in pos
            ])
            counts = np.bincount(members)
            best = np.argsort(-counts, kind="stable")[:50]
            # Two shared trigrams at least: Putin/Poutine share 'uti' and 'tin'.
            candidates.update(fold(seg.word(int(j))) for j in best if counts[j] >= 2)
        return difflib.get_close_matches(folded, sorted(candidates), n=n, cutoff=cutoff)

    def close(self) -> None:
        for s in self._segments:
            s.segment.close()


# ---------------------------------------------------------------------------- open


_BLAS_LIMITED = False


def single_threaded_blas() -> None:
    """Limit BLAS and FAISS to one thread in this process (once).

    Query-time matrix products here are tiny; with more BLAS threads than free cores,
    OpenBLAS threads spin waiting for each other. On this 2-core machine under load a
    (2 x 512) @ (512 x 931) product went from ~0.1 ms to ~10 ms. Requests run in parallel
    in the API's threadpool instead.
    """
    global _BLAS_LIMITED
    if _BLAS_LIMITED:
        return
    _BLAS_LIMITED = True
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
    except Exception:  # threadpoolctl missing or no BLAS found: nothing to limit
        pass
    # FAISS's OpenMP threads spin the same way: a flat search of 16k float16 vectors took
    # 2.3 ms on one thread and 16.6 ms on two, on this machine under load.
    import faiss

    faiss.omp_set_num_threads(1)


def _units_problem(seg: Segment, lengths: np.ndarray) -> str | None:
    """What is wrong with a segment's chunk and sentence offsets (a document number past
    the segment, start > end, an end past the document's length), or None. `lengths` holds
    each local document's length from the snapshot, -1 where unknown (deleted)."""
    n_docs = len(seg.doc_ids)
    for what, arr in (("chunk", seg.chunks), ("sentence", seg.sentences)):
        units = np.asarray(arr)
        if not len(units):
            continue
        docs, starts, ends = units[:, 0], units[:, 1], units[:, 2]
        if docs.min() < 0 or docs.max() >= n_docs:
            return f"a {what} of {seg.name} names a document it does not hold"
        if (starts < 0).any() or (ends < starts).any():
            return f"a {what} of {seg.name} has impossible offsets"
        limit = lengths[docs]
        if ((limit >= 0) & (ends > limit)).any():
            return f"a {what} of {seg.name} ends past its document's text"
    return None


def _open_segments(index_dir: Path, manifest: dict[str, Any], dim: int) -> list[_Open]:
    opened: list[_Open] = []
    by_seg: dict[str, list[tuple[str, int, int]]] = {}
    for doc_id, info in manifest["documents"].items():
        by_seg.setdefault(info["seg"], []).append((doc_id, info["n"], int(info.get("length", -1))))
    try:
        for entry in manifest["segments"]:
            seg = Segment(index_dir / entry["name"], dim=dim)
            opened.append(_Open(seg, frozenset(), None))
            lengths = np.full(len(seg.doc_ids), -1, dtype=np.int64)
            for doc_id, n, length in by_seg.get(seg.name, []):
                if n >= len(seg.doc_ids) or seg.doc_ids[n] != doc_id:
                    raise IndexMismatchError(f"document {doc_id!r} is not where the snapshot "
                                             f"says in {seg.name}")
                lengths[n] = length
            problem = _units_problem(seg, lengths)
            if problem is not None:
                raise IndexMismatchError(problem)
            deleted = frozenset(int(n) for n in entry.get("deleted", []))
            if any(n >= len(seg.doc_ids) for n in deleted):
                raise IndexMismatchError(f"{seg.name} deletes a document it does not hold")
            named = {n for _, n, _ in by_seg.get(seg.name, [])}
            for n, doc_id in enumerate(seg.doc_ids):
                if n not in named and n not in deleted:  # it would be retrieved, not found
                    raise IndexMismatchError(f"document {str(doc_id)[:80]!r} of {seg.name} is "
                                             "neither in the snapshot nor deleted")
            alive = None
            if deleted and len(seg.chunks):
                dead = np.zeros(len(seg.doc_ids), dtype=bool)
                dead[list(deleted)] = True
                alive = ~dead[np.asarray(seg.chunks[:, 0])]
            opened[-1] = _Open(seg, deleted, alive)
    except BaseException as exc:
        for o in opened:
            o.segment.close()
        if isinstance(exc, IndexMismatchError):
            raise IndexMismatchError(f"{exc}; run `qa index --rebuild` to repair it") from exc
        raise
    return opened


def _damaged(index_dir: Path, exc: BaseException) -> IndexMismatchError:
    return IndexMismatchError(
        f"index at {index_dir} is damaged ({exc}); run `qa index --rebuild` to rebuild it"
    )


def load_index(index_dir: Path, *, embedder: Embedder, name: str | None = None) -> Index:
    """Open the live snapshot (or the named one), refusing another format or embedder, and
    a snapshot that does not validate (schema, segment names, offsets within bounds).

    Side effect: BLAS is limited to one thread in this process (see single_threaded_blas).
    """
    single_threaded_blas()
    index_dir = Path(index_dir)
    for attempt in range(3):
        live, problem = (name, None) if name else _current(index_dir)
        if live is None:
            if problem is not None:
                raise _damaged_current(index_dir, problem)
            raise IndexNotFoundError(f"no index at {index_dir}; run `qa index` to build it")
        try:
            try:
                manifest = _read_snapshot(index_dir, live)
            except IndexMismatchError as exc:
                if name is not None:
                    raise
                raise _damaged_current(index_dir, f"{live} is invalid: {exc}") from None
            check_manifest(manifest, embedder_id=embedder.id, embedder_dim=embedder.dim,
                           where=index_dir)
            segments = _open_segments(index_dir, manifest, embedder.dim)
            return Index(index_dir, live, manifest, embedder, segments)
        except FileNotFoundError as exc:
            # A writer pruned this snapshot while we opened it: read CURRENT again.
            if name is not None or attempt == 2:
                raise _damaged(index_dir, exc) from exc
        except (KeyError, TypeError, ValueError, IndexError, AttributeError,
                RecursionError) as exc:
            raise _damaged(index_dir, exc) from exc
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------- build


DEFAULT_CHUNK_SIZE = 600  # chosen on eval/questions.jsonl (README, Quality)
DEFAULT_CHUNK_OVERLAP = 100


def _chunking_or_live(index_dir: Path, size: int | None, overlap: int | None) -> tuple[int, int]:
    """Fill unset chunking parameters from the live index, else the defaults."""
    if size is None or overlap is None:
        live: dict[str, Any] = {}
        with contextlib.suppress(QAError, OSError):
            live = dict(read_manifest(index_dir).get("chunking") or {})
        if size is None:
            size = int(live.get("size", DEFAULT_CHUNK_SIZE))
        if overlap is None:
            overlap = int(live.get("overlap", min(DEFAULT_CHUNK_OVERLAP, size - 1)))
    return size, overlap


# Embeds batches of passage texts elsewhere (qa/distributed.py: Ray), one array per batch,
# in the order given.
RemoteEmbed = Callable[[list[list[str]]], Iterable[np.ndarray]]


class _EmbedCache:
    """Embeds texts once per build: identical texts (boilerplate, repeated sentences) share
    one vector. Bounded, so memory follows the batch, not the corpus."""

    MAX = 100_000  # x 2 KB a vector: the cache stays around 200 MB

    def __init__(self, embedder: Embedder, workers: int,
                 remote: RemoteEmbed | None = None) -> None:
        self.embedder = embedder
        self._remote = remote
        self._cache: dict[bytes, np.ndarray] = {}
        self._pool: Any = None
        self.workers = workers

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None) -> np.ndarray:
        keys = [hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=16).digest()
                for t in texts]
        found: dict[bytes, np.ndarray] = {}
        todo: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            hit = self._cache.get(key)
            if hit is not None:
                found[key] = hit
            elif key not in todo:
                todo[key] = text
        if todo:
            vectors = self._embed_new(list(todo.values()), progress)
            fresh = dict(zip(todo, vectors, strict=True))
            found.update(fresh)
            if len(self._cache) + len(fresh) > self.MAX:
                self._cache.clear()
            self._cache.update(fresh)
        if not texts:
            return np.zeros((0, self.embedder.dim), np.float32)
        return np.vstack([found[k] for k in keys]).astype(np.float32)

    def _embed_new(self, texts: list[str], progress: Callable[[int], None] | None) -> np.ndarray:
        batch = 64
        parts = [texts[i : i + batch] for i in range(0, len(texts), batch)]
        if self._remote is not None and parts:  # e.g. a Ray cluster (qa/distributed.py)
            out = []
            for part, vecs in zip(parts, self._remote(parts), strict=True):
                out.append(np.asarray(vecs, np.float32))
                if progress:
                    progress(sum(len(t) for t in part))
            return np.vstack(out)
        # Worker processes take seconds to start (each loads the model): only for big batches.
        if self.workers > 1 and len(parts) > 32 and self._spawn():
            out = []
            for part, vecs in zip(parts, self._pool.map(_worker_embed, parts), strict=True):
                out.append(vecs)
                if progress:
                    progress(sum(len(t) for t in part))
            return np.vstack(out)
        out = []
        for part in parts:
            out.append(self.embedder.embed(part, kind="passage"))
            if progress:
                progress(sum(len(t) for t in part))
        return np.vstack(out) if out else np.zeros((0, self.embedder.dim), np.float32)

    def _spawn(self) -> bool:
        """Start the worker processes (once); False when the embedder cannot be rebuilt
        from its id in another process."""
        if self._pool is not None:
            return True
        try:
            probe = make_embedder(self.embedder.id)
        except QAError:
            return False
        if probe.id != self.embedder.id or type(probe) is not type(self.embedder):
            return False
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: a forked copy of a process with BLAS threads can deadlock.
        self._pool = ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init, initargs=(self.embedder.id,),
        )
        return True

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


_WORKER_EMBEDDER: Embedder | None = None


def _worker_init(spec: str) -> None:
    global _WORKER_EMBEDDER
    single_threaded_blas()
    _WORKER_EMBEDDER = make_embedder(spec)


def _worker_embed(texts: list[str]) -> np.ndarray:
    assert _WORKER_EMBEDDER is not None
    return _WORKER_EMBEDDER.embed(texts, kind="passage")


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _units_for(doc: Document, *, size: int, overlap: int) -> tuple[list[Chunk], list[Span]]:
    return chunk_document(doc, size=size, overlap=overlap), split_sentences(doc)


def _known_words(segments: Sequence[Segment]) -> set[str]:
    return {w for seg in segments for w in seg.words}


# Words the question-word translation may land on: letters only, as a dictionary would hold
# them. Identifiers, paths and hex strings in technical text tripled the vocabulary of a
# /usr/share/doc sample (and its vectors) without ever being a translation.
MAX_WORD_CHARS = 24


def _translatable(word: str) -> bool:
    return len(word) <= MAX_WORD_CHARS and word.isalpha()


def _doc_entry(
    doc: Document, seg: str, n: int, stat: tuple[int, int] | None, chunks: int
) -> dict[str, Any]:
    row = {f.name: getattr(doc, f.name) for f in fields(doc)
           if f.name not in ("text", "meta", "pages", "body_start", "doc_id", "blocks")}
    row.update(length=doc.length, seg=seg, n=n, chunks=chunks)
    if stat is not None:
        row["stat"] = list(stat)
    return row


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


def _file_stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


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
    chunk_size, chunk_overlap = _chunking_or_live(index_dir, chunk_size, chunk_overlap)
    if chunk_overlap >= chunk_size:
        raise QAError(
            f"chunk overlap ({chunk_overlap}) must be smaller than chunk size ({chunk_size})"
        )
    if corpus_dir.exists() and not corpus_dir.is_dir():
        raise CorpusError(f"the corpus must be a folder, and {corpus_dir} is a file")
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder not found: {corpus_dir}")
    with writer_lock(index_dir, wait=wait):
        return _build_locked(
            corpus_dir, index_dir, embedder=embedder, size=chunk_size, overlap=chunk_overlap,
            progress=progress, rebuild=rebuild, optimize=optimize,
            workers=default_workers() if workers is None else workers, started=started,
            embed_remote=embed_remote, parse_limits=parse_limits,
            retry_skipped=retry_skipped or rebuild,
        )


def _live_for_update(
    index_dir: Path, embedder: Embedder, chunking: dict[str, Any], rebuild: bool
) -> tuple[str | None, dict[str, Any] | None, dict[str, str]]:
    """(live snapshot name, its manifest when its segments can be reused, old hashes)."""
    name, problem = _current(index_dir)
    if problem is not None and not rebuild:
        raise _damaged_current(index_dir, problem)
    if name is None:
        return None, None, {}
    try:
        manifest = _read_snapshot(index_dir, name)
    except IndexMismatchError as exc:
        if not rebuild:  # as for a missing snapshot: restore it rather than re-embed all
            raise _damaged_current(index_dir, f"{name} is invalid: {exc}") from None
        return name, None, {}
    except OSError:
        return name, None, {}
    try:
        hashes = {d: str(info["sha256"]) for d, info in manifest["documents"].items()}
    except (QAError, OSError, KeyError, TypeError, AttributeError):
        return name, None, {}
    try:
        check_manifest(manifest, embedder_id=embedder.id, embedder_dim=embedder.dim,
                       where=index_dir)
    except QAError:
        return name, None, hashes
    if rebuild or manifest.get("chunking") != chunking:
        return name, None, hashes
    return name, manifest, hashes


def _build_locked(
    corpus_dir: Path, index_dir: Path, *, embedder: Embedder, size: int, overlap: int,
    progress: Progress | None, rebuild: bool, optimize: bool, workers: int, started: float,
    embed_remote: RemoteEmbed | None = None, parse_limits: ParseLimits | None = None,
    retry_skipped: bool = False,
) -> BuildReport:
    read_at_ns = time.time_ns()  # files modified after this are newer than the index
    chunking = {"size": size, "overlap": overlap, "splitter": SPLITTER_VERSION,
                "chunk_vectors": CHUNK_VECTORS}
    live_name, live, old_hashes = _live_for_update(index_dir, embedder, chunking, rebuild)
    old_skips: dict[str, Any] = {}
    if live_name is not None and not retry_skipped:
        with contextlib.suppress(QAError, OSError):
            old_skips = dict(_read_snapshot(index_dir, live_name).get("skip_records") or {})
    old_docs: dict[str, Any] = dict(live["documents"]) if live else {}
    seg_entries: list[dict[str, Any]] = (
        [{"name": e["name"], "deleted": sorted(int(n) for n in e.get("deleted", []))}
         for e in live["segments"]] if live else []
    )
    old_segments: list[Segment] = []
    try:
        for e in seg_entries:
            old_segments.append(Segment(index_dir / e["name"], dim=embedder.dim))
    except (QAError, OSError) as exc:
        for s in old_segments:
            s.close()
        raise IndexMismatchError(
            f"index at {index_dir} is damaged ({exc}); run `qa index --rebuild`"
        ) from exc
    try:
        return _build_with(
            corpus_dir, index_dir, embedder=embedder, size=size, overlap=overlap,
            chunking=chunking, progress=progress, optimize=optimize, workers=workers,
            started=started, read_at_ns=read_at_ns, live_name=live_name, old_docs=old_docs,
            old_hashes=old_hashes, seg_entries=seg_entries, old_segments=old_segments,
            embed_remote=embed_remote, parse_limits=parse_limits, old_skips=old_skips,
        )
    finally:
        for s in old_segments:
            s.close()


def _build_with(
    corpus_dir: Path, index_dir: Path, *, embedder: Embedder, size: int, overlap: int,
    chunking: dict[str, Any], progress: Progress | None, optimize: bool, workers: int,
    started: float, read_at_ns: int, live_name: str | None, old_docs: dict[str, Any],
    old_hashes: dict[str, str], seg_entries: list[dict[str, Any]],
    old_segments: list[Segment], embed_remote: RemoteEmbed | None = None,
    parse_limits: ParseLimits | None = None, old_skips: dict[str, Any] | None = None,
) -> BuildReport:
    reader = CorpusReader(corpus_dir, limits=parse_limits)
    listing = reader.listing
    stats = {doc_id: _file_stat(path) for doc_id, path in listing}
    documents: dict[str, dict[str, Any]] = {}
    to_read: list[tuple[str, Path]] = []
    skip_records: dict[str, dict[str, Any]] = {}
    for doc_id, path in listing:
        old = old_docs.get(doc_id)
        st = stats[doc_id]
        if (old is not None and st is not None and old.get("stat") == list(st)
                and old.get("parser") == current_parser(path)):
            documents[doc_id] = old  # same size, mtime and parser: not even read
            reader.keep(path)
            continue
        record = (old_skips or {}).get(doc_id)
        if record is not None and _still_skipped(record, st, path, reader.root):
            # Skipped by an earlier build and unchanged: a hostile file costs one parse.
            reader.remember_skip(doc_id, path, str(record.get("reason", "")))
            skip_records[doc_id] = {**record, "mtime_ns": st[1] if st else 0}
        else:
            to_read.append((doc_id, path))
    listed = {d for d, _ in listing}
    removed_ids = [d for d in old_docs if d not in listed]

    # What the new segments will hold is read and embedded batch by batch.
    total_bytes = sum((stats[d] or (0, 0))[0] for d, _ in to_read)
    done_bytes = 0
    if progress:
        progress(0, total_bytes)

    def advance(n: int) -> None:
        nonlocal done_bytes
        done_bytes = min(total_bytes, done_bytes + n)
        if progress:
            progress(done_bytes, total_bytes)

    deleted: dict[str, set[int]] = {e["name"]: set(e["deleted"]) for e in seg_entries}

    def tombstone(doc_id: str) -> None:
        old = old_docs.get(doc_id)
        if old is not None and old.get("seg") in deleted:
            deleted[old["seg"]].add(int(old["n"]))

    for doc_id in removed_ids:
        tombstone(doc_id)
    added = changed = 0
    unchanged = len(documents)
    known_words = _known_words(old_segments)
    cache = _EmbedCache(embedder, workers, embed_remote)
    new_names: list[str] = []
    numbers = itertools.count(_next_number(index_dir))
    merged = 0
    pending: list[Document] = []
    pending_chars = 0
    embedded_chunks = 0

    def flush() -> None:
        nonlocal pending, pending_chars, embedded_chunks, new_names, merged
        if not pending:
            return
        units, words, word_vecs, n_chunks = _embed_batch(
            pending, cache=cache, size=size, overlap=overlap, known_words=known_words,
            advance=advance,
        )
        embedded_chunks += n_chunks
        name = new_segment_name(next(numbers))
        write_segment(index_dir, name, units, dim=embedder.dim, words=words,
                      word_vectors=word_vecs)
        new_names.append(name)
        for n, du in enumerate(units):
            documents[du.document.doc_id] = _doc_entry(
                du.document, name, n, stats.get(du.document.doc_id), len(du.chunks))
        pending, pending_chars = [], 0
        # A long build merges its own segments as it goes (they hold no deletions), so that
        # their number stays bounded and each merge reads a few batches, not the corpus.
        fresh: list[dict[str, Any]] = [{"name": n, "deleted": []} for n in new_names]
        fresh, done = _merge(index_dir, fresh, documents, embedder=embedder,
                             optimize=False, numbers=numbers, old_segments={})
        if done:
            merged += done
            kept = [str(e["name"]) for e in fresh]
            for gone in set(new_names) - set(kept):  # named by no snapshot: ours to delete
                shutil.rmtree(index_dir / gone, ignore_errors=True)
            new_names = kept

    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        reading = set()
        for doc in reader.read(to_read):
            reading.add(doc.doc_id)
            old = old_docs.get(doc.doc_id)
            if (old is not None and old.get("seg") in deleted
                    and all(old.get(k) == getattr(doc, k)
                            for k in ("sha256", "parser", "date", "title", "date_source"))):
                documents[doc.doc_id] = {**old, "stat": list(stats[doc.doc_id] or (0, 0))}
                unchanged += 1
                advance(len(doc.text))
                continue
            if old_hashes.get(doc.doc_id) == doc.sha256:
                unchanged += 1
            elif doc.doc_id in old_hashes:
                changed += 1
            else:
                added += 1
            tombstone(doc.doc_id)
            pending.append(doc)
            pending_chars += len(doc.text)
            if pending_chars >= BATCH_CHARS:
                flush()
        flush()
        paths = dict(to_read)
        for doc_id, _ in to_read:  # listed, but the reader skipped it: gone from the index
            if doc_id not in reading:
                tombstone(doc_id)
        for doc_id, reason in reader.failed.items():
            st = stats.get(doc_id)
            if st is not None and doc_id in paths:
                skip_records[doc_id] = {
                    "size": st[0], "mtime_ns": st[1], "reason": reason,
                    "sha256": file_digest(paths[doc_id], reader.root),
                    "parser": current_parser(paths[doc_id])}
        skipped = reader.skipped
        removed = sum(1 for d in old_hashes if d not in listed or d not in documents)
        if not documents:
            raise reader.nothing_readable()
        # Segments in corpus order of their first use; the documents map keeps corpus order.
        ordered = {d: documents[d] for d, _ in listing if d in documents}
        entries = [{"name": e["name"], "deleted": sorted(deleted[e["name"]])}
                   for e in seg_entries] + [{"name": n, "deleted": []} for n in new_names]
        entries, done = _merge(
            index_dir, entries, ordered, embedder=embedder, optimize=optimize,
            numbers=numbers, old_segments={s.name: s for s in old_segments},
        )
        merged += done
        counts = _count(index_dir, entries, embedder.dim)
        if counts["chunks"] == 0:
            raise CorpusError(
                f"no text to index in {corpus_dir}: its documents hold only metadata; "
                "nothing was indexed"
            )
        manifest = {
            "format_version": FORMAT_VERSION,
            "embedder": {"id": embedder.id, "dim": embedder.dim},
            "chunking": chunking,
            "store": {"vectors": {"id": STORE_ID, "version": STORE_VERSION},
                      "lexical": {"id": LEXICAL_ID, "version": LEXICAL_VERSION}},
            "corpus": str(corpus_dir.resolve()),
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "built_at_ns": read_at_ns,
            "skipped": [s.path for s in skipped],
            # Files a parser refused: size, mtime, hash and reason, so that an unchanged one
            # is not parsed again (qa index --retry-skipped does).
            "skip_records": skip_records,
            "counts": {"documents": len(ordered), **counts, "segments": len(entries)},
            "segments": entries,
            "documents": ordered,
        }
        up_to_date = (not new_names and not merged and live_name is not None
                      and _same_content(manifest, index_dir, live_name))
        name = live_name if up_to_date and live_name else _commit(index_dir, manifest,
                                                                  next(numbers))
    except BaseException as exc:
        # Segments this build wrote are named by no snapshot: remove them now.
        for n in new_names:
            shutil.rmtree(index_dir / n, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _write_error(index_dir, exc) from exc
        raise
    finally:
        cache.close()
    _prune(index_dir, keep=name)
    return BuildReport(
        documents=len(ordered), chunks=counts["chunks"], added=added, changed=changed,
        unchanged=unchanged, removed=removed, embedded_chunks=embedded_chunks,
        skipped=skipped, seconds=time.perf_counter() - started, path=str(index_dir),
        segments=len(entries), merged=merged, formats=reader.formats,
        warnings=reader.warnings, generation=name.removesuffix(".json"), up_to_date=up_to_date,
    )


# Snapshot keys that say when a build ran, not what the index holds.
_WHEN_KEYS = ("built_at", "built_at_ns")


def _same_content(manifest: dict[str, Any], index_dir: Path, live_name: str) -> bool:
    """Whether the live snapshot already holds exactly this manifest (a no-op build)."""
    try:
        live = _read_snapshot(index_dir, live_name)
    except (QAError, OSError):
        return False
    # Through JSON, so tuples and lists compare as the snapshot stores them.
    new = json.loads(json.dumps(manifest, ensure_ascii=False))
    return all(new.get(k) == live.get(k) for k in new.keys() | live.keys() if k not in _WHEN_KEYS)


def _embed_batch(
    docs: list[Document], *, cache: _EmbedCache, size: int, overlap: int,
    known_words: set[str], advance: Callable[[int], None],
) -> tuple[list[DocUnits], list[str], np.ndarray, int]:
    parts = [(doc, *_units_for(doc, size=size, overlap=overlap)) for doc in docs]
    # Contextual chunks: the heading path is embedded and matched with the chunk's text.
    chunk_texts = [contextual_text(d, c) for d, chunks, _ in parts for c in chunks]
    sent_texts = [d.text[s.start : s.end] for d, _, sents in parts for s in sents]
    doc_chars = sum(len(d.text) for d in docs)
    embed_chars = max(1, sum(map(len, chunk_texts)) + sum(map(len, sent_texts)))

    def scaled(n: int) -> None:  # progress in corpus characters, from embedded characters
        advance(n * doc_chars // embed_chars)

    sent_vecs = cache.embed(sent_texts, scaled)
    if CHUNK_VECTORS == "sentence-mean":
        chunk_vecs = _chunk_vectors_from_sentences(parts, sent_vecs, cache, scaled)
    else:
        chunk_vecs = cache.embed(chunk_texts, scaled)
    words = [w for w in vocabulary([d.text[d.body_start :] for d in docs])
             if w not in known_words and _translatable(w)]
    known_words.update(words)
    word_vecs = cache.embed(words, None)
    out, ci, si = [], 0, 0
    for doc, chunks, sents in parts:
        out.append(DocUnits(
            doc, chunks, sents, chunk_vecs[ci : ci + len(chunks)], sent_vecs[si : si + len(sents)],
            chunk_tokens_of(doc, chunks),
        ))
        ci += len(chunks)
        si += len(sents)
    return out, words, word_vecs, len(chunk_texts)


def _chunk_vectors_from_sentences(
    parts: list[tuple[Document, list[Chunk], list[Span]]], sent_vecs: np.ndarray,
    cache: _EmbedCache, advance: Callable[[int], None],
) -> np.ndarray:
    """Each chunk's vector as the mean of its sentences' vectors, weighted by how many of
    their characters it holds (renormalised); a chunk with no sentence is embedded."""
    out = np.zeros((sum(len(c) for _, c, _ in parts), sent_vecs.shape[1]), np.float32)
    missing: list[tuple[int, str]] = []
    # A chunk's heading path counts as one more sentence of it, weighted by its characters:
    # what prepending it to the chunk's text would do to an embedding of the chunk.
    sections = [[chunk_section(d, c.start, c.end) for c in chunks] for d, chunks, _ in parts]
    distinct = sorted({sec for secs in sections for sec in secs if sec})
    sec_vecs = dict(zip(distinct, cache.embed(distinct, None), strict=True)) if distinct else {}
    row = si = 0
    for (_, chunks, sents), secs in zip(parts, sections, strict=True):
        starts = np.array([s.start for s in sents], dtype=np.int64)
        ends = np.array([s.end for s in sents], dtype=np.int64)
        for c, sec in zip(chunks, secs, strict=True):
            lo = int(np.searchsorted(ends, c.start, side="right"))
            hi = int(np.searchsorted(starts, c.end, side="left"))
            context = f"{sec}\n{c.text}" if sec else c.text
            if hi > lo:
                weights = (np.minimum(ends[lo:hi], c.end) - np.maximum(starts[lo:hi], c.start))
                v = weights.astype(np.float32) @ sent_vecs[si + lo : si + hi]
                if sec:
                    v = v + np.float32(len(sec)) * sec_vecs[sec]
                norm = float(np.linalg.norm(v))
                if norm > 0:
                    out[row] = v / norm
                else:
                    missing.append((row, context))
            else:
                missing.append((row, context))
            row += 1
        si += len(sents)
    if missing:
        out[[r for r, _ in missing]] = cache.embed([t for _, t in missing], advance)
    return out


def chunk_tokens(text: str) -> list[str]:
    """A chunk's BM25 tokens; a chunk without any still counts one (as bm25s does)."""
    return tokens(text) or ["\u2205"]


def chunk_tokens_of(doc: Document, chunks: Sequence[Chunk]) -> list[list[str]]:
    """BM25 tokens of a document's chunks, each with its heading path (contextual chunks)."""
    return [chunk_tokens(contextual_text(doc, c)) for c in chunks]


def _count(index_dir: Path, entries: list[dict[str, Any]], dim: int) -> dict[str, int]:
    chunks = sentences = 0
    for e in entries:
        seg = Segment(index_dir / e["name"], dim=dim)
        try:
            dead = set(e["deleted"])
            if dead:
                docs = np.asarray(seg.chunks[:, 0])
                chunks += int(np.sum(~np.isin(docs, list(dead))))
                sdocs = np.asarray(seg.sentences[:, 0])
                sentences += int(np.sum(~np.isin(sdocs, list(dead))))
            else:
                chunks += len(seg.chunks)
                sentences += len(seg.sentences)
        finally:
            seg.close()
    return {"chunks": chunks, "sentences": sentences}


# Merge policy, tiered (as Lucene's): with more than MAX_SEGMENTS segments, MERGE_FACTOR
# segments of similar size (the largest at most SIZE_RATIO times the smallest) are merged
# into one, smallest first, as long as the result stays under MAX_MERGED_CHUNKS (bigger ones
# only by --optimize). A one-document update then merges one-document segments together,
# never rewrites the big ones: at 50k documents an update that merged the four smallest
# segments whatever their size took 22 s. The merge reads its segments into memory, so the
# cap also bounds a build's memory (100k chunks: about 2 GB with their sentence vectors).
MERGE_FACTOR = 4
SIZE_RATIO = 10
MAX_MERGED_CHUNKS = 100_000


def _pick_victims(entries: list[dict[str, Any]], live: dict[str, int], *,
                  optimize: bool) -> list[str]:
    if optimize:
        return [e["name"] for e in entries] if (
            len(entries) > 1 or any(e["deleted"] for e in entries)) else []
    if len(entries) <= MAX_SEGMENTS:
        return []
    ordered = sorted((e["name"] for e in entries), key=lambda n: live[n])
    for i in range(len(ordered) - MERGE_FACTOR + 1):
        window = ordered[i : i + MERGE_FACTOR]
        sizes = [live[n] for n in window]
        if sum(sizes) > MAX_MERGED_CHUNKS:
            break  # the windows further on are bigger still
        if max(sizes) <= SIZE_RATIO * max(1, min(sizes)):
            return window
    return []


def _merge(
    index_dir: Path, entries: list[dict[str, Any]], documents: dict[str, dict[str, Any]], *,
    embedder: Embedder, optimize: bool, numbers: Iterator[int],
    old_segments: dict[str, Segment],
) -> tuple[list[dict[str, Any]], int]:
    """Apply the merge policy (and drop segments with nothing alive). Updates `documents` in
    place for the documents that moved; returns the new entries and how many were merged."""
    docs_in = {e["name"]: 0 for e in entries}
    size = {e["name"]: 0 for e in entries}  # live chunks
    for info in documents.values():
        if info["seg"] in docs_in:
            docs_in[info["seg"]] += 1
            size[info["seg"]] += int(info.get("chunks", 1))
    # A segment with nothing alive goes, but the words first seen in it may be used by live
    # documents of other segments: those are carried into the merged segment.
    dead_words = [e["name"] for e in entries if not docs_in[e["name"]]
                  and e["name"] in old_segments and old_segments[e["name"]].n_words]
    entries = [e for e in entries if docs_in[e["name"]] > 0 or e["name"] in dead_words]
    alive = [e for e in entries if e["name"] not in dead_words]
    victims = _pick_victims(alive, size, optimize=optimize)
    if optimize and dead_words and not victims:
        victims = [e["name"] for e in alive]
    if not victims:
        return entries, 0  # a dead segment with words waits for the next merge
    victims += dead_words
    opened: dict[str, Segment] = {}
    try:
        for v in victims:
            opened[v] = old_segments.get(v) or Segment(index_dir / v, dim=embedder.dim)
        moving = [d for d, info in documents.items() if info["seg"] in opened]
        units = [read_units(opened[documents[d]["seg"]], int(documents[d]["n"]), chunk_tokens_of)
                 for d in moving]
        words: list[str] = []
        word_vecs: list[np.ndarray] = []
        seen: set[str] = set()
        for v in victims:
            seg = opened[v]
            fresh = [i for i, w in enumerate(seg.words) if w not in seen]
            seen.update(seg.words[i] for i in fresh)
            words.extend(seg.words[i] for i in fresh)
            word_vecs.append(seg.word_vectors.vectors(np.array(fresh, dtype=np.int64)))
        name = new_segment_name(next(numbers))
        write_segment(index_dir, name, units, dim=embedder.dim, words=words,
                      word_vectors=np.vstack(word_vecs) if word_vecs
                      else np.zeros((0, embedder.dim), np.float32))
    finally:
        for v, seg in opened.items():
            if v not in old_segments:
                seg.close()
    for n, d in enumerate(moving):
        documents[d] = {**documents[d], "seg": name, "n": n}
    kept = [e for e in entries if e["name"] not in opened]
    return [*kept, {"name": name, "deleted": []}], len(victims)


def _next_number(index_dir: Path) -> int:
    numbers = [0]
    with contextlib.suppress(OSError):
        for p in index_dir.iterdir():
            m = _SNAPSHOT.fullmatch(p.name)
            if m:
                numbers.append(int(m.group(1)))
            elif _SEGMENT.fullmatch(p.name.removeprefix(".tmp-")):
                numbers.append(int(p.name.removeprefix(".tmp-").split("-")[1]))
    return max(numbers) + 1


def _commit(index_dir: Path, manifest: dict[str, Any], number: int) -> str:
    """Write the snapshot, then point CURRENT at it (the atomic switch)."""
    name = f"snap-{number:06d}.json"
    try:
        _write_atomic(index_dir / name, json.dumps(manifest, ensure_ascii=False))
        _write_atomic(index_dir / CURRENT, name + "\n")
    except OSError:
        with contextlib.suppress(OSError):
            if _live_name(index_dir) != name:
                (index_dir / name).unlink()
        raise
    return name


def _write_error(index_dir: Path, exc: OSError) -> IndexWriteError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "the disk is full"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        what = "the index folder is not writable"
    else:
        what = f"the index could not be written ({exc.strerror or exc})"
    return IndexWriteError(f"{what}: the index at {index_dir} is unchanged", exc.errno)


def _prune(index_dir: Path, *, keep: str) -> None:
    """Delete snapshots beyond the newest KEEP_SNAPSHOTS that were superseded more than
    GRACE_SECONDS ago, then segments no remaining snapshot names (and our own leftovers:
    format-1 generations, temporary folders of dead builds). Only names this code makes
    are ever deleted, in case --index points at a folder that holds other things."""
    try:
        names = sorted(p.name for p in index_dir.iterdir() if _SNAPSHOT.fullmatch(p.name))
    except OSError:
        return
    now = time.time()
    kept: list[str] = []
    for i, n in enumerate(reversed(names)):
        successor = names[len(names) - i] if i else None
        young = successor is not None and now - _mtime(index_dir / successor) < GRACE_SECONDS
        if n == keep or i < KEEP_SNAPSHOTS or young:
            kept.append(n)
        else:
            with contextlib.suppress(OSError):
                (index_dir / n).unlink()
    referenced: set[str] = set()
    for n in kept:
        with contextlib.suppress(OSError, QAError, KeyError, TypeError):
            referenced.update(e["name"] for e in _read_snapshot(index_dir, n)["segments"])
    for p in index_dir.iterdir():
        plain = p.name.removeprefix(".tmp-")
        ours = _SEGMENT.fullmatch(plain) or (
            _OLD_GENERATION.fullmatch(plain) and now - _mtime(p) > GRACE_SECONDS)
        if p.is_dir() and ours and p.name not in referenced:
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.startswith((f".{CURRENT}.", ".snap-")) and p.name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                p.unlink()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


# ---------------------------------------------------------------------------- checks


def verify_index(index_dir: Path, *, embedder: Embedder) -> list[str]:
    """Full check (`qa index --check`): every document's text against its sha256, every
    segment's files against its counts, chunk and sentence offsets within their documents,
    and the vocabularies (words and lexical terms). Returns the problems (empty: healthy)."""
    problems: list[str] = []
    try:
        index = load_index(index_dir, embedder=embedder)  # validates offsets against lengths
    except QAError as exc:
        return [str(exc)]
    try:
        from qa.store.lexical import SegmentLexical

        for seg in index.segments:
            problem = seg.vocabulary_problem()
            if problem is None and isinstance(seg.lexical, SegmentLexical):
                problem = seg.lexical.problem()
            if problem is not None:
                problems.append(f"segment {seg.name}: {problem}")
        for doc_id in index.doc_ids():
            try:
                doc = index.doc(doc_id)
            except (QAError, OSError, ValueError, KeyError) as exc:
                problems.append(f"{doc_id}: unreadable ({exc})")
                continue
            if hashlib.sha256(doc.text.encode("utf-8")).hexdigest() != doc.sha256:
                problems.append(f"{doc_id}: text does not match its sha256")
            recorded = index.manifest["documents"][doc_id].get("length")
            if recorded is not None and recorded != len(doc.text):  # what offsets were
                problems.append(f"{doc_id}: the snapshot's length {recorded} is not its "
                                f"text's ({len(doc.text)})")  # checked against at load
            problem = _blocks_problem(doc)
            if problem is not None:
                problems.append(f"{doc_id}: {problem}")
    finally:
        index.close()
    return problems


def _blocks_problem(doc: Document) -> str | None:
    """What is wrong with a document's blocks (offsets outside its text, out of order or
    overlapping, an unknown kind), or None."""
    at = 0
    for b in doc.blocks:
        if not (at <= b.start <= b.end <= len(doc.text)):
            return f"a block at {b.start}-{b.end} is outside its text or overlaps another"
        if b.kind not in BLOCK_KINDS:
            return f"a block has the unknown kind {b.kind[:40]!r}"
        at = b.end
    return None


def restore_snapshot(index_dir: Path, name: str, *, embedder: Embedder,
                     wait: float | None = None) -> str:
    """Point CURRENT at an existing snapshot (`qa index --restore`), after opening it
    fully (validated, segments present, offsets in bounds); returns its generation."""
    index_dir = Path(index_dir)
    name = name if name.endswith(".json") else f"{name}.json"
    if not _SNAPSHOT.fullmatch(name):
        raise QAError(f"{name!r} is not a snapshot name (snap-NNNNNN)")
    if not (index_dir / name).is_file():  # before the lock, which would create the folder
        raise IndexNotFoundError(f"no snapshot {name} in {index_dir}")
    with writer_lock(index_dir, wait=wait):
        if not (index_dir / name).is_file():
            raise IndexNotFoundError(f"no snapshot {name} in {index_dir}")
        load_index(index_dir, embedder=embedder, name=name).close()
        try:
            _write_atomic(index_dir / CURRENT, name + "\n")
        except OSError as exc:
            raise _write_error(index_dir, exc) from exc
    return name.removesuffix(".json")


def ann_recall(
    index_dir: Path, embedder_spec: str, questions: Sequence[str], *, k: int = 10
) -> float:
    """Mean recall@k of the chunk search against exact search, over these questions."""
    embedder = make_embedder(embedder_spec)
    index = load_index(index_dir, embedder=embedder)
    try:
        vectors = embedder.embed(list(questions), kind="query")
        recalls = []
        for v in vectors:
            _, approx = index.dense_search(v, k)
            exact_parts = []
            for i, seg in enumerate(index.segments):
                sims, ids = seg.vectors.search_exact(v, k)
                exact_parts.append((sims, ids + int(index._chunk_base[i])))
            sims = np.concatenate([s for s, _ in exact_parts])
            ids = np.concatenate([i for _, i in exact_parts])
            exact = ids[np.argsort(-sims, kind="stable")[:k]]
            recalls.append(len(set(approx.tolist()) & set(exact.tolist())) / max(1, len(exact)))
        return float(np.mean(recalls)) if recalls else 1.0
    finally:
        index.close()


def corpus_changes(index: Index, corpus_dir: Path) -> list[str]:
    """Files of corpus_dir added, removed or modified since the index was built (by listing
    and size/modification time: one stat per file, no reading). Skipped for corpora over
    STALE_CHECK_MAX_FILES documents, where even the listing costs more than an answer."""
    if index.n_documents > STALE_CHECK_MAX_FILES or not Path(corpus_dir).is_dir():
        return []
    built_ns = index.manifest.get("built_at_ns")
    known = set(index.doc_ids()) | set(index.manifest.get("skipped", []))
    changed = []
    seen = set()
    for doc_id, path in corpus_paths(Path(corpus_dir)):
        seen.add(doc_id)
        st = _file_stat(path)
        if doc_id not in known:
            changed.append(doc_id)
        elif index.has_doc(doc_id):
            recorded = index._docs[doc_id].get("stat")
            if st is None or (recorded is not None and list(st) != recorded) or (
                recorded is None and isinstance(built_ns, int) and st[1] > built_ns):
                changed.append(doc_id)
    changed.extend(sorted(d for d in index.doc_ids() if d not in seen))
    return changed


def check_corpus(index: Index, corpus_dir: Path) -> None:
    """Refuse to answer from an index built from another corpus folder than the one named."""
    built_from = index.manifest.get("corpus")
    if built_from and Path(built_from) != Path(corpus_dir).resolve():
        raise IndexMismatchError(
            f"the index at {index.path.parent} was built from {built_from}, not {corpus_dir}; "
            f"run `qa index --corpus {corpus_dir} --index <folder>`"
        )


def open_index(
    corpus_dir: Path,
    index_dir: Path,
    *,
    embedder: Embedder,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
    progress: Progress | None = None,
    parse_limits: ParseLimits | None = None,
) -> tuple[Index, BuildReport | None]:
    """Load the index, building it first when there is none yet (the report says so); an
    index that exists but is damaged is reported (IndexDamagedError), never rebuilt."""
    report = None
    if not index_exists(Path(index_dir)):
        report = build_index(
            corpus_dir, index_dir, embedder=embedder, chunk_size=chunk_size,
            chunk_overlap=chunk_overlap, progress=progress, parse_limits=parse_limits,
        )
    return load_index(index_dir, embedder=embedder), report

