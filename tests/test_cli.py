"""The `qa` command end to end: real subprocesses, the real default model, tmp folders only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qa.index import CURRENT

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def qa(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    qa_bin = Path(sys.executable).parent / "qa"
    command = [str(qa_bin)] if qa_bin.exists() else [sys.executable, "-m", "qa.cli"]
    return subprocess.run(
        [*command, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, "XDG_CACHE_HOME": str(cwd / ".cache"), **(env or {})},
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder laid out like a fresh clone: ./corpus and no index yet."""
    shutil.copytree(ROOT / "corpus", tmp_path / "corpus")
    return tmp_path


def test_first_ask_builds_the_index_and_answers(workdir: Path) -> None:
    r = qa("ask", "When did Putin visit Pyongyang?", cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert "building it" in r.stderr and "indexed 5 documents" in r.stderr
    assert "juin 2024" in r.stdout and "003_c79683804ee38f58.txt" in r.stdout
    assert ">>" in r.stdout  # the answer is highlighted in its passage (not a TTY: markers)
    assert (workdir / "index" / CURRENT).exists()


def test_ask_json_is_the_result_object(workdir: Path) -> None:
    r = qa("ask", "Combien d'obus la Corée du Nord a-t-elle fournis à la Russie ?",
           "--json", "-k", "3", cwd=workdir)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert set(result) == {"question", "answer", "abstained", "answer_span", "citations",
                           "confidence", "short_answer", "note", "generation"}
    assert "près de trois millions d’obus" in result["answer"]
    span = result["answer_span"]
    text = (workdir / "corpus" / span["doc_id"]).read_text(encoding="utf-8")
    assert text[span["start"] : span["end"]] == result["answer"]
    assert len(result["citations"]) == 3
    for c in result["citations"]:
        doc = (workdir / "corpus" / c["doc_id"]).read_text(encoding="utf-8")
        assert doc[c["start"] : c["end"]] == c["text"]


def test_unanswerable_question_abstains(workdir: Path) -> None:
    r = qa("ask", "Who won the 2022 World Cup?", "--json", cwd=workdir)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["abstained"] is True and result["answer"] is None
    r = qa("ask", "Who won the 2022 World Cup?", cwd=workdir)
    assert r.stdout.startswith("Not found in these documents")


def test_index_reports_counts_and_updates_incrementally(workdir: Path) -> None:
    r = qa("index", cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert "indexed 5 documents" in r.stderr and "added 5" in r.stderr
    (workdir / "corpus" / "extra.md").write_text("Kim Jong-un a reçu Lavrov.", encoding="utf-8")
    (workdir / "corpus" / "bad.txt").write_bytes(b"\xff\xfe\x00binary")
    (workdir / "corpus" / "004_2ebee54b9c6398b9.txt").unlink()
    r = qa("index", cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert "added 1, changed 0, unchanged 4, removed 1" in r.stderr
    assert "embedded 1 chunk(s)" in r.stderr
    assert "warning: skipped bad.txt: binary file" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["ask", ""], "the question is empty"),
    (["ask", "x" * 1001], "limit is 1000"),
    (["ask", "ok?", "--date-from", "yesterday"], "date_from must be a date"),
    (["ask", "ok?", "--doc-id", "../../etc/passwd"], "unknown doc_id"),
    (["index", "--corpus", "does-not-exist"], "corpus folder not found"),
    (["ask", "ok?", "--embedder", "nope"], "unknown embedder"),
    (["ask", "ok?", "--embedder", "hash-0"], "unknown embedder"),
    (["index", "--corpus", "corpus/003_c79683804ee38f58.txt"], "must be a folder"),
    (["ask", "Poutine \udcff"], "not valid Unicode"),
])
def test_errors_are_one_line_and_nonzero(workdir: Path, args: list[str], message: str) -> None:
    r = qa(*args, cwd=workdir)
    assert r.returncode != 0
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and r.stderr.strip().splitlines()[-1] == errors[0], r.stderr
    if args[0] == "ask" and "--doc-id" not in args:  # rejected before any loading
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_bad_corpus_leaves_the_existing_index_untouched(workdir: Path, tmp_path: Path) -> None:
    assert qa("index", cwd=workdir).returncode == 0
    before = (workdir / "index" / CURRENT).read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "blank.txt").write_text("   ", encoding="utf-8")
    r = qa("index", "--corpus", str(empty), cwd=workdir)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("error: no readable")
    assert (workdir / "index" / CURRENT).read_text() == before
    assert qa("ask", "Kozlov", "--json", cwd=workdir).returncode == 0


def test_ask_warns_when_the_corpus_changed_since_indexing(workdir: Path) -> None:
    assert qa("index", cwd=workdir).returncode == 0
    r = qa("ask", "Kozlov ?", cwd=workdir)
    assert "warning" not in r.stderr
    (workdir / "corpus" / "new.md").write_text("Kim a reçu Kozlov.", encoding="utf-8")
    (workdir / "corpus" / "004_2ebee54b9c6398b9.txt").unlink()
    r = qa("ask", "Kozlov ?", cwd=workdir)
    assert r.returncode == 0
    assert "warning: 2 file(s) changed" in r.stderr and "run `qa index`" in r.stderr


def test_index_of_another_corpus_is_refused(workdir: Path, tmp_path: Path) -> None:
    """Naming a corpus that is not the one the index was built from is an error, not a
    silent answer from the old corpus."""
    assert qa("index", cwd=workdir).returncode == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_text("Le sommet de Vladivostok a eu lieu.", encoding="utf-8")
    r = qa("ask", "Vladivostok ?", "--corpus", str(other), cwd=workdir)
    assert r.returncode == 1 and "was built from" in r.stderr and "qa index" in r.stderr
    r = qa("ask", "Vladivostok ?", cwd=workdir, env={"QA_CORPUS": str(other)})
    assert r.returncode == 1 and "was built from" in r.stderr


@pytest.mark.parametrize("env, message", [
    ({"QA_CHUNK_SIZE": "abc"}, "invalid setting QA_CHUNK_SIZE='abc'"),
    ({"QA_CHUNK_SIZE": "10"}, "invalid setting QA_CHUNK_SIZE='10'"),
    ({"QA_CORS_ORIGINS": "https://x"}, "invalid setting"),
])
def test_bad_settings_are_one_line(workdir: Path, env: dict[str, str], message: str) -> None:
    r = qa("index", cwd=workdir, env=env)
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_serve_on_a_busy_port_is_one_line(workdir: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = qa("serve", "--port", str(port), cwd=workdir)
    assert r.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr


def test_index_of_another_embedder_is_refused(workdir: Path) -> None:
    assert qa("index", "--embedder", "hash", cwd=workdir).returncode == 0
    r = qa("ask", "Kozlov?", cwd=workdir)
    assert r.returncode == 1
    assert "built with embedder 'hash-256'" in r.stderr and "run `qa index`" in r.stderr
