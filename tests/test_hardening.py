"""Issue 19: untrusted files parsed in a cage, skipped files remembered, a reload that cannot
kill the watcher, damage named rather than rebuilt, bounded `qa eval` clients, right data or
none, and tests for the bugs the suite let through. Each test failed before its fix."""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hostile import (
    deflate_bomb_pdf,
    lying_zip_docx,
    many_paragraphs_html,
    merged_rows_docx,
    page_tree_pdf,
    random_html,
    wide_span_docx,
)
from makefiles import make_html, make_pdf

import qa.documents.corpus as corpus_mod
from qa import evaluation as ev
from qa.answering import answer_question
from qa.api import create_app
from qa.api.app import _watch
from qa.cli import cli
from qa.config import Settings
from qa.documents import ParseLimits, read_corpus
from qa.documents.docx import DocxParser
from qa.documents.html import HtmlParser
from qa.documents.pdf import PdfParser
from qa.documents.plain import PlainParser
from qa.embedding import Embedder, HashEmbedder
from qa.errors import IndexDamagedError, IndexMismatchError, QAError
from qa.index import CURRENT, FORMAT_VERSION, build_index, load_index, verify_index

ROOT = Path(__file__).resolve().parent.parent
KEY = "cle-de-test-19"
GOOD = "Le conseil municipal de Lyon a voté le budget des écoles le 4 mars 2024."


def _good_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "good.txt").write_text(GOOD, encoding="utf-8")
    return folder


def _snapshots(index_dir: Path) -> list[str]:
    return sorted(p.name for p in index_dir.glob("snap-*.json"))


# ---------------------------------------------------------------------------- 1. the cage


def test_cpu_limit_kills_the_parser_and_the_build_goes_on(tmp_path: Path) -> None:
    """A 2 KB PDF whose page tree has 2^19 pages sharing one leaf parses for ~10 s; with a
    1 s CPU limit its worker is killed, the file skipped naming the limit, and the files
    after it (in the same pool, a new worker) are read."""
    corpus = _good_corpus(tmp_path / "c")
    page_tree_pdf(corpus / "a-tree.pdf")
    (corpus / "z.txt").write_text("Un autre document, lu après le fichier hostile.", "utf-8")
    started = time.monotonic()
    result = read_corpus(corpus, limits=ParseLimits(cpu_seconds=1, workers=1))
    assert time.monotonic() - started < 8
    assert [d.doc_id for d in result.documents] == ["good.txt", "z.txt"]
    [skip] = result.skipped
    assert skip.path == "a-tree.pdf" and "CPU-time limit" in skip.reason


def test_memory_limit_kills_the_parser_and_names_it(tmp_path: Path) -> None:
    """A 0.5 MB PDF whose content stream inflates to 512 MB: under a 400 MB address space
    its worker dies, and the reason says which limit."""
    corpus = _good_corpus(tmp_path / "c")
    deflate_bomb_pdf(corpus / "bomb.pdf", inflated=512 << 20)
    result = read_corpus(corpus, limits=ParseLimits(memory_mb=400, workers=2))
    assert [d.doc_id for d in result.documents] == ["good.txt"]
    [skip] = result.skipped
    assert "address-space limit (400 MB" in skip.reason


def test_the_pool_parses_in_parallel_and_keeps_the_order(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    corpus.mkdir()
    for i in range(12):
        (corpus / f"{i:02d}.txt").write_text(f"Document numéro {i} du corpus.", "utf-8")
    caged = read_corpus(corpus, limits=ParseLimits(workers=2))
    plain = read_corpus(corpus, limits=ParseLimits(workers=0))
    assert caged.documents == plain.documents  # the Document comes back whole


def test_reindex_over_http_survives_a_file_that_kills_its_parser(tmp_path: Path) -> None:
    """POST /index with a file over the address-space limit: 200, the file skipped, the
    server still answering (before: the whole `qa serve` died)."""
    base = tmp_path
    _good_corpus(base / "corpus")
    settings = Settings(corpus=base / "corpus", index=base / "index", api_key=KEY,
                        cors_origins=[], parse_memory_mb=400)
    with TestClient(create_app(settings, embedder=HashEmbedder())) as c:
        deflate_bomb_pdf(base / "corpus" / "bomb.pdf", inflated=512 << 20)
        r = c.post("/index", headers={"Authorization": f"Bearer {KEY}"})
        assert r.status_code == 200, r.text
        assert [s["path"] for s in r.json()["skipped"]] == ["bomb.pdf"]
        assert c.get("/healthz").json()["documents"] == 1


def test_docx_tables_with_merged_rows_and_wide_spans_are_linear(tmp_path: Path) -> None:
    """python-docx's row.cells is superlinear: 200 merged rows took 64 s, one cell spanning
    100000 columns never ended. The cells are read as written now."""
    parser = DocxParser()
    started = time.monotonic()
    merged = parser.parse(merged_rows_docx(tmp_path / "m.docx").read_bytes(), name="m")
    wide = parser.parse(wide_span_docx(tmp_path / "w.docx").read_bytes(), name="w")
    assert time.monotonic() - started < 5
    assert "c0 | c1 | c2" in merged.text
    assert "large | voisine" in wide.text


def test_a_lying_zip_directory_is_refused_without_inflating(tmp_path: Path) -> None:
    """word/document.xml declares 20 KB and inflates to 256 MB: ZipExtFile.read() inflated
    it all before truncating. Members are read in 64 KB pieces now, up to the declared
    size, and the lie is caught by the CRC."""
    data = lying_zip_docx(tmp_path / "lie.docx", inflated=256 << 20).read_bytes()
    tracemalloc.start()
    try:
        with pytest.raises(corpus_mod.SkipFile, match="zip directory"):
            DocxParser().parse(data, name="lie.docx")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


def test_a_page_of_100k_short_paragraphs_is_refused_before_extraction(tmp_path: Path) -> None:
    """trafilatura took 23.5 s on it (quadratic-ish), close to the cage's CPU limit: it is
    refused by counting its blocks instead, in a fraction of a second."""
    page = many_paragraphs_html(tmp_path / "p.html")
    started = time.monotonic()
    with pytest.raises(corpus_mod.SkipFile, match="more than 50,000 paragraphs"):
        HtmlParser().parse(page.read_bytes(), name="p.html")
    assert time.monotonic() - started < 2


# ---------------------------------------------------------------------------- 2. remembered


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The doc_ids parsed (in this process: the cage's workers would not see the patch)."""
    seen: list[str] = []
    real = corpus_mod.read_file

    def counting(doc_id: str, path: Path, root: Path) -> Any:
        seen.append(doc_id)
        return real(doc_id, path, root)

    monkeypatch.setattr(corpus_mod, "read_file", counting)
    return seen


def test_a_skipped_file_is_parsed_once_until_it_changes(
    tmp_path: Path, counted: list[str], fake_embedder: Embedder
) -> None:
    corpus = _good_corpus(tmp_path / "c")
    bad = random_html(corpus / "bad.html")
    ix = tmp_path / "ix"
    limits = ParseLimits(workers=0)
    report = build_index(corpus, ix, embedder=fake_embedder, parse_limits=limits)
    assert counted == ["bad.html", "good.txt"] and report.skipped[0].path == "bad.html"
    record = json.loads((ix / _snapshots(ix)[-1]).read_text())["skip_records"]["bad.html"]
    assert record["size"] == bad.stat().st_size and len(record["sha256"]) == 64
    assert "binary" in record["reason"]
    counted.clear()
    report = build_index(corpus, ix, embedder=fake_embedder, parse_limits=limits)
    assert counted == []  # not parsed again...
    assert [s.path for s in report.skipped] == ["bad.html"]  # ...and still listed
    assert "binary" in report.skipped[0].reason
    os.utime(bad, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched, same bytes
    build_index(corpus, ix, embedder=fake_embedder, parse_limits=limits)
    assert counted == []
    build_index(corpus, ix, embedder=fake_embedder, parse_limits=limits, retry_skipped=True)
    assert counted == ["bad.html"]
    counted.clear()
    make_html(bad, "Une vraie page désormais", [GOOD, "Et un second paragraphe utile."])
    report = build_index(corpus, ix, embedder=fake_embedder, parse_limits=limits)
    assert counted == ["bad.html"] and report.skipped == []


def test_a_rebuild_parses_remembered_skips_again(
    tmp_path: Path, counted: list[str], fake_embedder: Embedder
) -> None:
    """--rebuild starts from nothing: skip records included (no test held it)."""
    corpus = _good_corpus(tmp_path / "c")
    random_html(corpus / "bad.html")
    ix, limits = tmp_path / "ix", ParseLimits(workers=0)
    build_index(corpus, ix, embedder=fake_embedder, parse_limits=limits)
    counted.clear()
    report = build_index(corpus, ix, embedder=fake_embedder, parse_limits=limits, rebuild=True)
    assert sorted(counted) == ["bad.html", "good.txt"]
    assert "unchanged since" not in report.skipped[0].reason


def test_qa_index_retry_skipped(tmp_path: Path) -> None:
    corpus = _good_corpus(tmp_path / "c")
    random_html(corpus / "bad.html")
    args = ["index", "--corpus", str(corpus), "--index", str(tmp_path / "ix"),
            "--embedder", "hash"]
    runner = CliRunner()
    first = runner.invoke(cli, args)
    assert first.exit_code == 0 and "skipped bad.html: binary" in first.output
    again = runner.invoke(cli, args)
    assert "unchanged since it was skipped" in again.output
    retried = runner.invoke(cli, [*args, "--retry-skipped"])
    assert "skipped bad.html: binary file, not HTML" in retried.output
    assert "unchanged since" not in retried.output


# ---------------------------------------------------------------------------- 3. the watcher


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    base = tmp_path
    _good_corpus(base / "corpus")
    settings = Settings(corpus=base / "corpus", index=base / "index", api_key=KEY,
                        cors_origins=[])
    with TestClient(create_app(settings, embedder=HashEmbedder())) as c:
        yield c, base / "index"


def _commit(index_dir: Path, name: str, content: str | None) -> None:
    """A commit by 'another process': a snapshot (None: a FIFO) and CURRENT naming it."""
    path = index_dir / name
    if content is None:
        os.mkfifo(path)
    else:
        path.write_text(content, encoding="utf-8")
    (index_dir / CURRENT).write_text(name + "\n", encoding="utf-8")


def _live_snapshot(index_dir: Path) -> dict[str, Any]:
    name = (index_dir / CURRENT).read_text().strip()
    return dict(json.loads((index_dir / name).read_text()))


BAD_COMMITS = {
    "recursion": lambda live: "[" * 100_000 + "]" * 100_000,
    "segments-null": lambda live: json.dumps(live | {"segments": None}),
    "segment-outside": lambda live: json.dumps(
        live | {"segments": [{"name": "../../etc", "deleted": []}]}),
    "absolute-segment": lambda live: json.dumps(
        live | {"segments": [{"name": "/tmp", "deleted": []}]}),
    "fifo": None,
}


@pytest.mark.parametrize("kind", list(BAD_COMMITS))
def test_reload_refuses_a_bad_commit_and_keeps_serving(
    served: tuple[TestClient, Path], kind: str
) -> None:
    c, index_dir = served
    auth = {"Authorization": f"Bearer {KEY}"}
    serving = c.get("/healthz").json()["generation"]
    make = BAD_COMMITS[kind]
    _commit(index_dir, "snap-900000.json",
            None if make is None else make(_live_snapshot(index_dir)))
    started = time.monotonic()
    r = c.post("/reload", headers=auth)
    assert time.monotonic() - started < 5  # a FIFO never blocks the open
    assert r.status_code == 503 and "snap-900000" in r.json()["detail"]
    health = c.get("/healthz").json()
    assert health["generation"] == serving and "snap-900000" in health["last_reload_error"]
    assert c.post("/ask", json={"question": "Qui a voté le budget ?"},
                  headers=auth).status_code == 200
    assert c.get("/documents", headers=auth).status_code == 200
    # The next valid commit is picked up and the error cleared.
    (index_dir / CURRENT).write_text(f"{serving}.json\n")
    (index_dir / "snap-900000.json").unlink()
    (index_dir.parent / "corpus" / "new.txt").write_text("Un nouveau document.", "utf-8")
    build_index(index_dir.parent / "corpus", index_dir, embedder=HashEmbedder())
    assert c.post("/reload", headers=auth).json()["reloaded"] is True
    assert c.get("/healthz").json()["last_reload_error"] is None


def test_the_watcher_outlives_any_commit(served: tuple[TestClient, Path],
                                         caplog: pytest.LogCaptureFixture) -> None:
    """A snapshot that made json.loads raise RecursionError killed the QA_WATCH_INDEX thread:
    later valid commits were never served."""
    c, index_dir = served
    holder = c.app.state.holder  # type: ignore[attr-defined]
    settings = c.app.state.settings  # type: ignore[attr-defined]
    serving = holder.index.generation
    stop = threading.Event()
    thread = threading.Thread(target=_watch, args=(holder, settings, HashEmbedder(), 0.05,
                                                   stop), daemon=True)
    thread.start()
    try:
        _commit(index_dir, "snap-900000.json", "[" * 100_000 + "]" * 100_000)
        time.sleep(0.5)
        assert thread.is_alive() and holder.index.generation == serving
        assert holder.last_reload_error
        logged = [r for r in caplog.records if "could not open the new commit" in r.message]
        assert len(logged) == 1  # once, not every tick
        (index_dir / "snap-900000.json").unlink()
        (index_dir / CURRENT).write_text(f"{serving}.json\n")
        (index_dir.parent / "corpus" / "new.txt").write_text("Un nouveau document.", "utf-8")
        build_index(index_dir.parent / "corpus", index_dir, embedder=HashEmbedder())
        deadline = time.monotonic() + 5
        while holder.index.generation == serving and time.monotonic() < deadline:
            time.sleep(0.05)
        assert holder.index.generation != serving and holder.last_reload_error is None
    finally:
        stop.set()
        thread.join(5)


def test_a_reindex_that_serves_the_latest_commit_clears_the_reload_error(
    served: tuple[TestClient, Path]
) -> None:
    """/healthz's last_reload_error says why the latest commit is not served: once POST
    /index has committed and swapped in the latest one, it no longer holds."""
    c, index_dir = served
    auth = {"Authorization": f"Bearer {KEY}"}
    serving = c.app.state.holder.index.generation  # type: ignore[attr-defined]
    _commit(index_dir, "snap-900000.json", "{not json")
    assert c.post("/reload", headers=auth).status_code == 503
    assert c.get("/healthz").json()["last_reload_error"]
    (index_dir / "snap-900000.json").unlink()  # the operator restores the last good one
    (index_dir / CURRENT).write_text(f"{serving}.json\n")
    (index_dir.parent / "corpus" / "new.txt").write_text("Un nouveau document.", "utf-8")
    r = c.post("/index", headers=auth)
    assert r.status_code == 200, r.text
    health = c.get("/healthz").json()
    assert health["generation"] == r.json()["generation"] != serving
    assert health["last_reload_error"] is None


def test_reload_needs_the_key(served: tuple[TestClient, Path]) -> None:
    c, _ = served
    assert c.post("/reload").status_code == 401
    assert c.post("/reload", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = c.post("/reload", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and r.json()["reloaded"] is False


# ---------------------------------------------------------------------------- 4. damage


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """Two commits (the CLI's `--embedder hash` is HashEmbedder())."""
    corpus = _good_corpus(tmp_path / "c")
    build_index(corpus, tmp_path / "ix", embedder=HashEmbedder())
    (corpus / "b.txt").write_text("Le second document parle du tramway de Lyon.", "utf-8")
    build_index(corpus, tmp_path / "ix", embedder=HashEmbedder())
    return tmp_path / "ix"


@pytest.mark.parametrize("current", ["snap-999999.json\n", "../snap-000001.json\n", "/etc\n"])
def test_a_damaged_current_names_the_repair_and_ask_does_not_rebuild(
    built: Path, current: str
) -> None:
    live = (built / CURRENT).read_text().strip()
    (built / CURRENT).write_text(current)
    before = sorted(p.name for p in built.iterdir())
    with pytest.raises(IndexDamagedError) as err:
        load_index(built, embedder=HashEmbedder())
    assert f"--restore {live.removesuffix('.json')}" in str(err.value)
    out = CliRunner().invoke(cli, ["ask", "Qui a voté le budget ?", "--index", str(built),
                                   "--corpus", str(built.parent / "c"), "--embedder", "hash"])
    assert out.exit_code == 1 and "--restore" in out.output and "building" not in out.output
    assert sorted(p.name for p in built.iterdir()) == before  # nothing rebuilt
    fixed = CliRunner().invoke(cli, ["index", "--index", str(built), "--embedder", "hash",
                                     "--restore", live.removesuffix(".json")])
    assert fixed.exit_code == 0, fixed.output
    assert load_index(built, embedder=HashEmbedder()).generation == live.removesuffix(".json")


def test_restore_into_a_folder_that_is_no_index_creates_nothing(tmp_path: Path) -> None:
    """A mistyped --index: refused in one line, and no folder (with a LOCK) left behind."""
    missing = tmp_path / "no-such-index"
    out = CliRunner().invoke(cli, ["index", "--index", str(missing), "--embedder", "hash",
                                   "--restore", "snap-000001"])
    assert out.exit_code == 1 and "no snapshot snap-000001.json" in out.output, out.output
    assert not missing.exists()


def test_a_watcher_facing_a_damaged_current_does_not_reread_every_snapshot_each_tick(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Naming the repair reads every snapshot (tens of MB each at 50k documents); a server
    watching a damaged CURRENT asks each tick, and would parse them all again every time,
    in the process that answers /ask. Unchanged snapshots are not read again."""
    import qa.index.snapshot as index_mod

    reads: list[str] = []
    real = index_mod.read_snapshot

    def counting(index_dir: Path, name: str) -> dict[str, Any]:
        reads.append(name)
        return real(index_dir, name)

    monkeypatch.setattr(index_mod, "read_snapshot", counting)
    (built / CURRENT).write_text("snap-999999.json\n")
    for _ in range(3):
        with pytest.raises(IndexDamagedError, match="--restore"):
            index_mod.live_generation(built, strict=True)
    assert len(reads) == 1, reads
    newest = _snapshots(built)[-1]
    (built / newest).write_text("{not json")  # a snapshot changed: looked at again
    with pytest.raises(IndexDamagedError, match=f"--restore {_snapshots(built)[-2][:-5]}"):
        index_mod.live_generation(built, strict=True)
    assert len(reads) == 3, reads


def test_rebuild_with_a_named_corpus_repairs_a_damaged_current(built: Path) -> None:
    (built / CURRENT).write_text("snap-999999.json\n")
    refused = CliRunner().invoke(cli, ["index", "--index", str(built), "--embedder", "hash"])
    assert refused.exit_code == 1 and "--restore" in refused.output
    out = CliRunner().invoke(cli, ["index", "--rebuild", "--index", str(built), "--corpus",
                                   str(built.parent / "c"), "--embedder", "hash"])
    assert out.exit_code == 0, out.output
    assert load_index(built, embedder=HashEmbedder()).n_documents == 2


def test_a_current_naming_an_invalid_snapshot_names_the_previous_one(built: Path) -> None:
    snaps = _snapshots(built)
    bad = {"format_version": FORMAT_VERSION, "segments": None}
    (built / snaps[-1]).write_text(json.dumps(bad))
    with pytest.raises(IndexDamagedError, match=f"--restore {snaps[-2].removesuffix('.json')}"):
        load_index(built, embedder=HashEmbedder())


@pytest.mark.parametrize("content", [
    json.dumps({"format_version": FORMAT_VERSION, "segments": None}), "{not json"])
def test_an_invalid_live_snapshot_is_named_with_its_repair_by_ask_and_index(
    built: Path, content: str
) -> None:
    """Like a CURRENT naming a missing snapshot: `qa ask` (which reads the manifest for the
    corpus first) names the repair, and `qa index` neither re-embeds the whole corpus
    silently nor forgets the skip records; --rebuild still repairs."""
    snaps = _snapshots(built)
    (built / snaps[-1]).write_text(content)
    previous = snaps[-2].removesuffix(".json")
    before = sorted(p.name for p in built.iterdir())
    ask = CliRunner().invoke(cli, ["ask", "Qui a voté le budget ?", "--index", str(built),
                                   "--embedder", "hash"])
    assert ask.exit_code == 1 and f"--restore {previous}" in ask.output, ask.output
    index = CliRunner().invoke(cli, ["index", "--index", str(built), "--corpus",
                                     str(built.parent / "c"), "--embedder", "hash"])
    assert index.exit_code == 1 and f"--restore {previous}" in index.output, index.output
    assert sorted(p.name for p in built.iterdir()) == before  # nothing rebuilt
    out = CliRunner().invoke(cli, ["index", "--rebuild", "--index", str(built), "--corpus",
                                   str(built.parent / "c"), "--embedder", "hash"])
    assert out.exit_code == 0, out.output


def _rewrite_table(seg: Path, rows: list[dict[str, Any]], lengths: list[int]) -> None:
    lines = [(json.dumps(r) + "\n").encode() for r in rows]
    (seg / "doc_table.jsonl").write_bytes(b"".join(lines))
    np.save(seg / "doc_table_offsets.npy",
            np.concatenate([[0], np.cumsum([len(x) for x in lines])]).astype(np.int64))
    np.save(seg / "doc_lengths.npy", np.array(lengths, dtype=np.int64))


def _table(seg: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (seg / "doc_table.jsonl").read_text().splitlines()]


def test_a_segment_table_that_forgets_a_live_document_is_refused(built: Path) -> None:
    """A document its segment holds without a row in the document table would be
    retrieved and then not described: `qa ask` failed with "unexpected KeyError" (a 500 over
    HTTP) while --check said healthy (when the rows were in the snapshot)."""
    seg = _segment(built)
    rows = _table(seg)
    (seg / "doc_table.jsonl").write_bytes(b"".join(
        (json.dumps(r) + "\n").encode() for r in rows[:-1]))
    with pytest.raises(IndexMismatchError, match=r"doc_table"):
        load_index(built, embedder=HashEmbedder())
    assert any("doc_table" in p for p in verify_index(built, embedder=HashEmbedder()))
    ask = CliRunner().invoke(cli, ["ask", "De quoi parle le tramway ?", "--index", str(built),
                                   "--embedder", "hash"])
    assert ask.exit_code == 1 and "unexpected" not in ask.output, ask.output


def _segment(index_dir: Path) -> Path:
    name = _live_snapshot(index_dir)["segments"][0]["name"]
    return index_dir / name


def test_impossible_offsets_are_refused_and_checked(built: Path) -> None:
    seg = _segment(built)
    chunks = np.load(seg / "chunks.npy")
    chunks[0, 2] = 10**9  # a chunk ending far past its document
    np.save(seg / "chunks.npy", chunks)
    with pytest.raises(IndexMismatchError, match="past its document"):
        load_index(built, embedder=HashEmbedder())
    assert any("past its document" in p for p in verify_index(built, embedder=HashEmbedder()))


def test_check_finds_offsets_hidden_behind_a_forged_length(built: Path) -> None:
    """Offsets are checked against each document's recorded length: a segment claiming a
    longer text let a chunk end past the real text (a cut citation) while --check said
    healthy. --check compares the lengths with the stored text."""
    seg = _segment(built)
    chunks = np.load(seg / "chunks.npy")
    chunks[0, 2] += 50
    np.save(seg / "chunks.npy", chunks)
    rows = _table(seg)
    for row in rows:
        row["length"] = 10**6
    _rewrite_table(seg, rows, [10**6] * len(rows))
    problems = verify_index(built, embedder=HashEmbedder())
    assert any("length" in p for p in problems), problems


def test_check_finds_a_garbage_vocabulary(built: Path) -> None:
    seg = _segment(built)
    terms = np.load(seg / "lex_terms.npy")
    np.save(seg / "lex_terms.npy", terms[::-1].copy())  # unsorted: lookups bisect wrongly
    problems = verify_index(built, embedder=HashEmbedder())
    assert any("lexical vocabulary" in p for p in problems)
    words = (seg / "words.txt").read_bytes()
    (seg / "words.txt").write_bytes(words.replace(b"\n", b"\nx", 1)[: len(words)])
    problems = verify_index(built, embedder=HashEmbedder())
    assert any("word" in p for p in problems)


@pytest.mark.parametrize(("row", "problem"), [
    ('[[0, 99, "paragraph", 0, 0]]', "block"),  # a block ending past its text
    ('[[0, 72, "paragraph", 0, 7]]', "unreadable"),  # a heading path that is not there
])
def test_check_finds_impossible_blocks_and_ask_names_them(
    built: Path, row: str, problem: str
) -> None:
    """Blocks give every citation its section: a damaged one is found by --check (before,
    "healthy", or a traceback), and one that cannot be decoded fails `qa ask` with one line
    naming the repair (before, a traceback)."""
    seg = _segment(built)
    docs = (seg / "docs.jsonl").read_bytes()
    good = b'[[0, 72, "paragraph", 0, 0]]'
    assert good in docs and len(row) == len(good)
    (seg / "docs.jsonl").write_bytes(docs.replace(good, row.encode(), 1))
    problems = verify_index(built, embedder=HashEmbedder())
    assert any(problem in p and "good.txt" in p for p in problems), problems
    out = CliRunner().invoke(cli, ["index", "--check", "--index", str(built),
                                   "--embedder", "hash"])
    assert out.exit_code == 1 and "Traceback" not in out.output
    if problem == "unreadable":
        ask = CliRunner().invoke(cli, ["ask", "Qui a voté le budget des écoles ?",
                                       "--index", str(built), "--embedder", "hash"])
        assert isinstance(ask.exception, SystemExit) and ask.exit_code == 1, ask.output
        assert "docs.jsonl is damaged" in ask.output


def test_check_says_healthy_for_a_good_index(built: Path) -> None:
    assert verify_index(built, embedder=HashEmbedder()) == []


# ---------------------------------------------------------------------------- 5. clients


def _client(handler: Any, **kwargs: Any) -> ev.ServiceClient:
    return ev.ServiceClient("http://qa.test", transport=httpx.MockTransport(handler), **kwargs)


def test_an_endless_response_is_cut_at_the_cap() -> None:
    def endless() -> Iterator[bytes]:
        while True:
            yield b" " * 65536

    client = _client(lambda request: httpx.Response(200, content=endless()),
                     max_bytes=1 << 20)
    with pytest.raises(QAError, match="more than 1,048,576 bytes"):
        client.answer("Qui ?", 3)


def test_a_dripping_server_meets_the_total_deadline() -> None:
    def drip() -> Iterator[bytes]:
        while True:
            time.sleep(0.2)
            yield b" "

    client = _client(lambda request: httpx.Response(200, content=drip()), timeout=1.0)
    started = time.monotonic()
    with pytest.raises(QAError, match="took more than 1 s"):
        client.answer("Qui ?", 3)
    assert time.monotonic() - started < 3


def test_a_server_dripping_its_headers_meets_the_total_deadline() -> None:
    """The deadline covered the body only: a server sending its status line and then one
    header byte every 0.2 s (each read well within httpx's per-read timeout) held `qa eval
    --url` until h11's header cap, hours later. A real socket, not a mock transport, and
    the client still works for the next request."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]

    def serve() -> None:
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
        with contextlib.suppress(OSError):
            while True:
                time.sleep(0.2)
                conn.sendall(b"a")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    client = ev.ServiceClient(f"http://127.0.0.1:{port}", timeout=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(QAError, match="took more than 1 s"):
            client.answer("Qui ?", 3)
        assert time.monotonic() - started < 4
        srv.close()
        with pytest.raises(QAError, match="cannot reach"):  # usable: a new connection
            client.answer("Qui ?", 3)
    finally:
        client.close()
        srv.close()


def test_deep_json_is_refused_by_name() -> None:
    client = _client(lambda request: httpx.Response(200, content=b"[" * 50_000 + b"]" * 50_000))
    with pytest.raises(QAError, match="nested deeper than 64"):
        client.answer("Qui ?", 3)


def test_eval_refuses_to_write_inside_the_index(built: Path, tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "1", "question": "Qui ?", "unanswerable": True}) + "\n")
    live = (built / CURRENT).read_text().strip()
    before = (built / live).read_bytes()
    for option in ("--out", "--markdown"):
        out = CliRunner().invoke(cli, ["eval", str(questions), "--index", str(built),
                                       "--embedder", "hash", option, str(built / live)])
        assert out.exit_code == 1 and "inside the index folder" in out.output
    assert (built / live).read_bytes() == before


def test_compare_reads_only_bounded_regular_files(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(QAError, match="not a regular file"):
            ev.load_report(path)
    assert time.monotonic() - started < 2
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(QAError, match="cannot read eval report"):
        ev.load_report(deep)


# ---------------------------------------------------------------------------- 6. right data


def test_an_impossible_date_in_markup_leaves_the_page_undated(tmp_path: Path) -> None:
    page = make_html(tmp_path / "p.html", "Un titre de page assez long",
                     [GOOD, "Un second paragraphe pour faire un article."], date="2024-02-30")
    parsed = HtmlParser().parse(page.read_bytes(), name="p.html")
    assert parsed.date is None  # was stored as 2024-02-01
    assert any("2024-02-30" in w for w in parsed.warnings)


def test_binary_content_is_refused_wherever_it_starts(tmp_path: Path) -> None:
    page = random_html(tmp_path / "r.html")  # no NUL in its first 4 KB
    with pytest.raises(corpus_mod.SkipFile, match="binary"):
        HtmlParser().parse(page.read_bytes(), name="r.html")
    text = ("Du texte ordinaire.\n" * 1000).encode() + bytes(range(1, 32)) * 200
    with pytest.raises(corpus_mod.SkipFile, match="binary"):
        PlainParser().parse(text, name="t.txt")
    # Man-page overstrike (backspace) and colour escapes are text.
    ok = ("N\bNA\bAM\bME\bE\n\x1b[1mgras\x1b[0m et du texte.\n" * 200).encode()
    assert PlainParser().parse(ok, name="man.txt").text


@pytest.fixture
def mcp_server(built: Path) -> Any:
    from qa.mcp import build_server

    return build_server(load_index(built, embedder=HashEmbedder()))


@pytest.mark.parametrize("arguments", [
    {"question": "Qui a voté ?", "k": "5"},
    {"question": "Qui a voté ?", "doc_ids": []},
    {"question": "Qui a voté ?", "k": 5.0},
    {"question": "Qui a voté ?", "doc_ids": [3]},
    {"question": "Qui a voté ?", "k": 0},
])
def test_mcp_refuses_what_http_refuses(mcp_server: Any, built: Path,
                                       arguments: dict[str, Any]) -> None:
    from mcp.server.mcpserver.exceptions import ToolError

    settings = Settings(corpus=built.parent / "c", index=built, api_key=None, cors_origins=[])
    with TestClient(create_app(settings, embedder=HashEmbedder())) as c:
        assert c.post("/ask", json=arguments).status_code == 422
    for tool in ("ask", "search"):
        with pytest.raises(ToolError):
            anyio.run(mcp_server.call_tool, tool, arguments)


def test_mcp_unknown_document_is_a_tool_error(mcp_server: Any) -> None:
    from mcp.server.mcpserver.exceptions import ToolError

    with pytest.raises(ToolError, match=r"no document 'nope\.txt'"):
        anyio.run(mcp_server.call_tool, "get_document", {"doc_id": "nope.txt"})
    result = anyio.run(mcp_server.call_tool, "get_document", {"doc_id": "good.txt"})
    assert not result.is_error


# ---------------------------------------------------------------------------- 7. survivors


def test_deleted_documents_leave_lexical_search_in_every_mode_at_large_k(
    corpus_dir: Path, tmp_path: Path, fake_embedder: Embedder
) -> None:
    """The planted bug: lexical search forgot deletions unless a document filter was set
    (and `--mode lexical` raised KeyError after a deletion)."""
    ix = tmp_path / "ix"
    build_index(corpus_dir, ix, embedder=fake_embedder)
    gone = "003_c79683804ee38f58.txt"
    words = (corpus_dir / gone).read_text(encoding="utf-8").split()[:40]
    (corpus_dir / gone).unlink()
    build_index(corpus_dir, ix, embedder=fake_embedder)
    index = load_index(ix, embedder=fake_embedder)
    question = " ".join(words[:12])
    for mode in ("hybrid", "dense", "lexical"):
        for k in (5, 50):
            result = answer_question(index, question, k=k, mode=mode)  # type: ignore[arg-type]
            assert all(c.doc_id != gone for c in result.citations), (mode, k)
            if result.answer_span is not None:
                assert result.answer_span.doc_id != gone
    from qa.text import tokens

    _, ids = index.lexical_search(tokens(question), 10_000)
    assert len(ids) and all(index.chunk(int(i)).doc_id != gone for i in ids)


def _pdf_with_header_on(path: Path, pages_with_header: int, total: int = 10) -> list[str]:
    header = "Rapport annuel de la société Exemple"
    pages = []
    for n in range(total):
        lines = [header] if n < pages_with_header else []
        lines += [f"Page {n} : section {chr(65 + n)} du rapport, paragraphe premier.",
                  f"Suite de la section {chr(65 + n)}, avec d'autres mots encore."]
        pages.append(lines)
    make_pdf(path, pages)
    return PdfParser().parse(path.read_bytes(), name=path.name).text.split("\n")


def test_running_header_threshold_on_a_ten_page_pdf(tmp_path: Path) -> None:
    """A line first on 60% of the pages is a running header (dropped); on 50% it is content
    (kept). A 3-page fixture cannot tell a 40% threshold from 60%; ten pages can."""
    header = "Rapport annuel de la société Exemple"
    assert _pdf_with_header_on(tmp_path / "half.pdf", 5).count(header) == 5
    assert _pdf_with_header_on(tmp_path / "most.pdf", 6).count(header) == 0


def test_the_page_inserts_server_text_as_text_never_as_html() -> None:
    """What only the browser tests caught: the page's text insertion. No HTML sink may
    appear in the code, and the element helper sets textContent."""
    source = (ROOT / "qa" / "api" / "static" / "app.js").read_text(encoding="utf-8")
    code = re.sub(r"//[^\n]*|/\*.*?\*/", "", source, flags=re.S)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                 "createContextualFragment", "DOMParser", "srcdoc", "eval(", "Function("):
        assert sink not in code, sink
    assert re.search(r'if \(name === "text"\) node\.textContent = value;', code)


def test_a_file_that_could_not_be_read_this_time_is_not_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_embedder: Embedder
) -> None:
    """An I/O error (permissions fixed by chmod, which leaves size and mtime as they were) is
    not the file's content: it is skipped, and read by the next build, not hidden until it
    changes."""
    corpus = _good_corpus(tmp_path / "c")
    (corpus / "later.txt").write_text("Un document illisible une première fois.", "utf-8")
    ix, limits = tmp_path / "ix", ParseLimits(workers=0)
    real = corpus_mod._open_inside

    def denied(path: Path, root: Path) -> int:
        if path.name == "later.txt":
            raise PermissionError(13, "Permission denied")
        return real(path, root)

    monkeypatch.setattr(corpus_mod, "_open_inside", denied)
    report = build_index(corpus, ix, embedder=fake_embedder, parse_limits=limits)
    assert [(s.path, s.reason) for s in report.skipped] == [
        ("later.txt", "unreadable (Permission denied)")]
    monkeypatch.setattr(corpus_mod, "_open_inside", real)
    report = build_index(corpus, ix, embedder=fake_embedder, parse_limits=limits)
    assert report.skipped == [] and report.added == 1


def test_a_wall_clock_timeout_is_not_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_embedder: Embedder
) -> None:
    """The wall-clock deadline measures the machine's load as much as the file (the CPU
    limit is the file's measure): a file past it is skipped, and parsed again next build."""
    from qa.documents import cage

    corpus = _good_corpus(tmp_path / "c")
    page_tree_pdf(corpus / "a-tree.pdf")
    ix = tmp_path / "ix"
    monkeypatch.setattr(cage, "WALL_FACTOR", 0.0)
    monkeypatch.setattr(cage, "WALL_EXTRA_SECONDS", 0.5)
    limits = ParseLimits(cpu_seconds=15, workers=1)  # wall clock 0.5 s; ~10 s of CPU needed
    report = build_index(corpus, ix, embedder=fake_embedder, parse_limits=limits)
    assert [s.path for s in report.skipped] == ["a-tree.pdf"]
    assert "wall-clock limit" in report.skipped[0].reason
    record = json.loads((ix / _snapshots(ix)[-1]).read_text())["skip_records"]
    assert "a-tree.pdf" not in record


def test_a_parser_killed_from_outside_is_not_remembered(tmp_path: Path) -> None:
    """SIGKILL comes from outside the worker (the kernel's out-of-memory killer on a busy
    machine, an operator), never from its own limits (those end it with SIGXCPU, or SIGABRT
    or a MemoryError at the address-space cap): the file is skipped this time, not hidden
    until it changes."""
    import signal

    from qa.documents.cage import ParsePool

    corpus = _good_corpus(tmp_path / "c")
    page_tree_pdf(corpus / "a-tree.pdf")  # ~10 s of CPU: time to kill it
    pool = ParsePool(ParseLimits(cpu_seconds=60, workers=1))

    def kill_soon() -> None:
        time.sleep(1.0)
        os.kill(pool._workers[0].process.pid, signal.SIGKILL)

    try:
        threading.Thread(target=kill_soon, daemon=True).start()
        [outcome] = list(pool.map([("a-tree.pdf", corpus / "a-tree.pdf")], corpus))
    finally:
        pool.close()
    assert outcome[0] == "retry" and "SIGKILL" in outcome[1], outcome
