"""Opening an index: `Index` reads one snapshot, its segments memory-mapped, texts read on
demand; `load_index` opens (and validates) the live snapshot, `open_index` builds it first
when there is none."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.chunking import Chunk, Span
from qa.documents import Document, ParseLimits, corpus_paths
from qa.embedding import Embedder
from qa.errors import IndexMismatchError, IndexNotFoundError
from qa.index.embed_cache import single_threaded_blas
from qa.index.snapshot import (
    Snapshot,
    check_manifest,
    current,
    damaged_current,
    index_exists,
    read_snapshot,
)
from qa.index.writer import BuildReport, Progress, build_index, file_stat
from qa.store.lexical import bm25_idf
from qa.store.segments import Segment
from qa.text import fold, tokens

# qa ask's staleness check stats at most this many files.
STALE_CHECK_MAX_FILES = 5_000


@dataclass
class _Open:
    segment: Segment
    deleted: frozenset[int]  # local document numbers
    chunk_alive: np.ndarray | None  # bool mask over the segment's chunks; None: all alive
    restat: dict[int, list[int]] = field(default_factory=dict)  # newer [size, mtime_ns]


class Index:
    """An opened snapshot: its segments memory-mapped, texts read on demand.

    Chunk and sentence ids are global: a segment's local ids plus the counts of the segments
    before it in the snapshot.
    """

    def __init__(
        self, index_dir: Path, snapshot: Snapshot, embedder: Embedder, segments: list[_Open],
    ) -> None:
        self.path = index_dir / snapshot.name
        self.snapshot = snapshot
        self.embedder = embedder
        self._segments = segments
        # Where each live document is: (segment, local number). Its metadata (the segments'
        # document tables) is read when asked for, one row at a time.
        self._where: dict[str, tuple[int, int]] = {}
        for i, entry in enumerate(segments):
            for n, doc_id in enumerate(entry.segment.doc_ids):
                if n not in entry.deleted:
                    if doc_id in self._where:
                        raise IndexMismatchError(f"document {str(doc_id)[:80]!r} is live in "
                                                 f"two segments ({entry.segment.name})")
                    self._where[doc_id] = (i, n)
        self._sorted_ids: list[str] | None = None
        self._manifest: dict[str, Any] | None = None
        self._chunk_base = np.cumsum([0] + [len(s.segment.chunks) for s in segments])
        self._sent_base = np.cumsum([0] + [len(s.segment.sentences) for s in segments])
        self._texts: OrderedDict[str, Document] = OrderedDict()
        # Lexical terms of each sentence, filled as questions need them (CPython dict
        # writes are atomic, so threads serving requests can share it).
        self.sentence_terms: dict[int, frozenset[str]] = {}
        self._n_units = sum(s.segment.lexical.n_units for s in segments)
        total = sum(s.segment.lexical.total_length for s in segments)
        self._avg_length = total / self._n_units if self._n_units else 1.0

    # -- snapshot facts
    @property
    def manifest(self) -> dict[str, Any]:
        """The snapshot as stored: settings, counts, segments (documents: `doc_meta`)."""
        if self._manifest is None:
            self._manifest = self.snapshot.to_json()
        return self._manifest

    @property
    def built_at(self) -> str:
        return self.snapshot.built_at

    @property
    def generation(self) -> str:
        """Name of the snapshot this Index reads (returned with answers, so that a citation
        can be checked against the same texts after a swap)."""
        return self.path.name.removesuffix(".json")

    @property
    def n_documents(self) -> int:
        return len(self._where)

    @property
    def n_chunks(self) -> int:
        """Live chunks (deleted documents' chunks excluded)."""
        return int(self.snapshot.counts.get("chunks", 0))

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
        """The live documents' ids, sorted (the corpus order)."""
        if self._sorted_ids is None:
            self._sorted_ids = sorted(self._where)
        return list(self._sorted_ids)

    def has_doc(self, doc_id: str) -> bool:
        return doc_id in self._where

    def locate(self, doc_id: str) -> tuple[Segment, int]:
        """The segment holding a live document, and its local number (KeyError if absent)."""
        s, n = self._where[doc_id]
        return self._segments[s].segment, n

    def doc_meta(self, doc_id: str) -> dict[str, Any]:
        """The document's metadata without its text: sha256, date, title, length, ..."""
        s, n = self._where[doc_id]
        entry = self._segments[s]
        row = entry.segment.table_row(n)
        if n in entry.restat:
            row["stat"] = entry.restat[n]
        return row

    def doc(self, doc_id: str) -> Document:
        """The document with its full text (KeyError when absent); recent ones cached."""
        cached = self._texts.get(doc_id)
        if cached is not None:
            return cached
        seg, n = self.locate(doc_id)
        doc = seg.document(n)
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

        from qa.store.words import trigram_keys

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


def _units_problem(seg: Segment, lengths: np.ndarray) -> str | None:
    """What is wrong with a segment's chunk and sentence offsets (a document number past
    the segment, start > end, an end past the document's length), or None. `lengths` holds
    each local document's length as recorded (doc_lengths.npy), -1 where unknown."""
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


def _open_segments(index_dir: Path, snapshot: Snapshot, dim: int) -> list[_Open]:
    opened: list[_Open] = []
    try:
        for entry in snapshot.segments:
            seg = Segment(index_dir / entry.name, dim=dim)
            opened.append(_Open(seg, frozenset(), None))
            deleted = frozenset(entry.deleted)
            if any(n >= len(seg.doc_ids) for n in deleted | {r[0] for r in entry.restat}):
                raise IndexMismatchError(f"{seg.name} deletes a document it does not hold")
            problem = _units_problem(seg, np.asarray(seg.doc_lengths, dtype=np.int64))
            if problem is not None:
                raise IndexMismatchError(problem)
            alive = None
            if deleted and len(seg.chunks):
                dead = np.zeros(len(seg.doc_ids), dtype=bool)
                dead[list(deleted)] = True
                alive = ~dead[np.asarray(seg.chunks[:, 0])]
            opened[-1] = _Open(seg, deleted, alive,
                               {n: [size, mtime] for n, size, mtime in entry.restat})
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
        live, problem = (name, None) if name else current(index_dir)
        if live is None:
            if problem is not None:
                raise damaged_current(index_dir, problem)
            raise IndexNotFoundError(f"no index at {index_dir}; run `qa index` to build it")
        try:
            try:
                manifest = read_snapshot(index_dir, live)
            except IndexMismatchError as exc:
                if name is not None:
                    raise
                raise damaged_current(index_dir, f"{live} is invalid: {exc}") from None
            check_manifest(manifest, embedder_id=embedder.id, embedder_dim=embedder.dim,
                           where=index_dir)
            snapshot = Snapshot.from_json(manifest, live)
            segments = _open_segments(index_dir, snapshot, embedder.dim)
            try:
                return Index(index_dir, snapshot, embedder, segments)
            except BaseException:
                for o in segments:
                    o.segment.close()
                raise
        except FileNotFoundError as exc:
            # A writer pruned this snapshot while we opened it: read CURRENT again.
            if name is not None or attempt == 2:
                raise _damaged(index_dir, exc) from exc
        except (KeyError, TypeError, ValueError, IndexError, AttributeError,
                RecursionError) as exc:
            raise _damaged(index_dir, exc) from exc
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------- corpus


def corpus_changes(index: Index, corpus_dir: Path) -> list[str]:
    """Files of corpus_dir added, removed or modified since the index was built (by listing
    and size/modification time: one stat per file, no reading). Skipped for corpora over
    STALE_CHECK_MAX_FILES documents, where even the listing costs more than an answer."""
    if index.n_documents > STALE_CHECK_MAX_FILES or not Path(corpus_dir).is_dir():
        return []
    built_ns = index.snapshot.built_at_ns
    known = set(index.doc_ids()) | set(index.snapshot.skipped)
    changed = []
    seen = set()
    for doc_id, path in corpus_paths(Path(corpus_dir)):
        seen.add(doc_id)
        st = file_stat(path)
        if doc_id not in known:
            changed.append(doc_id)
        elif index.has_doc(doc_id):
            recorded = index.doc_meta(doc_id).get("stat")
            if st is None or (recorded is not None and list(st) != recorded) or (
                recorded is None and isinstance(built_ns, int) and st[1] > built_ns):
                changed.append(doc_id)
    changed.extend(sorted(d for d in index.doc_ids() if d not in seen))
    return changed


def check_corpus(index: Index, corpus_dir: Path) -> None:
    """Refuse to answer from an index built from another corpus folder than the one named."""
    built_from = index.snapshot.corpus
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

