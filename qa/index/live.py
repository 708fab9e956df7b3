"""What a build starts from: the live snapshot, read once, and what of it can be reused."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.embedding import Embedder
from qa.errors import IndexMismatchError, QAError
from qa.index.snapshot import (
    DocEntry,
    SegmentEntry,
    Snapshot,
    check_manifest,
    current,
    damaged_current,
    read_snapshot,
)
from qa.store.segments import Segment


@dataclass
class Live:
    """The live snapshot as a build starts from it: its segments and document tables when
    they can be reused (same format, embedder and chunking), else only its hashes."""

    name: str | None = None
    manifest: Mapping[str, Any] | None = None  # as stored, when it reads
    reusable: Snapshot | None = None  # when its segments can be reused
    hashes: Mapping[str, str] = field(default_factory=dict)  # old documents' sha256
    segments: dict[str, Segment] = field(default_factory=dict)  # opened, by name
    docs: dict[str, DocEntry] = field(default_factory=dict)  # live documents
    deleted: dict[str, set[int]] = field(default_factory=dict)  # by segment (a build adds)
    restated: set[str] = field(default_factory=set)  # touched, not changed (a build adds)

    def close(self) -> None:
        for seg in self.segments.values():
            seg.close()


def read_live(index_dir: Path, rebuild: bool) -> tuple[str | None, dict[str, Any] | None]:
    """The live snapshot's name and manifest as stored (None when unreadable), read once."""
    name, problem = current(index_dir)
    if problem is not None and not rebuild:
        raise damaged_current(index_dir, problem)
    if name is None:
        return None, None
    try:
        return name, read_snapshot(index_dir, name)
    except IndexMismatchError as exc:
        if not rebuild:  # as for a missing snapshot: restore it rather than re-embed all
            raise damaged_current(index_dir, f"{name} is invalid: {exc}") from None
        return name, None
    except OSError:
        return name, None


def open_live(
    index_dir: Path, name: str | None, manifest: dict[str, Any] | None, *, embedder: Embedder,
    chunking: dict[str, Any], rebuild: bool,
) -> Live:
    """What of the live snapshot a build can reuse, its segments opened."""
    if name is None or manifest is None:
        return Live(name)
    try:
        check_manifest(manifest, embedder_id=embedder.id, embedder_dim=embedder.dim,
                       where=index_dir)
    except QAError:
        return Live(name, manifest, None, _old_hashes(index_dir, manifest))
    if rebuild or manifest.get("chunking") != chunking:
        return Live(name, manifest, None, _old_hashes(index_dir, manifest))
    live = Live(name, manifest, Snapshot.from_json(manifest, name))
    try:
        _open_segments(index_dir, live, embedder.dim)
    except (QAError, OSError, ValueError) as exc:
        live.close()
        raise IndexMismatchError(
            f"index at {index_dir} is damaged ({exc}); run `qa index --rebuild`") from exc
    live.hashes = {d: str(e.meta.get("sha256")) for d, e in live.docs.items()}
    return live


def _open_segments(index_dir: Path, live: Live, dim: int) -> None:
    """Open the live snapshot's segments and read their document tables."""
    assert live.reusable is not None
    for e in live.reusable.segments:
        seg = Segment(index_dir / e.name, dim=dim)
        live.segments[e.name] = seg
        live.deleted[e.name] = set(e.deleted)
        restat = {n: [size, mtime] for n, size, mtime in e.restat}
        for n, (doc_id, row) in enumerate(zip(seg.doc_ids, seg.table(), strict=True)):
            if n in live.deleted[e.name]:
                continue
            if n in restat:
                row["stat"] = restat[n]
                live.restated.add(doc_id)
            live.docs[doc_id] = DocEntry(e.name, n, row)


def _old_hashes(index_dir: Path, manifest: Mapping[str, Any]) -> dict[str, str]:
    """The live documents' sha256 from a snapshot that cannot be reused (another embedder,
    chunking or format), to tell changed documents from unchanged ones; {} if unreadable."""
    with contextlib.suppress(QAError, OSError, KeyError, TypeError, AttributeError, ValueError):
        if isinstance(manifest.get("documents"), dict):  # format 3 and older
            return {d: str(info["sha256"]) for d, info in manifest["documents"].items()}
        hashes: dict[str, str] = {}
        for e in manifest["segments"]:
            entry = SegmentEntry.from_json(e)
            seg = Segment(index_dir / entry.name, dim=int(manifest["embedder"]["dim"]))
            try:
                for n, (doc_id, row) in enumerate(zip(seg.doc_ids, seg.table(), strict=True)):
                    if n not in entry.deleted:
                        hashes[doc_id] = str(row["sha256"])
            finally:
                seg.close()
        return hashes
    return {}
