"""Snapshots: the typed commit point of an index, how it is read, committed and pruned.

A snapshot (`snap-<n>.json`) names the segments of the index with their deleted documents
(each segment holds the table of its documents: qa.store.segments), so that its size follows
the number of segments, not of documents; CURRENT names the live snapshot and is replaced
atomically; one writer at a time holds LOCK. Snapshots and segments no longer named by a
kept snapshot are deleted only after a grace period, so that readers still opening an older
snapshot find its files (as Lucene's IndexDeletionPolicy and tantivy's `index_meta.rs`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import (
    IndexBusyError,
    IndexDamagedError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexWriteError,
    QAError,
)
from qa.files import Unreadable, read_regular, write_atomic
from qa.store.lexical import LEXICAL_ID, LEXICAL_VERSION
from qa.store.vectors import STORE_ID, STORE_VERSION

# 3: documents carry their blocks (kind, heading path), and chunks their heading path in
# what is embedded and matched. 4: the document table is in the segments, not the snapshot.
FORMAT_VERSION = 4
CURRENT = "CURRENT"
LOCK = "LOCK"
KEEP_SNAPSHOTS = 2  # the live one and the one before, for readers and citation checks
GRACE_SECONDS = 60.0  # a superseded snapshot's files live at least this long
# CURRENT holds one name; a snapshot of format 3 at 50k documents was about 30 MB (format 4:
# a few KB). Anything larger is not ours, and is refused before it is read.
MAX_CURRENT_BYTES = 4096
MAX_SNAPSHOT_BYTES = 512 * 1024 * 1024
# The stores this qa writes and reads, recorded in every snapshot and checked on open.
STORES = {"vectors": {"id": STORE_ID, "version": STORE_VERSION},
          "lexical": {"id": LEXICAL_ID, "version": LEXICAL_VERSION}}

SNAPSHOT_NAME = re.compile(r"snap-(\d{6,})\.json")
SEGMENT_NAME = re.compile(r"seg-\d{6,}-[0-9a-f]{6}")
OLD_GENERATION = re.compile(r"g-\d{8}T\d{6}-[0-9a-f]{6}")


@dataclass(frozen=True)
class SegmentEntry:
    """A segment named by a snapshot, with the local numbers of its deleted documents, and
    (local number, size, mtime_ns) of its documents whose files were touched since the
    segment was written, without a change of content (its table has the older stat)."""

    name: str
    deleted: tuple[int, ...] = ()
    restat: tuple[tuple[int, int, int], ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "deleted": list(self.deleted)}
        if self.restat:
            out["restat"] = [list(r) for r in self.restat]
        return out

    @classmethod
    def from_json(cls, e: Mapping[str, Any]) -> SegmentEntry:
        return cls(str(e["name"]), tuple(int(n) for n in e.get("deleted", [])),
                   tuple((int(n), int(size), int(mtime))
                         for n, size, mtime in e.get("restat", [])))


@dataclass(frozen=True)
class DocEntry:
    """Where a live document is (its segment and local number) and its row of the document
    table: sha256, parser, date, title, length, chunks, and the file's [size, mtime_ns]."""

    seg: str
    n: int
    meta: Mapping[str, Any]

    @property
    def chunks(self) -> int:
        return int(self.meta.get("chunks", 1))

    @property
    def stat(self) -> list[int] | None:
        st = self.meta.get("stat")
        return list(st) if st is not None else None

    def moved(self, seg: str, n: int) -> DocEntry:
        return DocEntry(seg, n, self.meta)

    def restat(self, st: tuple[int, int] | None) -> DocEntry:
        return DocEntry(self.seg, self.n, {**self.meta, "stat": list(st or (0, 0))})


@dataclass(frozen=True)
class Snapshot:
    """One commit point: what a reader opens and a writer starts from."""

    embedder: Mapping[str, Any]
    chunking: Mapping[str, Any]
    segments: tuple[SegmentEntry, ...]
    counts: Mapping[str, int] = field(default_factory=dict)
    corpus: str = ""
    built_at: str = ""
    built_at_ns: int | None = None
    skipped: tuple[str, ...] = ()
    # Files a parser refused: size, mtime, hash and reason, so that an unchanged one is not
    # parsed again (qa index --retry-skipped does).
    skip_records: Mapping[str, Any] = field(default_factory=dict)
    store: Mapping[str, Any] = field(default_factory=lambda: STORES)
    name: str = ""  # its file name (snap-<n>.json); "" before it is committed

    @property
    def generation(self) -> str:
        return self.name.removesuffix(".json")

    @classmethod
    def from_json(cls, data: Mapping[str, Any], name: str = "") -> Snapshot:
        """The snapshot of a manifest of this format that `snapshot_problem` accepts."""
        return cls(
            embedder=dict(data.get("embedder") or {}),
            chunking=dict(data.get("chunking") or {}),
            segments=tuple(SegmentEntry.from_json(e) for e in data["segments"]),
            counts=dict(data.get("counts") or {}),
            corpus=str(data.get("corpus") or ""),
            built_at=str(data.get("built_at") or ""),
            built_at_ns=data.get("built_at_ns") if isinstance(data.get("built_at_ns"), int)
            else None,
            skipped=tuple(data.get("skipped") or ()),
            skip_records=dict(data.get("skip_records") or {}),
            store=dict(data.get("store") or {}),
            name=name,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "embedder": dict(self.embedder),
            "chunking": dict(self.chunking),
            "store": dict(self.store),
            "corpus": self.corpus,
            "built_at": self.built_at,
            "built_at_ns": self.built_at_ns,
            "skipped": list(self.skipped),
            "skip_records": dict(self.skip_records),
            "counts": dict(self.counts),
            "segments": [e.to_json() for e in self.segments],
        }



def snapshot_problem(manifest: Mapping[str, Any]) -> str | None:
    """What makes a snapshot of this format unusable (schema, types, segment names that would
    leave the index folder), or None."""
    segments = manifest.get("segments")
    if not isinstance(segments, list):
        return "'segments' is not a list"
    names: set[str] = set()
    for e in segments:
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            return "a segment entry has no name"
        if not SEGMENT_NAME.fullmatch(e["name"]):  # never '../x' or '/abs': inside the folder
            return f"segment name {e['name'][:80]!r} is not a segment of this folder"
        deleted = e.get("deleted", [])
        if not isinstance(deleted, list) or not all(
                type(n) is int and n >= 0 for n in deleted):
            return f"segment {e['name']} has invalid deletions"
        restat = e.get("restat", [])
        if not isinstance(restat, list) or not all(
                isinstance(r, list) and len(r) == 3 and all(type(v) is int and v >= 0 for v in r)
                for r in restat):
            return f"segment {e['name']} has invalid file stats"
        if e["name"] in names:
            return f"segment {e['name']} is named twice"
        names.add(e["name"])
    for key in ("embedder", "chunking", "counts", "store"):
        if not isinstance(manifest.get(key, {}), dict):
            return f"{key!r} is not a mapping"
    if type(manifest.get("counts", {}).get("documents", 0)) is not int:
        return "'counts' is invalid"
    if not isinstance(manifest.get("skipped", []), list) or \
            not isinstance(manifest.get("skip_records", {}), dict):
        return "'skipped' is invalid"
    return None


# ---------------------------------------------------------------------------- reading


def current(index_dir: Path) -> tuple[str | None, str | None]:
    """(the snapshot CURRENT names, None), (None, None) when there is no CURRENT (no index),
    or (None, what is wrong) when CURRENT exists but cannot be used."""
    try:
        raw = read_regular(index_dir / CURRENT, MAX_CURRENT_BYTES)
    except (FileNotFoundError, NotADirectoryError):
        return None, None
    except Unreadable as exc:
        return None, str(exc)
    try:
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None, "CURRENT is not text"
    if not (SNAPSHOT_NAME.fullmatch(name) or OLD_GENERATION.fullmatch(name)):
        return None, f"CURRENT names {name[:80]!r}, which is not a snapshot name"
    if not os.path.lexists(index_dir / name):
        return None, f"CURRENT names {name}, which is missing"
    return name, None


def live_name(index_dir: Path) -> str | None:
    return current(index_dir)[0]


def read_snapshot(index_dir: Path, name: str) -> dict[str, Any]:
    """A snapshot's manifest as stored (any format; validated when it is of this one)."""
    path = index_dir / name
    if path.is_dir():  # a format-1 generation folder
        path = path / "manifest.json"
    try:
        manifest = json.loads(read_regular(path, MAX_SNAPSHOT_BYTES).decode("utf-8"))
    except FileNotFoundError:
        raise
    except (Unreadable, ValueError, RecursionError) as exc:
        # RecursionError: JSON nested thousands deep; never let it escape a reader.
        why = str(exc) if isinstance(exc, Unreadable) else exc.__class__.__name__
        raise IndexMismatchError(f"{path} is unreadable ({why}); run `qa index --rebuild`") \
            from None
    if not isinstance(manifest, dict):
        raise IndexMismatchError(f"{path} is not an index snapshot; run `qa index --rebuild`")
    if manifest.get("format_version") == FORMAT_VERSION:
        problem = snapshot_problem(manifest)
        if problem is not None:
            raise IndexMismatchError(f"{path} is not a valid snapshot ({problem})")
    return manifest


# The last answer of newest_intact_snapshot, by the folder's entries and its snapshots' stat:
# a server watching a damaged CURRENT asks every tick, and each answer parses snapshots.
_INTACT: list[tuple[tuple[Any, ...], str | None]] = []


def newest_intact_snapshot(index_dir: Path, *, dim: int | None = None) -> str | None:
    """The newest snapshot that reads, validates and whose segments are all present."""
    try:
        entries = sorted(Path(index_dir).iterdir())
        names = sorted((p.name for p in entries if SNAPSHOT_NAME.fullmatch(p.name)),
                       reverse=True)
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
            manifest = read_snapshot(index_dir, name)
            if manifest.get("format_version") != FORMAT_VERSION:
                continue
            if all((Path(index_dir) / e["name"] / "segment.json").is_file()
                   for e in manifest["segments"]):
                return name
        except (QAError, OSError, KeyError, TypeError):
            continue
    return None


def damaged_current(index_dir: Path, problem: str) -> IndexMismatchError:
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
    name, problem = current(Path(index_dir))
    if problem is not None and strict:
        raise damaged_current(Path(index_dir), problem)
    return name.removesuffix(".json") if name is not None else None


def index_exists(index_dir: Path) -> bool:
    """True when index_dir holds an index (of any format), intact or damaged: a damaged one
    is reported with its repair when opened, never silently rebuilt."""
    name, problem = current(Path(index_dir))
    return name is not None or problem is not None


def read_manifest(index_dir: Path) -> dict[str, Any]:
    """The live snapshot's manifest; IndexNotFoundError, or IndexDamagedError naming the
    repair when CURRENT cannot be used."""
    index_dir = Path(index_dir)
    name, problem = current(index_dir)
    if name is None:
        if problem is not None:
            raise damaged_current(index_dir, problem)
        raise IndexNotFoundError(f"no index at {index_dir}; run `qa index` to build it")
    try:
        return read_snapshot(index_dir, name)
    except IndexMismatchError as exc:  # unreadable or invalid: named with its repair
        raise damaged_current(index_dir, f"{name} is invalid: {exc}") from None


def check_manifest(
    manifest: Mapping[str, Any], *, embedder_id: str, embedder_dim: int, where: Path
) -> None:
    """Refuse an index of another format, embedder or store, saying what to run."""
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
    store = manifest.get("store")
    if store is not None and store != STORES:
        raise IndexMismatchError(
            f"index at {where} was written with the stores {store}, this qa reads {STORES}; "
            "run `qa index --rebuild` to rebuild it"
        )


# ---------------------------------------------------------------------------- writing


@contextlib.contextmanager
def writer_lock(index_dir: Path, *, wait: float | None = None) -> Iterator[None]:
    """Hold the index folder's writer lock; wait up to `wait` seconds (None: forever), then
    IndexBusyError. The kernel drops the lock when its process dies, so a kill -9 leaves
    no stale lock behind."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        fh = open(index_dir / LOCK, "a+")  # noqa: SIM115 - held for the block
    except OSError as exc:
        raise write_error(index_dir, exc) from exc
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


def write_error(index_dir: Path, exc: OSError) -> IndexWriteError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "the disk is full"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        what = "the index folder is not writable"
    else:
        what = f"the index could not be written ({exc.strerror or exc})"
    return IndexWriteError(f"{what}: the index at {index_dir} is unchanged", exc.errno)


def next_number(index_dir: Path) -> int:
    """One more than the highest snapshot or segment number in the folder."""
    numbers = [0]
    with contextlib.suppress(OSError):
        for p in index_dir.iterdir():
            m = SNAPSHOT_NAME.fullmatch(p.name)
            if m:
                numbers.append(int(m.group(1)))
            elif SEGMENT_NAME.fullmatch(p.name.removeprefix(".tmp-")):
                numbers.append(int(p.name.removeprefix(".tmp-").split("-")[1]))
    return max(numbers) + 1


def set_current(index_dir: Path, name: str) -> None:
    """Point CURRENT at a snapshot: the atomic switch."""
    write_atomic(index_dir / CURRENT, name + "\n")


def commit(index_dir: Path, snapshot: Snapshot, number: int) -> str:
    """Write the snapshot, then point CURRENT at it; returns its file name."""
    name = f"snap-{number:06d}.json"
    try:
        write_atomic(index_dir / name, json.dumps(snapshot.to_json(), ensure_ascii=False))
        set_current(index_dir, name)
    except OSError:
        with contextlib.suppress(OSError):
            if live_name(index_dir) != name:
                (index_dir / name).unlink()
        raise
    return name


def prune(index_dir: Path, *, keep: str,
          known: Mapping[str, Iterable[str]] | None = None) -> None:
    """Delete snapshots beyond the newest KEEP_SNAPSHOTS that were superseded more than
    GRACE_SECONDS ago, then segments no remaining snapshot names (and our own leftovers:
    format-1 generations, temporary folders of dead builds). Only names this code makes
    are ever deleted, in case --index points at a folder that holds other things.
    `known`: the segments of snapshots the caller holds (the live one and the one it
    committed), which are not read again."""
    try:
        names = sorted(p.name for p in index_dir.iterdir() if SNAPSHOT_NAME.fullmatch(p.name))
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
        if known is not None and n in known:
            referenced.update(known[n])
            continue
        with contextlib.suppress(OSError, QAError, KeyError, TypeError):
            referenced.update(e["name"] for e in read_snapshot(index_dir, n)["segments"])
    for p in index_dir.iterdir():
        plain = p.name.removeprefix(".tmp-")
        ours = SEGMENT_NAME.fullmatch(plain) or (
            OLD_GENERATION.fullmatch(plain) and now - _mtime(p) > GRACE_SECONDS)
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
