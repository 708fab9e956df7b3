"""What the README's main install (`pip install -e .`, no extras) must be able to read.

A parser's libraries are imported the way the parser imports them; a library that cannot be
imported skips its files with the real cause and the fix, once per format in the summary.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qa.documents.parsers import EXTENSIONS, LibraryMissing, import_library, parser_for, parsers

ROOT = Path(__file__).resolve().parent.parent

# Makes `import lxml_html_clean` fail as it does where pip 23 dropped the 'html_clean' extra.
_BLOCK = textwrap.dedent("""
    import sys
    from importlib.abc import MetaPathFinder

    class Block(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "lxml_html_clean":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Block())
""")
_FIX = ("cannot import trafilatura (No module named 'lxml_html_clean'): "
        "pip install lxml_html_clean")


@pytest.mark.parametrize("parser", parsers(), ids=lambda p: p.id)
def test_every_parser_library_imports(parser: object) -> None:
    libraries = parser.libraries  # type: ignore[attr-defined]
    assert libraries, "a parser declares what it imports"
    for module in libraries:
        import_library(module)


def test_every_extension_has_a_parser() -> None:
    assert {parser_for(ext).format for ext in EXTENSIONS if parser_for(ext)} == {  # type: ignore[union-attr]
        "text", "pdf", "html", "docx"}


def test_a_missing_library_names_itself_and_the_fix() -> None:
    with pytest.raises(LibraryMissing, match=r"cannot import no_such_lib_xyz \(No module named "
                       r"'no_such_lib_xyz'\): pip install no_such_lib_xyz"):
        import_library("no_such_lib_xyz")


def _run(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Python with lxml_html_clean unimportable in it and in every process it starts (the
    parsing cage's workers too): the blocker is a sitecustomize on PYTHONPATH."""
    site = cwd / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_BLOCK, encoding="utf-8")
    path = os.pathsep.join(p for p in (str(site), str(ROOT), os.environ.get("PYTHONPATH"))
                           if p)
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120, check=False, env={**os.environ, "PYTHONPATH": path})


def test_the_real_cause_of_a_failed_trafilatura_import(tmp_path: Path) -> None:
    """trafilatura's own ImportError speaks of lxml.html.clean; the innermost missing module
    is what to install."""
    done = _run("from qa.documents.parsers import import_library\n"
                "try:\n    import_library('trafilatura')\n"
                "except Exception as exc:\n    print(exc)\n", cwd=tmp_path)
    assert done.stdout.strip() == _FIX, done.stderr


def test_a_format_that_cannot_be_read_is_one_line_in_the_summary(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(4):
        (corpus / f"page{i}.html").write_text(
            f"<html><body><article><p>Page {i} de la documentation, assez longue pour "
            "compter comme un article.</p></article></body></html>", encoding="utf-8")
    (corpus / "note.txt").write_text("Une note en texte brut sur Vladivostok.", encoding="utf-8")
    done = _run("from qa.cli import main\nmain()", "index", "--corpus", str(corpus),
                "--index", str(tmp_path / "ix"), "--embedder", "hash", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert f"warning: no html file could be read (4 skipped): {_FIX}" in lines
    assert not any(line.startswith("warning: skipped page") for line in lines), lines
    assert "  text: 1 read, 0 skipped" in lines


def test_a_missing_library_is_not_remembered_as_a_skip(tmp_path: Path) -> None:
    """Installing the library is the fix: the next build reads the files, without
    --retry-skipped (they are not recorded as skipped files)."""
    import json

    from qa.embedding import HashEmbedder
    from qa.index import CURRENT, build_index

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "page.html").write_text(
        "<html><body><article><p>Une page de la documentation, assez longue pour compter "
        "comme un article.</p></article></body></html>", encoding="utf-8")
    (corpus / "note.txt").write_text("Une note en texte brut sur Vladivostok.", encoding="utf-8")
    ix = tmp_path / "ix"
    done = _run("from qa.cli import main\nmain()", "index", "--corpus", str(corpus),
                "--index", str(ix), "--embedder", "hash", cwd=tmp_path)
    assert done.returncode == 0 and "no html file could be read" in done.stderr, done.stderr
    snapshot = json.loads((ix / (ix / CURRENT).read_text().strip()).read_text())
    assert snapshot["skipped"] == ["page.html"] and snapshot["skip_records"] == {}
    report = build_index(corpus, ix, embedder=HashEmbedder())  # the library imports here
    assert report.skipped == [] and report.added == 1
