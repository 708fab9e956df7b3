"""Immutable segments: a batch of documents with their texts, units, vectors and postings.

One segment is a folder written once and never changed::

    seg-<n>-<rand>/
      segment.json       counts, doc ids, store parameters (written last: no file, no segment)
      docs.jsonl         each document's fields but its text, one line each (blocks
                         encoded by qa.documents.model.encode_blocks)
      texts.bin          the documents' texts, UTF-8, back to back (offsets in docs.jsonl)
      chunks.npy         (doc, start, end) per chunk, character offsets into the text
      chunk_sents.npy    (first, last+1) sentence of each chunk
      sentences.npy      (doc, start, end) per sentence
      sent_codes.npy     sentence vectors, int8, scaled per row (sent_scale.npy)
      chunks.faiss       chunk vectors (qa.store.vectors)
      lex_*.npy          BM25 postings (qa.store.lexical)
      doc_table.jsonl    the documents' metadata as the index lists them (sha256, parser,
                         date, title, length, chunks, file stat), one line each; their
                         lengths also in doc_lengths.npy, to check offsets without parsing
      words.txt          corpus words first seen in this segment, words.faiss their vectors,
      words_keys.npy     their hashes sorted (words_order.npy: which word each is), to tell
                         a known word by lookup,
      tri_*.npy          and a character-trigram index of them for close spellings

Every array is memory-mapped on open; a document's text is read when asked for.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import secrets
import shutil
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from qa.chunking import Chunk, Span
from qa.documents import Document
from qa.documents.model import encode_blocks
from qa.errors import IndexMismatchError
from qa.files import Unreadable, check_regular, read_regular
from qa.store.base import LexicalIndex, VectorStore
from qa.store.lexical import SegmentLexical, write_lexical
from qa.store.vectors import FaissVectors, write_vectors
from qa.store.words import word_key, write_words

# 2: the document table and the sorted word hashes.
SEGMENT_VERSION = 2
SEGMENT_FILE = "segment.json"
# segment.json lists the segment's document ids: about 3 MB for 50k documents.
MAX_SEGMENT_FILE_BYTES = 256 * 1024 * 1024


@dataclass
class DocUnits:
    """One document ready to be written: its chunks, sentences and their vectors."""

    document: Document
    chunks: list[Chunk]
    sentences: list[Span]
    chunk_vectors: np.ndarray
    sentence_vectors: np.ndarray
    tokens: list[list[str]]  # lexical tokens of each chunk


def quantise(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 codes and a float32 scale per row: 516 bytes for a 512-d vector instead of 2,048,
    with cosine errors around 1e-3 (a sentence score moves by less than its rounding)."""
    vectors = np.asarray(vectors, np.float32)
    scale = np.max(np.abs(vectors), axis=1) / 127.0 if len(vectors) else np.zeros(0, np.float32)
    scale = np.maximum(scale, 1e-12).astype(np.float32)
    codes = np.clip(np.rint(vectors / scale[:, None]), -127, 127).astype(np.int8)
    return codes, scale


def _chunk_sentence_ranges(chunks: list[Chunk], sentences: list[Span]) -> np.ndarray:
    starts = np.array([s.start for s in sentences], dtype=np.int64)
    ends = np.array([s.end for s in sentences], dtype=np.int64)
    out = np.zeros((len(chunks), 2), dtype=np.int64)
    for i, c in enumerate(chunks):
        # Sentences are in text order and do not overlap: those overlapping the chunk are
        # the run from the first ending after its start to the last starting before its end.
        out[i, 0] = np.searchsorted(ends, c.start, side="right")
        out[i, 1] = np.searchsorted(starts, c.end, side="left")
    return out


def write_segment(
    folder: Path,
    name: str,
    docs: Sequence[DocUnits],
    *,
    dim: int,
    words: Sequence[str],
    word_vectors: np.ndarray,
    table: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """Write a segment into folder/name (via a temporary folder) and return its path.
    `table`: each document's row of the document table (empty rows when None)."""
    tmp = folder / f".tmp-{name}"
    tmp.mkdir(parents=True)
    try:
        units = _write_documents(tmp, docs, dim=dim)
        _write_table(tmp, [{} for _ in docs] if table is None else table,
                     [du.document.length for du in docs])
        vec_params = write_vectors(units.chunk_vectors, tmp / "chunks.faiss", dim=dim)
        lex_params = write_lexical(units.tokens, tmp)
        word_params = write_words(tmp, list(words), word_vectors, dim=dim)
        meta = {
            "segment_version": SEGMENT_VERSION,
            "doc_ids": [du.document.doc_id for du in docs],
            "text_bytes": units.text_bytes,
            "chunks": units.chunks,
            "sentences": units.sentences,
            "words": len(words),
            "dim": dim,
            "vectors": vec_params,
            "word_vectors": word_params,
            "lexical": lex_params,
        }
        with open(tmp / SEGMENT_FILE, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        final = folder / name
        tmp.rename(final)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@dataclass(frozen=True)
class _Written:
    """What `_write_documents` leaves to the vector and lexical stores."""

    text_bytes: int
    chunks: int
    sentences: int
    chunk_vectors: np.ndarray
    tokens: list[Sequence[str]]


def _write_documents(tmp: Path, docs: Sequence[DocUnits], *, dim: int) -> _Written:
    """Texts, document rows, chunk and sentence offsets, and the sentence vectors."""
    doc_rows: list[dict[str, Any]] = []
    chunk_rows: list[tuple[int, int, int]] = []
    sent_rows: list[tuple[int, int, int]] = []
    ranges: list[np.ndarray] = []
    chunk_vecs: list[np.ndarray] = []
    sent_vecs: list[np.ndarray] = []
    tokens: list[Sequence[str]] = []
    offset, sent_base = 0, 0
    with open(tmp / "texts.bin", "wb") as texts:
        for n, du in enumerate(docs):
            data = du.document.text.encode("utf-8")
            texts.write(data)
            # Shallow (asdict would copy every block: a third of a build's time).
            row = {f.name: getattr(du.document, f.name) for f in fields(du.document)
                   if f.name not in ("text", "blocks")}
            if du.document.blocks:  # compact: each heading path once per document
                row["blocks"] = encode_blocks(du.document.blocks)
            row["_bytes"] = [offset, len(data)]
            offset += len(data)
            doc_rows.append(row)
            chunk_rows.extend((n, c.start, c.end) for c in du.chunks)
            sent_rows.extend((n, s.start, s.end) for s in du.sentences)
            ranges.append(_chunk_sentence_ranges(du.chunks, du.sentences) + sent_base)
            sent_base += len(du.sentences)
            chunk_vecs.append(du.chunk_vectors.reshape(-1, dim))
            sent_vecs.append(du.sentence_vectors.reshape(-1, dim))
            tokens.extend(du.tokens)
    _write_lines(tmp, "docs", [json.dumps(row, ensure_ascii=False) for row in doc_rows])
    np.save(tmp / "chunks.npy", np.array(chunk_rows, dtype=np.int64).reshape(-1, 3))
    np.save(tmp / "sentences.npy", np.array(sent_rows, dtype=np.int64).reshape(-1, 3))
    np.save(tmp / "chunk_sents.npy", np.vstack(ranges) if ranges else np.zeros((0, 2), np.int64))
    codes, scale = quantise(np.vstack(sent_vecs) if sent_vecs else np.zeros((0, dim)))
    np.save(tmp / "sent_codes.npy", codes)
    np.save(tmp / "sent_scale.npy", scale)
    return _Written(offset, len(chunk_rows), len(sent_rows),
                    np.vstack(chunk_vecs) if chunk_vecs else np.zeros((0, dim)), tokens)


def _write_table(tmp: Path, table: Sequence[Mapping[str, Any]], lengths: list[int]) -> None:
    if len(table) != len(lengths):
        raise ValueError("one table row per document")
    _write_lines(tmp, "doc_table", [json.dumps(dict(r), ensure_ascii=False) for r in table])
    np.save(tmp / "doc_lengths.npy", np.array(lengths, dtype=np.int64))


def _write_lines(tmp: Path, stem: str, lines: list[str]) -> None:
    """stem.jsonl and stem_offsets.npy: where each line starts, so that one is read alone."""
    starts = [0]
    with open(tmp / f"{stem}.jsonl", "wb") as fb:
        for text in lines:
            line = (text + "\n").encode("utf-8")
            fb.write(line)
            starts.append(starts[-1] + len(line))
    np.save(tmp / f"{stem}_offsets.npy", np.array(starts, dtype=np.int64))


def new_segment_name(number: int) -> str:
    return f"seg-{number:06d}-{secrets.token_hex(3)}"


class Segment:
    """A segment opened for reading: arrays memory-mapped, texts read on demand."""

    def __init__(self, path: Path, *, dim: int) -> None:
        self.path = path
        self.name = path.name
        try:
            self.meta: dict[str, Any] = json.loads(
                read_regular(path / SEGMENT_FILE, MAX_SEGMENT_FILE_BYTES).decode("utf-8"))
        except FileNotFoundError:
            raise
        except (OSError, ValueError, Unreadable, RecursionError) as exc:
            raise IndexMismatchError(f"{path / SEGMENT_FILE} is damaged ({exc})") from exc
        if not isinstance(self.meta, dict):
            raise IndexMismatchError(f"{path / SEGMENT_FILE} is damaged")
        if self.meta.get("segment_version") != SEGMENT_VERSION or self.meta.get("dim") != dim:
            raise IndexMismatchError(f"{path} is a segment of another version or dimension")
        self.doc_ids: list[str] = list(self.meta["doc_ids"])
        self.chunks = self._load("chunks.npy", (int(self.meta["chunks"]), 3))
        self.chunk_sents = self._load("chunk_sents.npy", (int(self.meta["chunks"]), 2))
        self.sentences = self._load("sentences.npy", (int(self.meta["sentences"]), 3))
        self.sent_codes = self._load("sent_codes.npy", (int(self.meta["sentences"]), dim))
        self.sent_scale = self._load("sent_scale.npy", (int(self.meta["sentences"]),))
        self.n_words = int(self.meta["words"])
        self._words: list[str] | None = None
        self.tri_keys = self._load("tri_keys.npy", None)
        self.tri_indptr = self._load("tri_indptr.npy", (len(self.tri_keys) + 1,))
        self.tri_words = self._load("tri_words.npy", None)
        for name in ("chunks.faiss", "words.faiss"):  # FAISS would block on a FIFO
            try:
                check_regular(path / name)
            except Unreadable as exc:
                raise IndexMismatchError(f"{path / name} is damaged ({exc})") from exc
        # Typed by the store interfaces (qa.store.base): retrieval sees nothing of FAISS.
        self.vectors: VectorStore = FaissVectors(path / "chunks.faiss", dim=dim,
                                                 params=self.meta["vectors"])
        if self.vectors.ntotal != int(self.meta["chunks"]):
            raise IndexMismatchError(f"{path / 'chunks.faiss'} does not match its segment")
        self.word_vectors: VectorStore = FaissVectors(path / "words.faiss", dim=dim,
                                         params=self.meta["word_vectors"])
        self._word_offsets = self._load("words_offsets.npy", (self.n_words + 1,))
        if self.word_vectors.ntotal != self.n_words:
            raise IndexMismatchError(f"{path / 'words.faiss'} does not match its segment")
        self.lexical: LexicalIndex = SegmentLexical(path, n_units=int(self.meta["chunks"]))
        self._row_offsets = self._load("docs_offsets.npy", (len(self.doc_ids) + 1,))
        self._table_offsets = self._load("doc_table_offsets.npy", (len(self.doc_ids) + 1,))
        self.doc_lengths = self._load("doc_lengths.npy", (len(self.doc_ids),))
        self._word_keys = self._load("words_keys.npy", (self.n_words,))
        self._word_order = self._load("words_order.npy", (self.n_words,))
        self._chunk_bounds: np.ndarray | None = None
        self._sent_bounds: np.ndarray | None = None
        # Every file read later is opened now: a writer may delete this segment's folder
        # once a newer snapshot has aged, and an open file (or mapping) stays readable.
        self._files = {}
        try:
            for name in ("texts.bin", "docs.jsonl", "words.txt", "doc_table.jsonl"):
                self._files[name] = _open_regular(path / name)
        except (OSError, Unreadable) as exc:
            self.close()
            raise IndexMismatchError(f"{path / name} is unreadable ({exc})") from exc
        table_size = os.fstat(self._files["doc_table.jsonl"]).st_size
        if table_size != int(self._table_offsets[-1]):
            self.close()
            raise IndexMismatchError(f"{path / 'doc_table.jsonl'} has {table_size} bytes, its "
                                     f"offsets say {int(self._table_offsets[-1])}")
        size = os.fstat(self._files["texts.bin"]).st_size
        if size != int(self.meta.get("text_bytes", size)):
            self.close()
            raise IndexMismatchError(f"{path / 'texts.bin'} has {size} bytes, its segment says "
                                     f"{self.meta['text_bytes']}")
        self._texts: mmap.mmap | None = (
            mmap.mmap(self._files["texts.bin"], 0, access=mmap.ACCESS_READ) if size else None
        )

    @property
    def words(self) -> list[str]:
        """The words first seen in this segment (read when first needed)."""
        if self._words is None:
            path = self.path / "words.txt"
            try:
                fd = self._files["words.txt"]
                data = os.pread(fd, os.fstat(fd).st_size, 0)
                words = data.decode("utf-8").split("\n")[:-1]
            except (OSError, UnicodeDecodeError) as exc:
                raise IndexMismatchError(f"{path} is unreadable ({exc.__class__.__name__})") \
                    from exc
            if len(words) != self.n_words:
                raise IndexMismatchError(f"{path} does not match its segment")
            self._words = words
        return self._words

    def word(self, i: int) -> str:
        """One word of the segment's vocabulary, read alone (a question needs a few)."""
        if self._words is not None:
            return self._words[i]
        start, end = (int(v) for v in self._word_offsets[i : i + 2])
        try:
            return os.pread(self._files["words.txt"], end - start, start).decode("utf-8")[:-1]
        except (OSError, UnicodeDecodeError) as exc:
            raise IndexMismatchError(f"{self.path / 'words.txt'} is unreadable") from exc

    def vocabulary_problem(self) -> str | None:
        """What is wrong with the words file, its offsets and trigram index, or None."""
        try:
            words = self.words
        except IndexMismatchError as exc:
            return str(exc)
        offsets = np.asarray(self._word_offsets)
        size = os.fstat(self._files["words.txt"]).st_size
        if len(offsets) and (offsets[0] != 0 or offsets[-1] != size
                             or np.any(np.diff(offsets) <= 0)):
            return "its word offsets do not match words.txt"
        lengths = np.diff(offsets) - 1
        if any(len(w.encode("utf-8")) != n for w, n in zip(words, lengths.tolist(),
                                                             strict=True)):
            return "its word offsets do not match words.txt"
        if any(not w or w != w.strip() for w in words) or len(set(words)) != len(words):
            return "its vocabulary holds empty, padded or repeated words"
        members = np.asarray(self.tri_words)
        if len(members) and (members.min() < 0 or members.max() >= self.n_words):
            return "its trigram index names words it does not hold"
        return None

    def _load(self, name: str, shape: tuple[int, ...] | None) -> np.ndarray:
        path = self.path / name
        try:
            check_regular(path)
            arr: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
        except Unreadable as exc:
            raise IndexMismatchError(f"{path} is damaged ({exc})") from exc
        except (OSError, ValueError) as exc:
            raise IndexMismatchError(f"{path} is damaged ({exc.__class__.__name__})") from exc
        if shape is not None and arr.shape != shape and not (arr.size == 0 and 0 in shape):
            raise IndexMismatchError(f"{path} has shape {arr.shape}, its segment says {shape}")
        return arr

    def known_words(self, words: Sequence[str]) -> set[str]:
        """Those of the words this segment's vocabulary holds (by hash, then checked)."""
        if not self.n_words or not words:
            return set()
        keys = np.asarray(self._word_keys)
        wanted = np.array([word_key(w) for w in words], dtype=np.int64)
        pos = np.searchsorted(keys, wanted)
        found = set()
        for w, key, p in zip(words, wanted.tolist(), pos.tolist(), strict=True):
            while p < len(keys) and keys[p] == key:  # equal hashes: compare the words
                if self.word(int(self._word_order[p])) == w:
                    found.add(w)
                    break
                p += 1
        return found

    def table_row(self, local_doc: int) -> dict[str, Any]:
        """A document's row of the document table."""
        start, end = (int(v) for v in self._table_offsets[local_doc : local_doc + 2])
        row: dict[str, Any] = self._table_json(
            os.pread(self._files["doc_table.jsonl"], end - start, start), dict)
        return row

    def table(self) -> list[dict[str, Any]]:
        """Every row of the document table, in local document order (one read)."""
        fd = self._files["doc_table.jsonl"]
        data = os.pread(fd, int(self._table_offsets[-1]), 0)
        rows: list[dict[str, Any]] = self._table_json(
            b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]", list)
        if len(rows) != len(self.doc_ids) or not all(isinstance(r, dict) for r in rows):
            raise IndexMismatchError(f"{self.path / 'doc_table.jsonl'} does not match its "
                                     "segment; run `qa index --rebuild` to repair it")
        return rows

    def _table_json(self, data: bytes, kind: type) -> Any:
        try:
            value = json.loads(data)
        except (ValueError, RecursionError) as exc:
            value = exc
        if not isinstance(value, kind):
            raise IndexMismatchError(f"{self.path / 'doc_table.jsonl'} is damaged; "
                                     "run `qa index --rebuild` to repair it")
        return value

    def row(self, local_doc: int) -> dict[str, Any]:
        """A document's fields but its text: its one line of docs.jsonl."""
        start, end = (int(v) for v in self._row_offsets[local_doc : local_doc + 2])
        try:
            row = json.loads(os.pread(self._files["docs.jsonl"], end - start, start))
        except (OSError, ValueError) as exc:
            raise IndexMismatchError(
                f"{self.path / 'docs.jsonl'} is damaged ({exc.__class__.__name__}); "
                "run `qa index --rebuild` to repair it") from exc
        if not isinstance(row, dict) or "_bytes" not in row:
            raise IndexMismatchError(f"{self.path / 'docs.jsonl'} is damaged; "
                                     "run `qa index --rebuild` to repair it")
        return row

    def text(self, local_doc: int, row: dict[str, Any] | None = None) -> str:
        start, length = (row or self.row(local_doc))["_bytes"]
        if self._texts is None:
            return ""
        return self._texts[start : start + length].decode("utf-8")

    def document(self, local_doc: int) -> Document:
        row = self.row(local_doc)
        fields = {k: v for k, v in row.items() if not k.startswith("_")}
        text = self.text(local_doc, row)
        try:
            return Document(text=text, **fields)
        except (TypeError, ValueError, IndexError, KeyError) as exc:  # e.g. its blocks
            raise IndexMismatchError(
                f"{self.path / 'docs.jsonl'} is damaged ({exc.__class__.__name__}); "
                "run `qa index --rebuild` to repair it") from exc

    def unit_ranges(self, local_doc: int) -> tuple[range, range]:
        """The document's chunk and sentence local ids (units are stored in document order)."""
        if self._chunk_bounds is None or self._sent_bounds is None:
            docs = np.arange(len(self.doc_ids) + 1)
            self._chunk_bounds = np.searchsorted(np.asarray(self.chunks[:, 0]), docs)
            self._sent_bounds = np.searchsorted(np.asarray(self.sentences[:, 0]), docs)
        c, s = self._chunk_bounds, self._sent_bounds
        return (range(int(c[local_doc]), int(c[local_doc + 1])),
                range(int(s[local_doc]), int(s[local_doc + 1])))

    def sentence_vectors(self, local_ids: np.ndarray) -> np.ndarray:
        codes = np.asarray(self.sent_codes[local_ids], dtype=np.float32)
        return codes * np.asarray(self.sent_scale[local_ids], dtype=np.float32)[:, None]

    def close(self) -> None:
        texts = getattr(self, "_texts", None)
        if texts is not None:
            texts.close()
            self._texts = None
        for fd in getattr(self, "_files", {}).values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._files = {}


def _open_regular(path: Path) -> int:
    """A descriptor of a regular file, opened without following a link or blocking."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise Unreadable(f"{path.name} is not a regular file")
    return fd


def read_units(segment: Segment, local_doc: int, tokens_of: Any) -> DocUnits:
    """A document's units as stored (for merges: no re-embedding); tokens_of(doc, chunks)
    gives the chunks' lexical tokens."""
    doc = segment.document(local_doc)
    c_range, s_range = segment.unit_ranges(local_doc)
    c_idx = np.arange(c_range.start, c_range.stop, dtype=np.int64)
    s_idx = np.arange(s_range.start, s_range.stop, dtype=np.int64)
    chunks = [Chunk(doc.doc_id, int(s), int(e), doc.text[int(s) : int(e)])
              for _, s, e in np.asarray(segment.chunks[c_idx])]
    sentences = [Span(doc.doc_id, int(s), int(e))
                 for _, s, e in np.asarray(segment.sentences[s_idx])]
    return DocUnits(
        doc, chunks, sentences,
        segment.vectors.vectors(c_idx),
        segment.sentence_vectors(s_idx),
        tokens_of(doc, chunks),
    )
