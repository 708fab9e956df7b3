"""Checks of an index beyond what opening it validates: `qa index --check` (every text
against its hash, every segment's files), `qa index --restore` (serve an older snapshot
again, after opening it fully), and the recall of the approximate chunk search."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.documents import Document
from qa.documents.model import BLOCK_KINDS
from qa.embedding import Embedder, make_embedder
from qa.errors import IndexNotFoundError, QAError
from qa.index.reader import load_index
from qa.index.snapshot import SNAPSHOT_NAME, set_current, write_error, writer_lock


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
                doc, meta = index.doc(doc_id), index.doc_meta(doc_id)
            except (QAError, OSError, ValueError, KeyError) as exc:
                problems.append(f"{doc_id}: unreadable ({exc})")
                continue
            if hashlib.sha256(doc.text.encode("utf-8")).hexdigest() != doc.sha256:
                problems.append(f"{doc_id}: text does not match its sha256")
            if meta.get("sha256") != doc.sha256:  # what the next build compares
                problems.append(f"{doc_id}: its document table names another sha256")
            holder, n = index.locate(doc_id)
            for recorded in (meta.get("length"), int(holder.doc_lengths[n])):
                if recorded is not None and recorded != len(doc.text):  # what offsets were
                    problems.append(f"{doc_id}: the recorded length {recorded} is not its "
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
    if not SNAPSHOT_NAME.fullmatch(name):
        raise QAError(f"{name!r} is not a snapshot name (snap-NNNNNN)")
    if not (index_dir / name).is_file():  # before the lock, which would create the folder
        raise IndexNotFoundError(f"no snapshot {name} in {index_dir}")
    with writer_lock(index_dir, wait=wait):
        if not (index_dir / name).is_file():
            raise IndexNotFoundError(f"no snapshot {name} in {index_dir}")
        load_index(index_dir, embedder=embedder, name=name).close()
        try:
            set_current(index_dir, name)
        except OSError as exc:
            raise write_error(index_dir, exc) from exc
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
