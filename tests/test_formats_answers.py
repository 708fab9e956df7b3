"""Questions answered from a French PDF, web page and Word file with the real default model:
the served text matches the offsets, and the PDF answer cites the right page."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from contract import assert_contract, document_text
from fastapi.testclient import TestClient
from makefiles import make_docx, make_html, make_pdf

from qa.api import create_app
from qa.cli import format_answer
from qa.config import Settings
from qa.embedding import Embedder

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent

QUESTIONS = [
    # (question, document, words of the answer, page)
    ("Combien de mégawatts le barrage de Grand-Maison a-t-il produit en février ?",
     "energie.pdf", "1 420 mégawatts", 2),
    ("Combien de livres anciens la bibliothèque municipale de Quimper a-t-elle reçus ?",
     "quimper.html", "12 000 livres anciens", None),
    ("Combien de spectateurs le festival de jazz de Marciac a-t-il accueillis ?",
     "marciac.docx", "300 000 spectateurs", None),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, real_embedder: Embedder
           ) -> Iterator[TestClient]:
    base = tmp_path_factory.mktemp("formats")
    corpus = base / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    make_pdf(corpus / "energie.pdf", [
        ["Rapport sur l’énergie hydraulique en France. Les ﬁnances des centrales sont",
         "examinées par la commission, qui a entendu les exploitants pen-",
         "dant trois semaines."],
        ["Le barrage de Grand-Maison a produit 1 420 mégawatts en février, un record",
         "pour la centrale de l’Isère. Les ingénieurs attribuent ce résultat à la fonte",
         "précoce des neiges."],
        ["La commission rendra ses conclusions « définitives » au printemps prochain."],
    ], header="Rapport annuel — Observatoire de l’énergie", footer=True,
        creation_date="D:20240315000000Z")
    make_html(corpus / "quimper.html", "La bibliothèque de Quimper reçoit des livres anciens", [
        "La bibliothèque municipale de Quimper a reçu 12 000 livres anciens en mars, offerts "
        "par une famille de collectionneurs bretons.",
        "Les ouvrages, dont certains datent du XVIe siècle, seront numérisés avant d’être "
        "présentés au public lors d’une exposition à l’automne."], date="2024-03-20")
    make_docx(corpus / "marciac.docx", [
        ("h1", "Bilan du festival de Marciac"),
        ("p", "Le festival de jazz de Marciac a accueilli 300 000 spectateurs en août, selon "
              "les organisateurs."),
        ("p", "Quarante concerts ont eu lieu sous le grand chapiteau.")],
        created="2024-09-02T10:00:00")
    settings = Settings(corpus=corpus, index=base / "index", api_key=None, cors_origins=[])
    with TestClient(create_app(settings, embedder=real_embedder)) as c:
        c.base_folder = base  # type: ignore[attr-defined]
        yield c


@pytest.mark.parametrize(("question", "doc_id", "words", "page"), QUESTIONS)
def test_answer_from_each_format(client: TestClient, question: str, doc_id: str, words: str,
                                 page: int | None) -> None:
    r = client.post("/ask", json={"question": question})
    assert r.status_code == 200, r.text
    result = r.json()
    assert_contract(result, question, 5, document_text(client))
    assert not result["abstained"], result
    span = result["answer_span"]
    assert span["doc_id"] == doc_id and words in result["answer"]
    assert span["page"] == page
    served = client.get(f"/documents/{doc_id}").json()
    assert served["text"][span["start"] : span["end"]] == result["answer"]
    if page is not None:
        first, last = served["pages"][page - 1]
        assert first <= span["start"] < span["end"] <= last
        assert f"{doc_id}, page {page}, characters" in format_answer(result, color=False)
    else:
        source_line = next(line for line in format_answer(result, color=False).splitlines()
                           if line.startswith("  — "))
        section = f", § {span['section']}" if span.get("section") else ""
        assert served["pages"] is None
        assert source_line.startswith(f"  — {doc_id}{section}, characters")


def test_listing_says_where_dates_came_from(client: TestClient) -> None:
    sources = {d["doc_id"]: (d["date"], d["date_source"]) for d in client.get("/documents").json()}
    assert sources["energie.pdf"] == ("2024-03-15", "pdf info")
    assert sources["quimper.html"] == ("2024-03-20", "html meta")
    assert sources["marciac.docx"] == ("2024-09-02", "docx core")
    assert sources["001_113f9629b7018fa7.txt"] == ("2024-03", "text prefix")


def test_qa_ask_prints_the_page(client: TestClient) -> None:
    """The real `qa ask` on the index the server built: `energie.pdf, page 2, characters`."""
    base: Path = client.base_folder  # type: ignore[attr-defined]
    qa_bin = Path(sys.executable).parent / "qa"
    command = [str(qa_bin)] if qa_bin.exists() else [sys.executable, "-m", "qa.cli"]
    r = subprocess.run(
        [*command, "ask", QUESTIONS[0][0], "--corpus", str(base / "corpus"),
         "--index", str(base / "index")],
        capture_output=True, text=True, timeout=300, cwd=base,
        env={**os.environ, "XDG_CACHE_HOME": str(base / "cache")})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    where = next(i for i, line in enumerate(lines) if line.startswith("  — "))
    assert "1 420 mégawatts" in lines[where - 1]  # the sentence, just above its source
    assert lines[where].startswith("  — energie.pdf, page 2, characters ")
