"""Sections in retrieval and citations: chunks stay in their section, carry its heading
path into what is embedded and matched (offsets unchanged), and every citation and answer
span names its section through the library, `qa ask`, POST /ask and GET /documents/{id}."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.answering import AnswerParams, answer_question
from qa.chunking import chunk_document, chunk_section, contextual_text, section_ranges
from qa.documents import make_document
from qa.documents.model import BLOCK_KINDS
from qa.embedding import HashEmbedder
from qa.index import build_index, load_index

GUIDE = """# Guide du jardinier

Ce guide réunit les gestes de base du potager familial.

## Les tomates

Les tomates se plantent en mai, quand les nuits ne descendent plus sous dix degrés.
Arrosez-les au pied, jamais sur les feuilles, deux fois par semaine en été.

## Les courgettes

Une courgette demande un mètre carré de terre riche et beaucoup d'eau.
La récolte commence huit semaines après le semis, avant que les fruits ne durcissent.

### Maladies

L'oïdium couvre les feuilles d'un feutrage blanc : coupez les feuilles atteintes.
"""


def _guide(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "guide.md").write_text(GUIDE, encoding="utf-8")
    (corpus / "notes.txt").write_text(
        "Les poules pondent davantage quand les jours rallongent au printemps.\n",
        encoding="utf-8")
    return corpus


def test_markdown_blocks_and_chunks_per_section() -> None:
    doc = make_document("guide.md", GUIDE)
    kinds = [(b.kind, doc.text[b.start : b.end][:20]) for b in doc.blocks]
    assert kinds[0] == ("heading", "# Guide du jardinier")
    assert ("heading", "### Maladies") in kinds
    chunks = chunk_document(doc, size=200, overlap=20)
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        # No chunk holds two sections' text: each stays between two headings.
        assert sum(1 for b in doc.blocks if b.kind == "heading" and c.start < b.start < c.end) \
            == 0
    tomato = next(c for c in chunks if "tomates se plantent" in c.text)
    assert chunk_section(doc, tomato.start, tomato.end) == "Guide du jardinier › Les tomates"
    assert contextual_text(doc, tomato) == "Guide du jardinier › Les tomates\n" + tomato.text
    disease = next(c for c in chunks if "oïdium" in c.text)
    assert chunk_section(doc, disease.start, disease.end) == \
        "Guide du jardinier › Les courgettes › Maladies"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(1, 3), st.text("abcdé .\n", min_size=0, max_size=300)),
                min_size=1, max_size=8),
       st.integers(60, 300))
def test_section_chunks_property(sections: list[tuple[int, str]], size: int) -> None:
    """Random Markdown: blocks and chunks quote the text exactly, blocks in order."""
    text = "".join(f"{'#' * lv} Titre {i}\n\n{body}\n\n" for i, (lv, body) in
                   enumerate(sections))
    doc = make_document("r.md", text)
    prev = 0
    for b in doc.blocks:
        assert b.kind in BLOCK_KINDS and prev <= b.start < b.end <= len(text)
        assert text[b.start : b.end].strip()
        prev = b.end
    ranges = section_ranges(doc, min_chars=size // 4)
    assert all(s < e for s, e in ranges)
    for c in chunk_document(doc, size=size, overlap=size // 5):
        assert doc.text[c.start : c.end] == c.text


def test_heading_words_are_matched_for_chunks_that_lack_them(tmp_path: Path) -> None:
    """A question naming a section finds that section's chunks even when the chunk's own
    text never says the section's name (contextual chunks)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    body = " ".join(f"Phrase numéro {i} du chapitre sur les outils." for i in range(40))
    (corpus / "m.md").write_text(f"# Manuel\n\n## Rhododendrons\n\n{body}\n\n## Autre\n\n"
                                 "Texte sans rapport.\n", encoding="utf-8")
    build_index(corpus, tmp_path / "index", embedder=HashEmbedder(32), chunk_size=200,
                chunk_overlap=20)
    index = load_index(tmp_path / "index", embedder=HashEmbedder(32))
    from qa.text import tokens

    _, ids = index.lexical_search(tokens("Rhododendrons"), k=20)
    texts = [index.chunk(int(cid)).text for cid in ids]
    assert len(texts) >= 3
    assert any("Rhododendrons" not in t and "Phrase numéro" in t for t in texts)
    assert not any("Texte sans rapport" in t for t in texts)
    for cid in ids:
        c = index.chunk(int(cid))
        assert index.doc(c.doc_id).text[c.start : c.end] == c.text


def test_citations_name_their_section_everywhere(tmp_path: Path) -> None:
    corpus = _guide(tmp_path)
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, embedder=HashEmbedder(64))
    index = load_index(index_dir, embedder=HashEmbedder(64))
    result = answer_question(index, "Quand plante-t-on les tomates ?", k=3,
                             params=AnswerParams(threshold=0.0))
    guide = index.doc("guide.md")

    def first_text_block_path(start: int, end: int) -> str:
        """The oracle, by a plain scan: the path of the first non-heading block overlapping
        [start, end)."""
        block = next(b for b in guide.blocks
                     if b.kind != "heading" and b.start < end and b.end > start)
        return " › ".join(block.path)

    by_doc = {c.doc_id: c.section for c in result.citations}
    assert "guide.md" in by_doc
    for c in result.citations:
        if c.doc_id == "guide.md":
            assert c.section == first_text_block_path(c.start, c.end)
        else:
            assert c.section is None  # a text without headings has no section
    # A chunk that starts on a chapter heading is about the section under it.
    nested = make_document("n.md", "# Chapitre\n\n## Semis\n\nOn sème en mars.\n")
    assert chunk_section(nested, 0, len(nested.text)) == "Chapitre › Semis"
    span = result.answer_span
    assert span is not None and span.doc_id == "guide.md"
    assert "tomates se plantent" in result.answer
    assert span.section == "Guide du jardinier › Les tomates"

    from qa.api import create_app
    from qa.config import Settings

    settings = Settings(index=index_dir, corpus=corpus, embedder="hash-64")
    with TestClient(create_app(settings, embedder=HashEmbedder(64))) as client:
        doc = client.get("/documents/guide.md").json()
        assert doc["blocks"][0] == {"start": 0, "end": 20, "kind": "heading", "level": 1,
                                    "section": "Guide du jardinier"}
        for b in doc["blocks"]:
            assert doc["text"][b["start"] : b["end"]].strip()
        asked = client.post("/ask", json={"question": "Quand plante-t-on les tomates ?",
                                          "k": 3}).json()
        assert all("section" in c for c in asked["citations"])
        assert any(c["section"] for c in asked["citations"])

    qa_bin = Path(sys.executable).parent / "qa"
    command = [str(qa_bin)] if qa_bin.exists() else [sys.executable, "-m", "qa.cli"]
    out = subprocess.run(
        [*command, "ask", "Quand plante-t-on les tomates ?", "-k", "3",
         "--index", str(index_dir), "--corpus", str(corpus), "--embedder", "hash-64"],
        capture_output=True, text=True, check=False, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "guide.md, § Guide du jardinier" in out.stdout, out.stdout


def test_old_index_format_is_refused(tmp_path: Path) -> None:
    from qa.errors import IndexMismatchError
    from qa.index import CURRENT, FORMAT_VERSION

    corpus = _guide(tmp_path)
    build_index(corpus, tmp_path / "index", embedder=HashEmbedder(32))
    name = (tmp_path / "index" / CURRENT).read_text().strip()
    snap = tmp_path / "index" / name
    manifest = json.loads(snap.read_text())
    manifest["format_version"] = 2
    snap.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError,
                       match=rf"format version 2, this qa reads {FORMAT_VERSION}.*qa index"):
        load_index(tmp_path / "index", embedder=HashEmbedder(32))


def test_an_option_and_its_description_are_one_sentence() -> None:
    """Man page layout: the option line is the subject of its indented description."""
    from qa.chunking import split_sentences

    text = ("GREP(1)              User Commands              GREP(1)\n\nOPTIONS\n"
            "       -l, --files-with-matches\n"
            "              Suppress normal output; instead print the name of each input\n"
            "              file.  Scanning stops on the first match.\n\n"
            "       -c     Count the matching lines.\n")
    doc = make_document("grep.txt", text)
    kinds = [(b.kind, text[b.start : b.end]) for b in doc.blocks]
    assert ("term", "-l, --files-with-matches") in kinds and ("term", "-c") in kinds
    assert ("definition", "Count the matching lines.") in kinds
    assert all(b.path[:2] == ("GREP(1)", "OPTIONS") for b in doc.blocks[2:])
    sentences = [text[s.start : s.end] for s in split_sentences(doc)]
    assert sentences[2].startswith("-l, --files-with-matches\n")
    assert sentences[2].endswith("input\n              file.")
    assert "-c     Count the matching lines." in sentences
