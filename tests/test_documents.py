from __future__ import annotations

from pathlib import Path

import pytest

from qa.documents import make_document, read_corpus
from qa.errors import CorpusError
from qa.temporal import bounds


def test_date_prefix_is_metadata_and_kept_out_of_the_body() -> None:
    """001_*.txt starts ' date 2024-03 Les liens...': the date is metadata, the body follows."""
    text = " date 2024-03 Les liens entre la Corée du Nord et la Russie."
    doc = make_document("a.txt", text)
    assert doc.date == "2024-03"
    assert text[doc.body_start :].startswith("Les liens")
    assert doc.text == text  # nothing rewritten


def test_yaml_front_matter() -> None:
    text = "---\ntitle: Visite\ndate: 2024-06-19\n---\nPoutine arrive à Pyongyang.\n"
    doc = make_document("b.md", text)
    assert doc.date == "2024-06-19"
    assert doc.title == "Visite"
    assert text[doc.body_start :].startswith("Poutine")


@pytest.mark.parametrize("text", [
    "\ufeffdate 2023-07\nChoïgou est arrivé.",
    "\ufeff---\ndate: 2023-07\n---\nChoïgou est arrivé.",
])
def test_metadata_after_a_byte_order_mark(text: str) -> None:
    doc = make_document("bom.txt", text)
    assert doc.date == "2023-07"
    assert text[doc.body_start :] == "Choïgou est arrivé."


def test_invalid_date_is_ignored() -> None:
    assert make_document("c.txt", "date 2024-13 Texte du document.").date is None


def test_date_bounds_of_a_month() -> None:
    first, last = bounds("2024-02")
    assert (first.isoformat(), last.isoformat()) == ("2024-02-01", "2024-02-29")


def test_shipped_corpus_reads_all_five(tmp_path: Path) -> None:
    corpus = read_corpus(Path(__file__).resolve().parent.parent / "corpus")
    ids = [d.doc_id for d in corpus.documents]
    assert len(ids) == 5 and "003_c79683804ee38f58.txt" in ids
    assert corpus.skipped == []
    dated = {d.doc_id: d.date for d in corpus.documents}
    assert dated["001_113f9629b7018fa7.txt"] == "2024-03"


def test_bad_files_are_skipped_and_named(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "good.md").write_text("Un bon document.", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"abc\x00def")
    (tmp_path / "latin1.txt").write_bytes("Corée".encode("latin-1"))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8")  # not a document format: not listed
    corpus = read_corpus(tmp_path)
    assert [d.doc_id for d in corpus.documents] == ["sub/good.md"]
    reasons = {s.path: s.reason for s in corpus.skipped}
    assert set(reasons) == {"empty.txt", "binary.txt", "latin1.txt", "broken.pdf"}
    assert "UTF-8" in reasons["latin1.txt"] and "binary" in reasons["binary.txt"]


def test_no_readable_document_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    with pytest.raises(CorpusError, match="no readable"):
        read_corpus(tmp_path)


def test_missing_corpus_folder(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not found"):
        read_corpus(tmp_path / "nope")


def test_crlf_and_bom_are_kept_verbatim(tmp_path: Path) -> None:
    raw = "\ufeffLigne un.\r\nLigne deux.\r\n"
    (tmp_path / "w.txt").write_bytes(raw.encode("utf-8"))
    (doc,) = read_corpus(tmp_path).documents
    assert doc.text == raw
