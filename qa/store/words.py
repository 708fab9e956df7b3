"""A segment's vocabulary on disk: the words first seen in it with their vectors, their
hashes sorted (a known word is found by lookup, not by loading every vocabulary), and a
character-trigram index of them for close spellings."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from qa.store.vectors import write_vectors
from qa.text import fold

_TRIGRAM_BUCKETS = 1 << 22


def trigram_keys(word: str) -> list[int]:
    padded = f"#{word}#"
    return sorted({hash_trigram(padded[i : i + 3]) for i in range(len(padded) - 2)})


def hash_trigram(tri: str) -> int:
    # A stable hash (Python's str hash is salted per process).
    h = 0
    for ch in tri:
        h = (h * 1_000_003 + ord(ch)) & 0xFFFFFFFF
    return h % _TRIGRAM_BUCKETS


def word_key(word: str) -> int:
    """A stable 64-bit hash of a word (Python's str hash is salted per process)."""
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8", "surrogatepass"),
                                          digest_size=8).digest(), "little", signed=True)


# Every question word is looked up in every segment's vocabulary: above this many words a
# vocabulary is searched through IVF. At 50k documents (hundreds of thousands of words),
# flat vocabularies made a warm ask's p50 180 ms.
WORDS_ANN_MIN = 20_000


def write_words(
    folder: Path, words: list[str], vectors: np.ndarray, *, dim: int
) -> dict[str, Any]:
    """Write words.txt with its offsets, the words' vectors, sorted hashes and trigram
    index; return the vector parameters to record in the segment."""
    data = [(w + "\n").encode("utf-8") for w in words]
    (folder / "words.txt").write_bytes(b"".join(data))
    np.save(folder / "words_offsets.npy",
            np.concatenate([[0], np.cumsum([len(d) for d in data], dtype=np.int64)]))
    params = write_vectors(np.asarray(vectors, np.float32).reshape(-1, dim),
                           folder / "words.faiss", dim=dim, ann_min=WORDS_ANN_MIN)
    keys = np.array([word_key(w) for w in words], dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    np.save(folder / "words_keys.npy", keys[order])
    np.save(folder / "words_order.npy", order.astype(np.int64))
    postings: dict[int, list[int]] = {}
    for i, w in enumerate(words):
        if w[:1].isalpha():
            for key in trigram_keys(fold(w)):
                postings.setdefault(key, []).append(i)
    keys = np.array(sorted(postings), dtype=np.int64)
    indptr = np.zeros(len(keys) + 1, dtype=np.int64)
    for i, key in enumerate(keys):
        indptr[i + 1] = indptr[i] + len(postings[int(key)])
    members = np.array([w for key in keys for w in postings[int(key)]], dtype=np.int32)
    np.save(folder / "tri_keys.npy", keys)
    np.save(folder / "tri_indptr.npy", indptr)
    np.save(folder / "tri_words.npy", members)
    return params
