"""Hostile and broken corpus files: each is skipped with one warning line naming it and why,
the rest is indexed, through read_corpus, `qa index` (a real subprocess) and POST /index."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from makefiles import make_docx, make_html, make_pdf, make_scanned_pdf, make_zip_bomb_docx

import qa.documents.corpus as corpus_mod
from qa.documents import MAX_FILE_BYTES, ParseLimits, read_corpus
from qa.errors import CorpusError

ROOT = Path(__file__).resolve().parent.parent
ALIAS_BOMB = "---\na: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
) + "---\nCorps du texte.\n"

# file name -> the words its warning must hold
EXPECTED = {
    "corrupt.pdf": "corrupt",
    "truncated.pdf": "PDF",
    "encrypted.pdf": "encrypted",
    "scanned.pdf": "no text layer",
    "empty.pdf": "empty",
    "corrupt.docx": "corrupt",
    "bomb.docx": "zip bomb",
    "empty.docx": "empty",
    "notext.docx": "no text",
    "truncated.docx": "corrupt",
    "empty.txt": "empty",
    "dots.txt": "no text",
    "empty.html": "empty",
    "boilerplate.html": "no article text",
    "alias.md": "aliases",
    "huge.txt": "per-file limit",
    "binary.txt": "binary",
    "latin1.txt": "UTF-8",
    "pipe.txt": "FIFO",
    ".hidden.txt": "hidden file",
    ".git": "hidden folder",
    "linked": "link to a folder",
    "loop.txt": "link loop",
    "outside.txt": "outside the corpus",
    "caf\\xe9.txt": "not valid UTF-8",
}


def hostile_corpus(base: Path) -> Path:
    """Two good files (one PDF, one text) and one bad file of each kind."""
    corpus = base / "corpus"
    corpus.mkdir(parents=True)
    shutil.copy(ROOT / "corpus" / "000_25f13bc6add64f1c.txt", corpus / "good.txt")
    good = make_pdf(corpus / "good.pdf", [["Le barrage de Grand-Maison produit de l’énergie."]])
    (corpus / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(2000))
    (corpus / "truncated.pdf").write_bytes(good.read_bytes()[:400])
    make_pdf(corpus / "encrypted.pdf", [["Secret."]], password="motdepasse")
    make_scanned_pdf(corpus / "scanned.pdf")
    (corpus / "empty.pdf").write_bytes(b"")
    (corpus / "corrupt.docx").write_bytes(b"PK\x03\x04 this is not really a zip")
    make_zip_bomb_docx(corpus / "bomb.docx")
    (corpus / "empty.docx").write_bytes(b"")
    make_docx(corpus / "notext.docx", [("p", "   ")])
    whole = make_docx(base / "whole.docx", [("p", "Un paragraphe complet du document.")])
    (corpus / "truncated.docx").write_bytes(whole.read_bytes()[:3000])
    (corpus / "empty.txt").write_text(" \n\t\n", encoding="utf-8")
    (corpus / "dots.txt").write_text("... — ...", encoding="utf-8")
    (corpus / "empty.html").write_text("  \n", encoding="utf-8")
    (corpus / "boilerplate.html").write_text(
        "<html><head><script>var x = 1;</script></head><body><nav><a href='/'>Accueil</a>"
        "</nav><footer>© 2024</footer></body></html>", encoding="utf-8")
    (corpus / "alias.md").write_text(ALIAS_BOMB, encoding="utf-8")
    with open(corpus / "huge.txt", "wb") as fh:  # sparse: no disk used
        fh.truncate(MAX_FILE_BYTES + 1)
    (corpus / "binary.txt").write_bytes(b"abc\x00def")
    (corpus / "latin1.txt").write_bytes("Corée du Nord".encode("latin-1"))
    os.mkfifo(corpus / "pipe.txt")
    (corpus / ".hidden.txt").write_text("Caché.", encoding="utf-8")
    (corpus / ".git").mkdir()
    (corpus / ".git" / "HEAD.txt").write_text("ref: refs/heads/main", encoding="utf-8")
    (base / "elsewhere").mkdir()
    (base / "elsewhere" / "doc.txt").write_text("Un document hors du corpus.", encoding="utf-8")
    os.symlink(base / "elsewhere", corpus / "linked")
    os.symlink("loop.txt", corpus / "loop.txt")
    (base / "secret.txt").write_text("TOP SECRET outside the corpus", encoding="utf-8")
    os.symlink(base / "secret.txt", corpus / "outside.txt")
    fd = os.open(os.path.join(os.fsencode(corpus), b"caf\xe9.txt"), os.O_CREAT | os.O_WRONLY)
    os.write(fd, b"Un nom de fichier en Latin-1.")
    os.close(fd)
    return corpus


def test_read_corpus_skips_each_bad_file_with_its_reason(tmp_path: Path) -> None:
    corpus = read_corpus(hostile_corpus(tmp_path))
    assert [d.doc_id for d in corpus.documents] == ["good.pdf", "good.txt"]
    reasons = {s.path: s.reason for s in corpus.skipped}
    assert set(reasons) == set(EXPECTED)
    for name, words in EXPECTED.items():
        assert words in reasons[name], (name, reasons[name])
    assert "MB" in reasons["huge.txt"]
    stats = {f.format: f for f in corpus.formats}
    assert (stats["pdf"].read, stats["pdf"].skipped) == (1, 5)
    assert (stats["docx"].read, stats["docx"].skipped) == (0, 5)
    assert stats["pdf"].pages == 1 and stats["pdf"].pages_per_second


def test_a_parser_crash_skips_the_file_only(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from qa.documents.html import HtmlParser

    def boom(self: object, data: bytes, *, name: str) -> object:
        raise ZeroDivisionError("parser bug")

    monkeypatch.setattr(HtmlParser, "parse", boom)
    make_html(tmp_path / "a.html", "Titre de la page", ["Du texte."])
    (tmp_path / "b.txt").write_text("Un bon document.", encoding="utf-8")
    corpus = read_corpus(tmp_path, limits=ParseLimits(workers=0))  # the patch is in-process
    assert [d.doc_id for d in corpus.documents] == ["b.txt"]
    assert "ZeroDivisionError" in corpus.skipped[0].reason


def test_symlink_swapped_after_the_check_is_not_read(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The race of issue 8: a folder of the corpus becomes a link to outside between the
    check and the open. What is opened is checked, so the outside file is never read."""
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "sub" / "doc.txt").write_text("Texte intérieur.", encoding="utf-8")
    (corpus / "ok.txt").write_text("Un autre document.", encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "doc.txt").write_text("TOP SECRET", encoding="utf-8")
    real_realpath = os.path.realpath

    def racing_realpath(path: object, **kwargs: object) -> str:
        resolved = real_realpath(path, **kwargs)  # type: ignore[call-overload]
        if str(path).endswith("sub/doc.txt") and (corpus / "sub").is_dir() \
                and not (corpus / "sub").is_symlink():
            shutil.rmtree(corpus / "sub")  # the attacker swaps the folder for a link...
            os.symlink(outside, corpus / "sub")
        return str(resolved)  # ...after the path was resolved and found inside

    monkeypatch.setattr(corpus_mod.os.path, "realpath", racing_realpath)
    result = read_corpus(corpus, limits=ParseLimits(workers=0))  # the patch is in-process
    assert all("TOP SECRET" not in d.text for d in result.documents)
    assert {s.path for s in result.skipped} == {"sub/doc.txt"}


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    (tmp_path / "bomb.md").write_text(ALIAS_BOMB, encoding="utf-8")
    (tmp_path / "ok.md").write_text("---\ntitle: Bon\ndate: 2024-01\n---\nCorps.", "utf-8")
    corpus = read_corpus(tmp_path)
    assert [d.doc_id for d in corpus.documents] == ["ok.md"]
    assert corpus.documents[0].date_source == "front matter"


def test_malformed_date_is_indexed_undated_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("date 2024-13 Un texte daté de travers.", "utf-8")
    corpus = read_corpus(tmp_path)
    (doc,) = corpus.documents
    assert doc.date is None and doc.date_source is None
    (note,) = corpus.warnings
    assert note.path == "a.txt" and "malformed date '2024-13'" in note.reason


def test_nothing_readable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "corrupt.pdf").write_bytes(b"%PDF-1.4 garbage")
    with pytest.raises(CorpusError, match=r"no readable document .*1 file\(s\) skipped"):
        read_corpus(tmp_path)


def _qa(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    qa_bin = Path(sys.executable).parent / "qa"
    command = [str(qa_bin)] if qa_bin.exists() else [sys.executable, "-m", "qa.cli"]
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "XDG_CACHE_HOME": str(cwd / "cache")})


def test_qa_index_reports_formats_and_one_line_per_bad_file(tmp_path: Path) -> None:
    hostile_corpus(tmp_path)
    r = _qa("index", "--embedder", "hash", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "indexed 2 documents" in r.stderr
    lines = r.stderr.splitlines()
    for name, words in EXPECTED.items():
        (line,) = [ln for ln in lines if ln.startswith(f"warning: skipped {name}:")]
        assert words in line
    assert any(ln.strip().startswith("pdf: 1 read, 5 skipped, 1 page parsed at")
               and "pages/s" in ln for ln in lines)
    assert any(ln.strip() == "docx: 0 read, 5 skipped" for ln in lines)


def test_qa_index_with_nothing_readable_fails_and_keeps_the_index(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Un document lisible.", encoding="utf-8")
    assert _qa("index", "--embedder", "hash", cwd=tmp_path).returncode == 0
    current = (tmp_path / "index" / "CURRENT").read_text()
    (corpus / "a.txt").unlink()
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    r = _qa("index", "--embedder", "hash", cwd=tmp_path)
    assert r.returncode != 0 and "no readable document" in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 3 and "Traceback" not in r.stderr
    assert (tmp_path / "index" / "CURRENT").read_text() == current


def test_post_index_skips_bad_files(tmp_path: Path) -> None:
    from qa.api import create_app
    from qa.config import Settings
    from qa.embedding import HashEmbedder

    key = "test-key-0123456789"
    corpus = hostile_corpus(tmp_path)
    (corpus / "good.txt").rename(tmp_path / "later.txt")  # added before POST /index
    settings = Settings(corpus=corpus, index=tmp_path / "index", api_key=key, cors_origins=[])
    with TestClient(create_app(settings, embedder=HashEmbedder())) as client:
        (tmp_path / "later.txt").rename(corpus / "good.txt")
        r = client.post("/index", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["documents"] == 2
        reasons = {s["path"]: s["reason"] for s in report["skipped"]}
        assert set(reasons) == set(EXPECTED)
        formats = {f["format"]: f for f in report["formats"]}
        # good.pdf was indexed at start-up: kept without being read again.
        assert formats["pdf"]["read"] + formats["pdf"]["unchanged"] == 1
        assert formats["pdf"]["skipped"] == 5
        doc = client.get("/documents/good.pdf",
                         headers={"Authorization": f"Bearer {key}"}).json()
        assert doc["pages"] == [[0, len(doc["text"])]]
        assert "TOP SECRET" not in str(client.get(
            "/documents/outside.txt", headers={"Authorization": f"Bearer {key}"}).json())
