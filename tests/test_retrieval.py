from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa.chunking import chunk_section
from qa.embedding import Embedder, HashEmbedder
from qa.errors import InvalidQuestionError
from qa.index import Index, build_index, load_index
from qa.retrieval import Mode, allowed_docs, make_filters, prepare, retrieve, search

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


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


class Table:
    """A document table without an index: what filters read."""

    def __init__(self, dates: dict[str, str | None]) -> None:
        self.dates = dates

    def doc_ids(self) -> list[str]:
        return list(self.dates)

    def has_doc(self, doc_id: str) -> bool:
        return doc_id in self.dates

    def doc_meta(self, doc_id: str) -> dict[str, Any]:
        date = self.dates[doc_id]
        return {} if date is None else {"date": date}


TABLE = Table({"march.txt": "2024-03", "day.txt": "2024-03-31", "april.txt": "2024-04-01",
               "undated.txt": None})


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"doc_ids": ["march.txt", "nope.txt"]}, "unknown doc_id(s): 'nope.txt'"),
    ({"date_from": "2024-13-01"}, "date_from must be a date YYYY-MM-DD, got '2024-13-01'"),
    ({"date_to": "2024-03"}, "date_to must be a date YYYY-MM-DD, got '2024-03'"),
    ({"date_from": "2024-05-01", "date_to": "2024-01-01"}, "is after date_to"),
])
def test_bad_filters_name_the_field(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidQuestionError) as exc:
        make_filters(TABLE, **kwargs)
    assert message in str(exc.value)


@pytest.mark.parametrize(("kwargs", "allowed"), [
    ({}, {"march.txt", "day.txt", "april.txt", "undated.txt"}),
    # a month-dated document overlaps any day of its month; an undated one never passes
    ({"date_from": "2024-03-31"}, {"march.txt", "day.txt", "april.txt"}),
    ({"date_to": "2024-03-01"}, {"march.txt"}),
    ({"date_from": "2024-04-01", "date_to": "2024-04-30"}, {"april.txt"}),
    ({"date_from": dt.date(2024, 3, 15), "date_to": dt.date(2024, 3, 15)}, {"march.txt"}),
    ({"doc_ids": ["day.txt", "undated.txt"], "date_to": "2024-12-31"}, {"day.txt"}),
    ({"doc_ids": ["undated.txt"]}, {"undated.txt"}),
])
def test_allowed_documents(kwargs: dict[str, Any], allowed: set[str]) -> None:
    filters = make_filters(TABLE, **kwargs)
    assert filters.active == bool(kwargs)
    assert allowed_docs(TABLE, filters) == allowed


def test_prepare_matches_question_words_to_corpus_stems(hash_index: Index) -> None:
    """Words of the corpus match their own stem; a word it lacks matches nothing with the
    fake embedder (its vectors translate nothing), so coverage counts the share matched."""
    q = prepare(hash_index, "Kozlov ressources naturelles xyzzyq")
    assert [sorted(g) for g in q.groups] == [["kozlov"], ["ressourc"], ["naturel"], []]
    assert q.terms == ["kozlov", "naturel", "ressourc"] and q.coverage == 0.75
    assert q.vector.shape == (hash_index.embedder.dim,)
    assert np.array_equal(q.vector, hash_index.embedder.embed([q.text], kind="query")[0])


@pytest.fixture(scope="module")
def hash_index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    """The shipped corpus indexed once with the fake embedder (read-only for tests)."""
    base = tmp_path_factory.mktemp("retrieval")
    build_index(CORPUS, base / "ix", embedder=HashEmbedder(64))
    return load_index(base / "ix", embedder=HashEmbedder(64))


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_search_is_retrieval_with_document_offsets(hash_index: Index, mode: Mode) -> None:
    """search() returns retrieve()'s passages, in its order and with its scores, each with
    document offsets (text == document text[start:end]), page and section."""
    question = "Quelles ressources naturelles la Corée du Nord exporte-t-elle ?"
    hits = search(hash_index, f"  {question} ", k=4, mode=mode, lexical_weight=2.0)
    passages = retrieve(hash_index, prepare(hash_index, question), k=4, mode=mode,
                        lexical_weight=2.0)
    assert [(h.rank, h.doc_id, h.start, h.end, h.score) for h in hits] == [
        (p.rank, p.chunk.doc_id, p.chunk.start, p.chunk.end, p.score) for p in passages]
    assert 1 <= len(hits) <= 4
    for h in hits:
        doc = hash_index.doc(h.doc_id)
        assert doc.text[h.start:h.end] == h.text
        assert h.page is None and h.section == chunk_section(doc, h.start, h.end)
        assert set(h.to_dict()) == {"rank", "doc_id", "start", "end", "text", "score", "page",
                                    "section"}


def test_search_filters_and_refusals(hash_index: Index) -> None:
    only = search(hash_index, "Corée du Nord Russie", k=10, doc_ids=["001_113f9629b7018fa7.txt"])
    assert only and {h.doc_id for h in only} == {"001_113f9629b7018fa7.txt"}
    # the only dated document is dated 2024-03: a range after it leaves nothing to search
    assert search(hash_index, "Corée du Nord Russie", date_from="2024-04-01") == []
    dated = search(hash_index, "Corée du Nord Russie", date_from="2024-03-15")
    assert {h.doc_id for h in dated} == {"001_113f9629b7018fa7.txt"}
    for kwargs, message in [({"question": "\u200b "}, "the question is empty"),
                            ({"question": "Russie", "k": 0}, "k must be a positive integer"),
                            ({"question": "Russie", "date_to": "demain"}, "date_to must be")]:
        with pytest.raises(InvalidQuestionError, match=message):
            search(hash_index, **kwargs)
