"""Build, update, save and load the on-disk index.

Layout of an index folder::

    index/
      CURRENT            name of the live generation (replaced atomically)
      g-<time>-<rand>/   one complete generation
        manifest.json    format version, embedder id/dim, chunking, per-document sha256
        documents.jsonl  the documents' exact text and metadata
        chunks.json      [doc number, start, end] per chunk
        sentences.json   [doc number, start, end] per sentence
        chunks.faiss     inner-product FAISS index of chunk vectors
        sentences.faiss  inner-product FAISS index of sentence vectors
        bm25/            bm25s lexical index over the chunks
        vocab.json       the corpus's distinct words, and vocab.npy their vectors (float16),
                         used to translate question words into corpus words

A build writes a new generation folder and only then points CURRENT at it, so an interrupted
or failed build never leaves a broken index, and readers never see a half-written one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.chunking import SPLITTER_VERSION, Chunk, Span, chunk_document, split_sentences
from qa.documents import Document, FormatStats, SkippedFile, corpus_paths, read_corpus
from qa.embedding import Embedder
from qa.errors import CorpusError, IndexMismatchError, IndexNotFoundError, QAError
from qa.text import fold, tokens, vocabulary

FORMAT_VERSION = 1
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
KEEP_GENERATIONS = 2  # the live one and the one before, for readers still loading it

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
    # What read_corpus reported: per format read/skipped/pages/time, and files read with a
    # caveat (e.g. a malformed date).
    formats: list[FormatStats] = field(default_factory=list)
    warnings: list[SkippedFile] = field(default_factory=list)


@dataclass
class Index:
    """A loaded index: documents, chunks, sentences, vectors and the lexical model."""

    path: Path
    manifest: dict[str, Any]
    embedder: Embedder
    documents: dict[str, Document]
    chunks: list[Chunk]
    sentences: list[Span]
    chunk_vectors: np.ndarray
    sentence_vectors: np.ndarray
    chunk_faiss: Any
    sentence_faiss: Any
    bm25: Any
    vocab: list[str] = field(default_factory=list)
    vocab_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    vocab_folded: list[str] = field(default_factory=list)
    # Lexical terms of each sentence, filled as questions need them (CPython dict writes are
    # atomic, so threads serving requests can share it).
    sentence_terms: dict[int, frozenset[str]] = field(default_factory=dict)

    def terms_of_sentence(self, i: int) -> frozenset[str]:
        terms = self.sentence_terms.get(i)
        if terms is None:
            s = self.sentences[i]
            terms = frozenset(tokens(self.documents[s.doc_id].text[s.start : s.end]))
            self.sentence_terms[i] = terms
        return terms
    # For each sentence, the chunks that hold it (fully or in part), in order.
    sentence_chunks: list[list[int]] = field(default_factory=list)
    chunk_sentences: list[list[int]] = field(default_factory=list)

    @property
    def built_at(self) -> str:
        return str(self.manifest.get("built_at", ""))

    # The accessors below are the surface the rest of qa uses; the storage behind them
    # (segments, memory-mapped files) is this module's business.

    @property
    def generation(self) -> str:
        """Name of the snapshot this Index reads (returned with answers, so that a citation
        can be checked against the same texts after a swap)."""
        return self.path.name

    @property
    def n_documents(self) -> int:
        return len(self.documents)

    @property
    def n_chunks(self) -> int:
        return len(self.chunks)

    def doc_ids(self) -> list[str]:
        return list(self.documents)

    def has_doc(self, doc_id: str) -> bool:
        return doc_id in self.documents

    def doc(self, doc_id: str) -> Document:
        """The document with its full text (KeyError when absent)."""
        return self.documents[doc_id]

    def doc_meta(self, doc_id: str) -> dict[str, Any]:
        """The document's metadata without its text: sha256, date, title, length."""
        return dict(self.manifest["documents"][doc_id])

    def chunk(self, chunk_id: int) -> Chunk:
        return self.chunks[chunk_id]

    def sentences_of_chunk(self, chunk_id: int) -> list[int]:
        """Ids of the sentences that overlap the chunk, in text order."""
        return self.chunk_sentences[chunk_id]

    def sentence(self, sentence_id: int) -> Span:
        return self.sentences[sentence_id]

    def sentence_vectors_of(self, sentence_ids: list[int]) -> np.ndarray:
        """float32 vectors of these sentences, one row each."""
        return np.asarray(self.sentence_vectors[sentence_ids], dtype=np.float32)

    def doc_freq(self, term: str) -> int:
        """Number of chunks holding the (stemmed) term; 0 when the corpus lacks it."""
        j = self.bm25.vocab_dict.get(term)
        if j is None:
            return 0
        return int(self.bm25.scores["indptr"][j + 1] - self.bm25.scores["indptr"][j])

    def has_term(self, term: str) -> bool:
        return term in self.bm25.vocab_dict


# ---------------------------------------------------------------------------- generations


def _current_generation(index_dir: Path) -> Path | None:
    pointer = index_dir / CURRENT
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    gen = index_dir / name
    return gen if name and "/" not in name and gen.is_dir() else None


def index_exists(index_dir: Path) -> bool:
    """True when index_dir holds a complete index (of any format)."""
    return _current_generation(Path(index_dir)) is not None


def _read_manifest(gen: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((gen / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexMismatchError(
            f"index at {gen.parent} is unreadable ({exc.__class__.__name__}); run `qa index`"
        ) from exc
    return manifest


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


# ---------------------------------------------------------------------------- build


def _faiss_index(vectors: np.ndarray, dim: int) -> Any:
    import faiss

    # Exact inner product over L2-normalised vectors (cosine). Corpora for this tool are
    # small enough that exact search is both fastest to build and best in recall.
    index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _bm25(chunk_texts: list[str]) -> Any:
    import bm25s

    model = bm25s.BM25()
    corpus_tokens = [tokens(t) or ["\u2205"] for t in chunk_texts]
    model.index(corpus_tokens, show_progress=False)
    return model


@dataclass
class _DocUnits:
    chunks: list[Chunk]
    sentences: list[Span]
    chunk_vectors: np.ndarray
    sentence_vectors: np.ndarray


def _previous_units(
    index_dir: Path, *, embedder: Embedder, chunking: dict[str, int]
) -> tuple[dict[str, str], dict[str, _DocUnits], dict[str, np.ndarray]]:
    """Per-document hashes of the live index (to count changes), and its units and word
    vectors when they can be reused (same format, embedder and chunking); else empty."""
    gen = _current_generation(index_dir)
    if gen is None:
        return {}, {}, {}
    try:
        manifest = _read_manifest(gen)
        hashes = {d: str(info["sha256"]) for d, info in manifest["documents"].items()}
    except (QAError, KeyError, TypeError, AttributeError):
        return {}, {}, {}
    try:
        check_manifest(manifest, embedder_id=embedder.id, embedder_dim=embedder.dim, where=gen)
        if manifest.get("chunking") != chunking:
            return hashes, {}, {}
        old = _load_generation(gen, manifest, embedder)
    except QAError:
        return hashes, {}, {}
    units: dict[str, _DocUnits] = {}
    for doc_id in old.documents:
        c_idx = [i for i, c in enumerate(old.chunks) if c.doc_id == doc_id]
        s_idx = [i for i, s in enumerate(old.sentences) if s.doc_id == doc_id]
        units[doc_id] = _DocUnits(
            [old.chunks[i] for i in c_idx],
            [old.sentences[i] for i in s_idx],
            old.chunk_vectors[c_idx],
            old.sentence_vectors[s_idx],
        )
    words = dict(zip(old.vocab, old.vocab_vectors, strict=True))
    return hashes, units, words


DEFAULT_CHUNK_SIZE = 600  # chosen on eval/questions.jsonl (README, Quality)
DEFAULT_CHUNK_OVERLAP = 100


def _chunking_or_live(
    index_dir: Path, size: int | None, overlap: int | None
) -> tuple[int, int]:
    """Fill unset chunking parameters from the live index, else the defaults."""
    if size is None or overlap is None:
        live: dict[str, Any] = {}
        gen = _current_generation(index_dir)
        if gen is not None:
            try:
                live = dict(_read_manifest(gen).get("chunking") or {})
            except QAError:
                live = {}
        if size is None:
            size = int(live.get("size", DEFAULT_CHUNK_SIZE))
        if overlap is None:
            overlap = int(live.get("overlap", min(DEFAULT_CHUNK_OVERLAP, size - 1)))
    return size, overlap


def _embed_batched(
    embedder: Embedder, texts: list[str], progress: Progress | None, done: int, total: int
) -> np.ndarray:
    out = []
    batch = 64
    for i in range(0, len(texts), batch):
        out.append(embedder.embed(texts[i : i + batch], kind="passage"))
        done += len(texts[i : i + batch])
        if progress:
            progress(done, total)
    if not out:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return np.vstack(out)


def build_index(
    corpus_dir: Path,
    index_dir: Path,
    *,
    embedder: Embedder,
    chunk_size: int | None = None,
    chunk_overlap: int | None = None,
    progress: Progress | None = None,
) -> BuildReport:
    """Index corpus_dir into index_dir, re-embedding only new or changed documents.

    Chunk size and overlap left as None keep the live index's (else 600 and 100).
    Raises CorpusError (no readable document) before anything is written.
    """
    started = time.perf_counter()
    read_at_ns = time.time_ns()  # files modified after this are newer than the index
    corpus_dir, index_dir = Path(corpus_dir), Path(index_dir)
    chunk_size, chunk_overlap = _chunking_or_live(index_dir, chunk_size, chunk_overlap)
    if chunk_overlap >= chunk_size:
        raise QAError(
            f"chunk overlap ({chunk_overlap}) must be smaller than chunk size ({chunk_size})"
        )
    if index_dir.exists() and not index_dir.is_dir():
        raise QAError(f"the index must be a folder, and {index_dir} is a file")
    corpus = read_corpus(corpus_dir)
    chunking = {"size": chunk_size, "overlap": chunk_overlap, "splitter": SPLITTER_VERSION}
    old_hashes, old_units, old_words = _previous_units(
        index_dir, embedder=embedder, chunking=chunking
    )

    units: dict[str, _DocUnits] = {}
    todo: list[tuple[Document, list[Chunk], list[Span]]] = []
    added = changed = unchanged = 0
    for doc in corpus.documents:
        previous = old_hashes.get(doc.doc_id)
        if previous == doc.sha256:
            unchanged += 1
        elif previous is None:
            added += 1
        else:
            changed += 1
        if previous == doc.sha256 and doc.doc_id in old_units:
            units[doc.doc_id] = old_units[doc.doc_id]
            continue
        chunks = chunk_document(doc, size=chunk_size, overlap=chunk_overlap)
        todo.append((doc, chunks, split_sentences(doc)))
    current_ids = {d.doc_id for d in corpus.documents}
    removed = sum(1 for d in old_hashes if d not in current_ids)

    texts = [c.text for _, chunks, _ in todo for c in chunks]
    sent_texts = [doc.text[s.start : s.end] for doc, _, sents in todo for s in sents]
    vocab = vocabulary([d.text[d.body_start :] for d in corpus.documents])
    new_words = [w for w in vocab if w not in old_words]
    total = len(texts) + len(sent_texts) + len(new_words)
    if progress:
        progress(0, total)
    chunk_vecs = _embed_batched(embedder, texts, progress, 0, total)
    sent_vecs = _embed_batched(embedder, sent_texts, progress, len(texts), total)
    word_vecs = _embed_batched(
        embedder, new_words, progress, len(texts) + len(sent_texts), total
    ).astype(np.float16)
    words = {**old_words, **dict(zip(new_words, word_vecs, strict=True))}
    vocab_vectors = (np.vstack([words[w] for w in vocab]) if vocab
                     else np.zeros((0, embedder.dim), np.float16))
    ci = si = 0
    for doc, chunks, sents in todo:
        units[doc.doc_id] = _DocUnits(
            chunks, sents, chunk_vecs[ci : ci + len(chunks)], sent_vecs[si : si + len(sents)]
        )
        ci += len(chunks)
        si += len(sents)

    documents = corpus.documents
    all_chunks = [c for d in documents for c in units[d.doc_id].chunks]
    if not all_chunks:
        raise CorpusError(
            f"no text to index in {corpus_dir}: its documents hold only metadata; "
            "nothing was indexed"
        )
    all_sents = [s for d in documents for s in units[d.doc_id].sentences]
    dim = embedder.dim
    c_vecs = np.vstack([units[d.doc_id].chunk_vectors for d in documents]).reshape(-1, dim)
    s_vecs = np.vstack([units[d.doc_id].sentence_vectors for d in documents]).reshape(-1, dim)

    manifest = {
        "format_version": FORMAT_VERSION,
        "embedder": {"id": embedder.id, "dim": dim},
        "chunking": chunking,
        "corpus": str(corpus_dir.resolve()),
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "built_at_ns": read_at_ns,
        "skipped": [s.path for s in corpus.skipped],
        "counts": {"documents": len(documents), "chunks": len(all_chunks),
                   "sentences": len(all_sents)},
        "documents": {
            d.doc_id: {"sha256": d.sha256, "date": d.date, "title": d.title, "length": d.length,
                       "parser": d.parser, "date_source": d.date_source}
            for d in documents
        },
    }
    _write_generation(index_dir, manifest, documents, all_chunks, all_sents, c_vecs, s_vecs,
                      vocab, vocab_vectors)
    return BuildReport(
        documents=len(documents),
        chunks=len(all_chunks),
        added=added,
        changed=changed,
        unchanged=unchanged,
        removed=removed,
        embedded_chunks=len(texts),
        skipped=corpus.skipped,
        seconds=time.perf_counter() - started,
        path=str(index_dir),
        formats=corpus.formats,
        warnings=corpus.warnings,
    )


def _write_generation(
    index_dir: Path,
    manifest: dict[str, Any],
    documents: list[Document],
    chunks: list[Chunk],
    sentences: list[Span],
    chunk_vectors: np.ndarray,
    sentence_vectors: np.ndarray,
    vocab: list[str],
    vocab_vectors: np.ndarray,
) -> None:
    import faiss

    index_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    name = f"g-{stamp}-{secrets.token_hex(3)}"
    tmp = index_dir / f".tmp-{name}"
    tmp.mkdir()
    try:
        doc_no = {d.doc_id: i for i, d in enumerate(documents)}
        with open(tmp / "documents.jsonl", "w", encoding="utf-8") as fh:
            for d in documents:
                row = asdict(d)
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        (tmp / "chunks.json").write_text(
            json.dumps([[doc_no[c.doc_id], c.start, c.end] for c in chunks]), encoding="utf-8"
        )
        (tmp / "sentences.json").write_text(
            json.dumps([[doc_no[s.doc_id], s.start, s.end] for s in sentences]), encoding="utf-8"
        )
        faiss.write_index(_faiss_index(chunk_vectors, manifest["embedder"]["dim"]),
                          str(tmp / "chunks.faiss"))
        faiss.write_index(_faiss_index(sentence_vectors, manifest["embedder"]["dim"]),
                          str(tmp / "sentences.faiss"))
        _bm25([c.text for c in chunks]).save(str(tmp / "bm25"), show_progress=False)
        (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        np.save(tmp / "vocab.npy", vocab_vectors.astype(np.float16), allow_pickle=False)
        # The manifest goes last: a generation without one is never made live.
        (tmp / MANIFEST).write_text(
            json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8"
        )
        final = index_dir / name
        tmp.rename(final)
        pointer_tmp = index_dir / f".{CURRENT}.{secrets.token_hex(3)}"
        pointer_tmp.write_text(name + "\n", encoding="utf-8")
        with open(pointer_tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(pointer_tmp, index_dir / CURRENT)  # the atomic switch
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(index_dir, keep=name)


_GENERATION = re.compile(r"g-\d{8}T\d{6}-[0-9a-f]{6}")


def _prune(index_dir: Path, *, keep: str) -> None:
    # Only folders this code made (exact name, with a manifest) are ever deleted, in case
    # --index points at a folder that holds other things.
    gens = sorted(
        (p for p in index_dir.iterdir()
         if p.is_dir() and _GENERATION.fullmatch(p.name) and (p / MANIFEST).is_file()),
        key=lambda p: p.name,
    )
    old = [p for p in gens if p.name != keep][: max(0, len(gens) - KEEP_GENERATIONS)]
    stale_tmp = [
        p for p in index_dir.iterdir()
        if p.is_dir() and _GENERATION.fullmatch(p.name.removeprefix(".tmp-"))
        and p.name.startswith(".tmp-") and time.time() - p.stat().st_mtime > 3600
    ]
    for p in old + stale_tmp:
        shutil.rmtree(p, ignore_errors=True)


# ---------------------------------------------------------------------------- load


def _load_generation(gen: Path, manifest: dict[str, Any], embedder: Embedder) -> Index:
    import bm25s
    import faiss

    try:
        documents: list[Document] = []
        with open(gen / "documents.jsonl", encoding="utf-8") as fh:
            for line in fh:
                documents.append(Document(**json.loads(line)))
        chunk_rows = json.loads((gen / "chunks.json").read_text(encoding="utf-8"))
        sent_rows = json.loads((gen / "sentences.json").read_text(encoding="utf-8"))
        chunk_faiss = faiss.read_index(str(gen / "chunks.faiss"))
        sentence_faiss = faiss.read_index(str(gen / "sentences.faiss"))
        bm25 = bm25s.BM25.load(str(gen / "bm25"), show_progress=False)
        vocab = json.loads((gen / "vocab.json").read_text(encoding="utf-8"))
        vocab_vectors = np.load(gen / "vocab.npy", allow_pickle=False).astype(np.float32)
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise IndexMismatchError(
            f"index at {gen.parent} is damaged ({exc.__class__.__name__}: {exc}); "
            "run `qa index` to rebuild it"
        ) from exc
    chunks = [
        Chunk(documents[d].doc_id, s, e, documents[d].text[s:e]) for d, s, e in chunk_rows
    ]
    sentences = [Span(documents[d].doc_id, s, e) for d, s, e in sent_rows]
    chunk_vectors = chunk_faiss.reconstruct_n(0, chunk_faiss.ntotal) if chunk_faiss.ntotal \
        else np.zeros((0, embedder.dim), dtype=np.float32)
    sentence_vectors = sentence_faiss.reconstruct_n(0, sentence_faiss.ntotal) \
        if sentence_faiss.ntotal else np.zeros((0, embedder.dim), dtype=np.float32)
    if len(chunk_vectors) != len(chunks) or len(sentence_vectors) != len(sentences):
        raise IndexMismatchError(
            f"index at {gen.parent} is inconsistent (vector and chunk counts differ); "
            "run `qa index` to rebuild it"
        )
    index = Index(
        path=gen,
        manifest=manifest,
        embedder=embedder,
        documents={d.doc_id: d for d in documents},
        chunks=chunks,
        sentences=sentences,
        chunk_vectors=chunk_vectors,
        sentence_vectors=sentence_vectors,
        chunk_faiss=chunk_faiss,
        sentence_faiss=sentence_faiss,
        bm25=bm25,
        vocab=vocab,
        vocab_vectors=vocab_vectors.reshape(len(vocab), -1) if vocab
        else np.zeros((0, embedder.dim), np.float32),
    )
    index.vocab_folded = sorted({fold(w) for w in vocab})
    _link_sentences(index)
    return index


def _link_sentences(index: Index) -> None:
    by_doc: dict[str, list[int]] = {}
    for ci, c in enumerate(index.chunks):
        by_doc.setdefault(c.doc_id, []).append(ci)
    index.sentence_chunks = [[] for _ in index.sentences]
    index.chunk_sentences = [[] for _ in index.chunks]
    for si, s in enumerate(index.sentences):
        for ci in by_doc.get(s.doc_id, []):
            c = index.chunks[ci]
            if c.start < s.end and s.start < c.end:
                index.sentence_chunks[si].append(ci)
                index.chunk_sentences[ci].append(si)


def read_manifest(index_dir: Path) -> dict[str, Any]:
    """The live manifest, or IndexNotFoundError."""
    index_dir = Path(index_dir)
    gen = _current_generation(index_dir)
    if gen is None:
        raise IndexNotFoundError(f"no index at {index_dir}; run `qa index` to build it")
    return _read_manifest(gen)


_BLAS_LIMITED = False


def single_threaded_blas() -> None:
    """Limit BLAS to one thread in this process (once).

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


def load_index(index_dir: Path, *, embedder: Embedder) -> Index:
    """Load the live index, refusing one built with another format or embedder.

    Side effect: BLAS is limited to one thread in this process (see single_threaded_blas).
    """
    single_threaded_blas()
    index_dir = Path(index_dir)
    gen = _current_generation(index_dir)
    if gen is None:
        raise IndexNotFoundError(f"no index at {index_dir}; run `qa index` to build it")
    manifest = _read_manifest(gen)
    check_manifest(manifest, embedder_id=embedder.id, embedder_dim=embedder.dim, where=index_dir)
    return _load_generation(gen, manifest, embedder)


def corpus_changes(index: Index, corpus_dir: Path) -> list[str]:
    """Files of corpus_dir added, removed or modified since the index was built (by listing
    and modification time: one stat per file, no reading)."""
    built_ns = index.manifest.get("built_at_ns")
    if not isinstance(built_ns, int) or not Path(corpus_dir).is_dir():
        return []
    known = set(index.documents) | set(index.manifest.get("skipped", []))
    changed = []
    seen = set()
    for doc_id, path in corpus_paths(Path(corpus_dir)):
        seen.add(doc_id)
        try:
            modified = path.stat().st_mtime_ns > built_ns
        except OSError:
            modified = True
        if doc_id not in known or modified:
            changed.append(doc_id)
    changed.extend(sorted(d for d in index.documents if d not in seen))
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
) -> tuple[Index, BuildReport | None]:
    """Load the index, building it first when there is none yet (the report says so)."""
    report = None
    if not index_exists(Path(index_dir)):
        report = build_index(
            corpus_dir, index_dir, embedder=embedder, chunk_size=chunk_size,
            chunk_overlap=chunk_overlap, progress=progress,
        )
    return load_index(index_dir, embedder=embedder), report
