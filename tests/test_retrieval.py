from __future__ import annotations

from pathlib import Path

import pytest

from qa.embedding import Embedder
from qa.index import Index, build_index, load_index
from qa.retrieval import prepare, retrieve


def test_lexical_mode_on_fake_embedder(corpus_dir: Path, tmp_path: Path,
                                       fake_embedder: Embedder) -> None:
    build_index(corpus_dir, tmp_path / "ix", embedder=fake_embedder)
    ix = load_index(tmp_path / "ix", embedder=fake_embedder)
    q = prepare(ix, "Kozlov ressources naturelles")
    top = retrieve(ix, q, k=3, mode="lexical")
    assert top[0].chunk.doc_id == "004_2ebee54b9c6398b9.txt"
    assert all(p.lexical > 0 for p in top)  # lexical mode returns only matching chunks
    assert [p.rank for p in top] == list(range(1, len(top) + 1))


@pytest.mark.slow
def test_question_words_are_translated_into_corpus_words(real_index: Index) -> None:
    """English words absent from the French corpus are matched through the embedding model
    (soldiers -> soldats, treaty -> traité) or, for names, by spelling (Putin -> Poutine)."""
    q = prepare(real_index, "How many soldiers did Putin send after the treaty?")
    groups = {frozenset(g) for g in q.groups}
    assert any("soldat" in g for g in groups)
    assert any("poutin" in g for g in groups)
    assert any("trait" in g for g in groups)
    assert q.coverage == 1.0
    off_topic = prepare(real_index, "best kimchi recipe")
    assert off_topic.coverage < 0.5


@pytest.mark.slow
def test_cross_lingual_retrieval(real_index: Index) -> None:
    for question, doc in [
        ("When did Putin visit Pyongyang?", "003_c79683804ee38f58.txt"),
        ("Which Russian minister met Kim Jong-un on 18 November?", "004_2ebee54b9c6398b9.txt"),
        ("How many containers of weapons were sent?", "001_113f9629b7018fa7.txt"),
    ]:
        top = retrieve(real_index, prepare(real_index, question), k=5)
        assert doc in {p.chunk.doc_id for p in top}, question
