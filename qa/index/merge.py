"""Merges: which segments to merge (a policy, a pure function of segment metadata, as
tantivy's `merge_policy.rs` / `log_merge_policy.rs`) and the merge itself.

Tiered, as Lucene's: with more than `max_segments` segments, `merge_factor` segments of
similar size (the largest at most `size_ratio` times the smallest) are merged into one,
smallest first, as long as the result stays under `max_merged_chunks` (bigger ones only by
--optimize). A one-document update then merges one-document segments together, never
rewrites the big ones: at 50k documents an update that merged the four smallest segments
whatever their size took 22 s. The merge reads its segments into memory, so the cap also
bounds a build's memory (100k chunks: about 2 GB with their sentence vectors).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.index.embed_cache import chunk_tokens_of
from qa.index.snapshot import DocEntry, SegmentEntry
from qa.store.segments import Segment, new_segment_name, read_units, write_segment

MAX_SEGMENTS = 8  # more than this after a build: the smallest are merged
MERGE_FACTOR = 4
SIZE_RATIO = 10
MAX_MERGED_CHUNKS = 100_000


@dataclass(frozen=True)
class SegmentMeta:
    """What a merge policy knows of a segment."""

    name: str
    live_docs: int
    live_chunks: int
    deleted_docs: int = 0
    # Words first seen in it, which live documents of other segments may use: a segment
    # with nothing alive but words is carried into the next merge rather than dropped.
    has_words: bool = False


@dataclass(frozen=True)
class MergePlan:
    """Segments kept as they are, and segments merged into one new segment (in this order:
    the merged segment's words keep the first segment's spelling). Any other is dropped."""

    keep: tuple[str, ...]
    merge: tuple[str, ...] = ()


class MergePolicy(Protocol):
    def plan(self, segments: Sequence[SegmentMeta], *, optimize: bool) -> MergePlan:
        """What to merge among these segments (all of them into one when `optimize`)."""
        ...


@dataclass(frozen=True)
class TieredMergePolicy:
    max_segments: int = MAX_SEGMENTS
    merge_factor: int = MERGE_FACTOR
    size_ratio: int = SIZE_RATIO
    max_merged_chunks: int = MAX_MERGED_CHUNKS

    def plan(self, segments: Sequence[SegmentMeta], *, optimize: bool) -> MergePlan:
        dead_words = [s.name for s in segments if not s.live_docs and s.has_words]
        alive = [s for s in segments if s.live_docs]
        kept = tuple(s.name for s in segments if s.live_docs or s.has_words)
        victims = self.victims(alive, optimize=optimize)
        if optimize and dead_words and not victims:
            victims = [s.name for s in alive]
        if not victims:
            return MergePlan(kept)  # a dead segment with words waits for the next merge
        victims += dead_words
        return MergePlan(tuple(n for n in kept if n not in victims), tuple(victims))

    def victims(self, alive: Sequence[SegmentMeta], *, optimize: bool) -> list[str]:
        """The segments with live documents to merge: the first window of `merge_factor`
        segments of similar size, smallest first."""
        if optimize:
            return [s.name for s in alive] if (
                len(alive) > 1 or any(s.deleted_docs for s in alive)) else []
        if len(alive) <= self.max_segments:
            return []
        ordered = sorted(alive, key=lambda s: s.live_chunks)
        for i in range(len(ordered) - self.merge_factor + 1):
            sizes = [s.live_chunks for s in ordered[i : i + self.merge_factor]]
            if sum(sizes) > self.max_merged_chunks:
                break  # the windows further on are bigger still
            if max(sizes) <= self.size_ratio * max(1, min(sizes)):
                return [s.name for s in ordered[i : i + self.merge_factor]]
        return []


def default_policy() -> TieredMergePolicy:
    """The tiered policy with this module's settings (read when called)."""
    return TieredMergePolicy(MAX_SEGMENTS, MERGE_FACTOR, SIZE_RATIO, MAX_MERGED_CHUNKS)


def segment_metas(entries: Sequence[SegmentEntry], documents: Mapping[str, DocEntry],
                  old_segments: Mapping[str, Segment]) -> list[SegmentMeta]:
    docs_in = {e.name: 0 for e in entries}
    size = {e.name: 0 for e in entries}  # live chunks
    for info in documents.values():
        if info.seg in docs_in:
            docs_in[info.seg] += 1
            size[info.seg] += info.chunks
    return [SegmentMeta(e.name, docs_in[e.name], size[e.name], len(e.deleted),
                        has_words=e.name in old_segments and old_segments[e.name].n_words > 0)
            for e in entries]


def live_counts(index_dir: Path, entries: Sequence[SegmentEntry], dim: int, *,
                opened: Mapping[str, Segment] | None = None) -> dict[str, int]:
    """Live chunks and sentences (deleted documents' excluded) of these segments; those in
    `opened` are not opened again."""
    chunks = sentences = 0
    for e in entries:
        held = (opened or {}).get(e.name)
        seg = held or Segment(index_dir / e.name, dim=dim)
        try:
            dead = set(e.deleted)
            if dead:
                docs = np.asarray(seg.chunks[:, 0])
                chunks += int(np.sum(~np.isin(docs, list(dead))))
                sdocs = np.asarray(seg.sentences[:, 0])
                sentences += int(np.sum(~np.isin(sdocs, list(dead))))
            else:
                chunks += len(seg.chunks)
                sentences += len(seg.sentences)
        finally:
            if held is None:
                seg.close()
    return {"chunks": chunks, "sentences": sentences}


def merge(
    index_dir: Path, entries: Sequence[SegmentEntry],
    documents: MutableMapping[str, DocEntry], *, dim: int, optimize: bool,
    numbers: Iterator[int], old_segments: Mapping[str, Segment],
    policy: MergePolicy | None = None,
) -> tuple[list[SegmentEntry], int]:
    """Apply the merge policy (and drop segments with nothing alive). Updates `documents` in
    place for the documents that moved; returns the new entries and how many were merged."""
    plan = (policy or default_policy()).plan(
        segment_metas(entries, documents, old_segments), optimize=optimize)
    by_name = {e.name: e for e in entries}
    kept = [by_name[n] for n in plan.keep]
    if not plan.merge:
        return kept, 0
    name = new_segment_name(next(numbers))
    _write_merged(index_dir, name, plan.merge, documents, dim=dim, old_segments=old_segments)
    return [*kept, SegmentEntry(name)], len(plan.merge)


def _write_merged(
    index_dir: Path, name: str, victims: Sequence[str],
    documents: MutableMapping[str, DocEntry], *, dim: int,
    old_segments: Mapping[str, Segment],
) -> None:
    opened: dict[str, Segment] = {}
    try:
        for v in victims:
            opened[v] = old_segments.get(v) or Segment(index_dir / v, dim=dim)
        moving = [d for d, info in documents.items() if info.seg in opened]
        units = [read_units(opened[documents[d].seg], documents[d].n, chunk_tokens_of)
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
        write_segment(index_dir, name, units, dim=dim, words=words,
                      word_vectors=np.vstack(word_vecs) if word_vecs
                      else np.zeros((0, dim), np.float32),
                      table=[documents[d].meta for d in moving])
    finally:
        for v, seg in opened.items():
            if v not in old_segments:
                seg.close()
    for n, d in enumerate(moving):
        documents[d] = documents[d].moved(name, n)
