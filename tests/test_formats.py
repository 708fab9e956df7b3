"""PDF, HTML and DOCX through the real parsers (pypdfium2, trafilatura, python-docx), on files
generated here: text and page maps, boilerplate removal, metadata dates, and the offsets
contract (text[start:end] of every chunk and sentence) for every format."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from makefiles import make_docx, make_html, make_pdf

from qa.chunking import MAX_SENTENCE_CHARS, chunk_document, split_sentences
from qa.documents import Document, page_of, parser_for, read_corpus, read_file
from qa.documents.pdf import pdf_date

HEADER = "Rapport sur l’énergie — édition 2024"
PAGE_1 = [
    "Le gouvernement a présenté une réforme « ambitieuse » des ﬁnances",
    "publiques. Les députés ont examiné l’efﬁcacité des dépenses de l’État pen-",
    "dant trois semaines.",
]
PAGE_2 = [
    "Le barrage de Grand-Maison a produit 1 420 mégawatts en février, un record",
    "pour la centrale. Les ingénieurs attribuent ce résultat à la fonte des neiges.",
]
PAGE_3 = ["La commission rendra ses conclusions définitives au printemps prochain."]


def _pdf(folder: Path, name: str = "rapport.pdf") -> Path:
    return make_pdf(folder / name, [PAGE_1, PAGE_2, PAGE_3], header=HEADER, footer=True,
                    title="Rapport sur l’énergie", creation_date="D:20240315120000Z")


def _doc(folder: Path, name: str) -> Document:
    doc, _ = read_file(name, folder / name, folder.resolve())
    return doc


def test_pdf_text_pages_and_metadata(tmp_path: Path) -> None:
    """Three pages: each maps to its character range; the running header and the "Page N"
    footer are gone; ligatures are letters; the word hyphenated across lines is whole."""
    _pdf(tmp_path)
    doc = _doc(tmp_path, "rapport.pdf")
    assert doc.parser == "pdf/2" and len(doc.pages) == 3
    assert HEADER not in doc.text and "Page 2" not in doc.text
    assert "\ufb01" not in doc.text and "finances" in doc.text and "efficacité" in doc.text
    assert "pendant" in doc.text
    assert "Grand-Maison" in doc.text[doc.pages[1][0] : doc.pages[1][1]]
    assert doc.text[doc.pages[2][0] : doc.pages[2][1]].startswith("La commission")
    at = doc.text.index("1 420 mégawatts")
    assert page_of(doc, at) == 2 and page_of(doc, 0) == 1 and page_of(doc, len(doc.text)) == 3
    assert (doc.date, doc.date_source, doc.title) == ("2024-03-15", "pdf info",
                                                      "Rapport sur l’énergie")


def test_pdf_sentences_span_the_wrapped_lines(tmp_path: Path) -> None:
    """A PDF line break inside a sentence does not end it; the offsets still index the text."""
    _pdf(tmp_path)
    doc = _doc(tmp_path, "rapport.pdf")
    sentences = [doc.text[s.start : s.end] for s in split_sentences(doc)]
    record = next(s for s in sentences if "Grand-Maison" in s)
    assert record == ("Le barrage de Grand-Maison a produit 1 420 mégawatts en février, un "
                      "record\npour la centrale.")


def test_pdf_date_parsing() -> None:
    assert pdf_date("D:20240315120000+01'00'") == "2024-03-15"
    assert pdf_date("D:202403") == "2024-03"
    assert pdf_date("D:20241345") is None and pdf_date("hier") is None


def test_html_article_without_boilerplate(tmp_path: Path) -> None:
    make_html(tmp_path / "article.html", "La bibliothèque de Quimper reçoit des livres anciens",
              ["La bibliothèque municipale de Quimper a reçu 12 000 livres anciens en mars, "
               "offerts par une famille de collectionneurs bretons.",
               "Les ouvrages, dont certains datent du XVIe siècle, seront numérisés avant "
               "d’être présentés au public lors d’une exposition à l’automne."],
              date="2024-03-15")
    doc = _doc(tmp_path, "article.html")
    assert "12 000 livres anciens" in doc.text and "XVIe siècle" in doc.text
    for boilerplate in ["cookies", "Accueil", "Les plus lus", "Un chat élu maire",
                        "Mentions légales", "tracker", "color: black"]:
        assert boilerplate not in doc.text, boilerplate
    assert doc.title == "La bibliothèque de Quimper reçoit des livres anciens"
    assert (doc.date, doc.date_source, doc.parser) == ("2024-03-15", "html meta", "html/2")
    assert doc.pages == () and page_of(doc, 10) is None


def test_docx_paragraphs_headings_and_tables_in_order(tmp_path: Path) -> None:
    make_docx(tmp_path / "note.docx", [
        ("h1", "Le festival de Marciac"),
        ("p", "Le festival de jazz de Marciac a accueilli 300 000 spectateurs en août."),
        ("h2", "Programmation"),
        ("p", "Quarante concerts ont eu lieu sous le grand chapiteau."),
    ], title="Bilan du festival", created="2024-09-02T10:00:00",
        table=[["Année", "Spectateurs"], ["2023", "280 000"], ["2024", "300 000"]])
    doc = _doc(tmp_path, "note.docx")
    order = ["Le festival de Marciac", "300 000 spectateurs", "Programmation",
             "Quarante concerts", "Année | Spectateurs", "2024 | 300 000"]
    positions = [doc.text.index(x) for x in order]
    assert positions == sorted(positions)
    assert (doc.title, doc.date, doc.date_source) == ("Bilan du festival", "2024-09-02",
                                                      "docx core")


def test_offsets_contract_for_every_format(tmp_path: Path) -> None:
    """For PDF, HTML, DOCX and text: every chunk's and sentence's offsets give its text."""
    _pdf(tmp_path)
    make_html(tmp_path / "a.html", "Un titre d’article assez long", [
        "Première phrase de l’article. Deuxième phrase « entre guillemets » ici.",
        "Un autre paragraphe, avec des accents : é, è, ç, œ."])
    make_docx(tmp_path / "d.docx", [("h1", "Titre"), ("p", "Une phrase. Une autre phrase.")])
    (tmp_path / "t.txt").write_bytes(b"Ligne un.\rLigne deux sans fin\rde phrase.\r\n")
    corpus = read_corpus(tmp_path)
    assert {d.doc_id for d in corpus.documents} == {"rapport.pdf", "a.html", "d.docx", "t.txt"}
    for doc in corpus.documents:
        for size, overlap in [(80, 20), (600, 100)]:
            for c in chunk_document(doc, size=size, overlap=overlap):
                assert doc.text[c.start : c.end] == c.text
        spans = split_sentences(doc)
        assert spans, doc.doc_id
        for s in spans:
            assert doc.text[s.start : s.end].strip() == doc.text[s.start : s.end]


def test_lone_carriage_returns_end_sentences() -> None:
    """Old Mac line ends (a lone \\r) separate lines like \\n does."""
    from qa.documents import make_document

    text = "Titre du document\rPremière phrase ici\rDeuxième phrase là"
    doc = make_document("cr.txt", text)
    got = [text[s.start : s.end] for s in split_sentences(doc)]
    assert got == ["Titre du document", "Première phrase ici", "Deuxième phrase là"]


def test_soft_line_breaks_join_and_headings_stay() -> None:
    """A man-page-like wrapped sentence is one sentence; a heading keeps its own line."""
    from qa.documents import make_document

    text = ("Un soutien militaire renforcé\n"
            "Display values in 1024-byte blocks, unless the environment\n"
            "       variable POSIXLY_CORRECT is set, in which case 512-byte blocks are\n"
            "       used. The gouverne-\nment agrees.")
    doc = make_document("man.txt", text)
    got = [text[s.start : s.end] for s in split_sentences(doc)]
    assert got[0] == "Un soutien militaire renforcé"
    assert got[1].startswith("Display values") and got[1].endswith("are\n       used.")
    assert got[2] == "The gouverne-\nment agrees."
    from qa.text import tokens
    assert tokens(got[2]) == tokens("The gouvernement agrees.")  # matched as the whole word


def test_a_long_unpunctuated_line_is_windowed() -> None:
    """A 400 KB line of letters (issue 8) becomes sentences of at most the cap."""
    from qa.documents import make_document

    text = "Début. " + "a" * 400_000 + " " + "mot " * 5000
    doc = make_document("long.txt", text)
    spans = split_sentences(doc)
    assert max(s.end - s.start for s in spans) <= MAX_SENTENCE_CHARS
    covered = sum(s.end - s.start for s in spans)
    assert covered >= len(text) - 10_000  # nothing silently dropped beyond whitespace
    words = [text[s.start : s.end] for s in spans if "mot" in text[s.start : s.end]]
    assert all(not w.startswith("ot") for w in words)  # cut at whitespace when there is some


_ALPHABET = st.sampled_from([*"abcdeé ÉA.,;!?«»\n\r\t-", "\r\n", "\n\n", "gouverne-\nment"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ALPHABET, max_size=300).map("".join))
def test_sentence_spans_property(text: str) -> None:
    """For any text: spans are ordered, disjoint, trimmed, in bounds and under the cap."""
    from qa.documents import make_document

    doc = make_document("p.txt", text)
    prev_end = doc.body_start
    for s in split_sentences(doc):
        piece = doc.text[s.start : s.end]
        assert prev_end <= s.start < s.end <= len(text)
        assert len(piece) <= MAX_SENTENCE_CHARS and piece == piece.strip(" \t\r\n\u00a0")
        prev_end = s.end


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                               HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(alphabet="abcdéèçà ÉÀ.,’«»-", min_size=1, max_size=70), min_size=1,
                max_size=12))
def test_pdf_offsets_property(tmp_path: Path, lines: list[str]) -> None:
    """Random French lines on two PDF pages: every chunk and sentence quotes the text."""
    lines = [line for line in lines if line.strip()] or ["Texte."]
    path = make_pdf(tmp_path / "p.pdf", [lines, list(reversed(lines))])
    try:
        doc = _doc(tmp_path, "p.pdf")
    except Exception as exc:  # e.g. only punctuation: skipped as "no text"
        assert "text" in str(exc)
        return
    assert len(doc.pages) == 2
    assert all(0 <= s <= e <= len(doc.text) for s, e in doc.pages)
    for c in chunk_document(doc, size=60, overlap=10):
        assert doc.text[c.start : c.end] == c.text
        assert page_of(doc, c.start) in (1, 2)
    for s in split_sentences(doc):
        assert 0 <= s.start < s.end <= len(doc.text)
    path.unlink()


@pytest.mark.parametrize("name", ["a.pdf", "a.html", "a.docx"])
def test_parser_ids_reach_the_manifest(tmp_path: Path, name: str) -> None:
    from qa.embedding import HashEmbedder
    from qa.index import build_index, load_index

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    if name.endswith(".pdf"):
        _pdf(corpus, name)
    elif name.endswith(".html"):
        make_html(corpus / name, "Un titre assez long", ["Une phrase de l’article ici."])
    else:
        make_docx(corpus / name, [("p", "Une phrase du document Word.")],
                  created="2024-01-05T00:00:00")
    report = build_index(corpus, tmp_path / "index", embedder=HashEmbedder(32))
    entry = load_index(tmp_path / "index", embedder=HashEmbedder(32)).doc_meta(name)
    parser = parser_for("." + name.split(".")[1])
    assert parser is not None and parser.id == name.split(".")[1]
    assert entry["parser"] == f"{parser.id}/{parser.version}"
    assert entry["date_source"] in {"pdf info", "html meta", "docx core"}
    (fmt,) = report.formats
    assert (fmt.format, fmt.read, fmt.skipped) == (name.split(".")[1], 1, 0)


def test_page_map_survives_save_and_load(tmp_path: Path) -> None:
    from qa.embedding import HashEmbedder
    from qa.index import build_index, load_index

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _pdf(corpus)
    build_index(corpus, tmp_path / "index", embedder=HashEmbedder(32))
    index = load_index(tmp_path / "index", embedder=HashEmbedder(32))
    doc = index.doc("rapport.pdf")
    assert isinstance(doc.pages, tuple) and all(isinstance(p, tuple) for p in doc.pages)
    assert page_of(doc, doc.text.index("Grand-Maison")) == 2
    assert index.doc_meta("rapport.pdf")["date_source"] == "pdf info"


def test_long_words_are_not_vocabulary() -> None:
    from qa.text import MAX_WORD_CHARS, vocabulary

    words = vocabulary(["barrage " + "a" * 400_000 + " gouverne-\nment"])
    assert words == ["barrage", "gouvernement"]
    assert all(len(w) <= MAX_WORD_CHARS for w in words)


def test_text_output_names_the_page() -> None:
    from qa.cli import format_answer

    result = {"abstained": False, "answer": "Le barrage a produit 1 420 mégawatts.",
              "confidence": 0.9,
              "answer_span": {"doc_id": "r.pdf", "start": 10, "end": 47, "page": 2},
              "citations": [{"rank": 1, "doc_id": "r.pdf", "start": 0, "end": 60, "page": 2,
                             "text": "x" * 10 + "Le barrage a produit 1 420 mégawatts." + "y" * 13,
                             "score": 0.9}]}
    out = format_answer(result, color=False).splitlines()
    assert out[1].startswith("  — r.pdf, page 2, characters 10–47")
    assert out[3].startswith("[1] r.pdf, page 2  characters 0–60")


def test_pdf_line_end_hyphens(tmp_path: Path) -> None:
    """PDFium removes a line-end hyphen: a split word is whole again ("ingé-/nieurs"), a
    compound keeps its hyphen ("Grand-/Maison")."""
    make_pdf(tmp_path / "h.pdf", [["Le barrage de Grand-", "Maison produit. Les ingé-",
                                   "nieurs sont là."]])
    doc = _doc(tmp_path, "h.pdf")
    assert "Grand-Maison" in doc.text and "ingénieurs" in doc.text


def test_malformed_metadata_dates_leave_the_document_undated(tmp_path: Path) -> None:
    """A date the format declares but that is no date: read, undated, and one warning."""
    import zipfile

    make_html(tmp_path / "a.html", "Un titre d’article assez long",
              ["Une phrase de l’article, assez longue pour en être un."], date="2024-13-45")
    make_docx(tmp_path / "w.docx", [("p", "Une phrase du document Word.")],
              created="2024-09-02T10:00:00")
    src = zipfile.ZipFile(tmp_path / "w.docx")
    with zipfile.ZipFile(tmp_path / "d.docx", "w") as out:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "docProps/core.xml":
                data = data.replace(b"2024-09-02T10:00:00Z", b"le 2 septembre")
            out.writestr(item, data)
    src.close()
    (tmp_path / "w.docx").unlink()
    corpus = read_corpus(tmp_path)
    assert {d.doc_id: d.date for d in corpus.documents} == {"a.html": None, "d.docx": None}
    notes = {n.path: n.reason for n in corpus.warnings}
    assert "malformed date '2024-13-45' in the html meta" in notes["a.html"]
    assert "malformed date 'le 2 septembre' in the docx core" in notes["d.docx"]
