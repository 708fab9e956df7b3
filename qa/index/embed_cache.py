"""Embedding during a build: each distinct text once (a bounded cache), in worker processes
for big batches, or elsewhere (a Ray cluster) when the caller gives a remote embedder."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from qa.chunking import (
    Chunk,
    Span,
    chunk_document,
    chunk_section,
    contextual_text,
    split_sentences,
)
from qa.documents import Document
from qa.embedding import Embedder, make_embedder
from qa.errors import QAError
from qa.store.segments import DocUnits
from qa.text import tokens, vocabulary

# A chunk's vector is the mean of its sentences' vectors (weighted by the characters it holds)
# rather than an embedding of its own: the sentences are embedded anyway, for answering, and
# chunks were 45% of all embedded characters. On eval/questions.jsonl and eval/precise.jsonl
# (same run): R@5 0.963 -> 0.950 (one English question), accuracy 0.838 -> 0.838 and
# 0.763 -> 0.763, abstention unchanged; the build embeds about half as much.
CHUNK_VECTORS = "sentence-mean"  # or "embedded"

# Embeds batches of passage texts elsewhere (qa/distributed.py: Ray), one array per batch,
# in the order given.
RemoteEmbed = Callable[[list[list[str]]], Iterable[np.ndarray]]


class EmbedCache:
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


# Words the question-word translation may land on: letters only, as a dictionary would hold
# them. Identifiers, paths and hex strings in technical text tripled the vocabulary of a
# /usr/share/doc sample (and its vectors) without ever being a translation.
MAX_WORD_CHARS = 24


def _translatable(word: str) -> bool:
    return len(word) <= MAX_WORD_CHARS and word.isalpha()


def embed_documents(
    docs: list[Document], *, cache: EmbedCache, size: int, overlap: int,
    new_words: Callable[[list[str]], list[str]], advance: Callable[[int], None],
) -> tuple[list[DocUnits], list[str], np.ndarray, int]:
    """The documents' units with their vectors, the words `new_words` keeps of theirs (those
    no segment holds yet) with their vectors, and how many chunks were embedded."""
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
    words = new_words([w for w in vocabulary([d.text[d.body_start :] for d in docs])
                       if _translatable(w)])
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
    cache: EmbedCache, advance: Callable[[int], None],
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
