"""`qa index --ray` (issue 12): a build on local Ray answers exactly as a local build.

Congruence in the style of qdrant-client's tests: the same corpus, built both ways with the
real default model, must give the same passages, offsets and answer spans on every question
of eval/questions.jsonl."""

from __future__ import annotations

import builtins
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import free_port

from qa.answering import answer_question
from qa.cli import cli
from qa.distributed import INSTALL_HINT, ray_build_index
from qa.embedding import Embedder, HashEmbedder
from qa.errors import ClusterError
from qa.index import build_index, load_index, read_manifest

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "eval" / "questions.jsonl"


def _answers(index_dir: Path, embedder: Embedder) -> list[dict[str, Any]]:
    index = load_index(index_dir, embedder=embedder)
    out = []
    for line in QUESTIONS.read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        a = asdict(answer_question(index, q["question"]))
        out.append({
            "id": q["id"], "abstained": a["abstained"], "answer": a["answer"],
            "span": a["answer_span"], "short": a.get("short_answer"),
            "passages": [(c["doc_id"], c["start"], c["end"]) for c in a["citations"]],
            "confidence": round(a["confidence"], 4),
        })
    index.close()
    return out


def _without_times(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest without build times, with segment names (random suffixes) numbered."""
    names = {e["name"]: f"seg-{i}" for i, e in enumerate(manifest["segments"])}
    out = {k: v for k, v in manifest.items() if k not in {"built_at", "built_at_ns"}}
    out["segments"] = [{**e, "name": names[e["name"]]} for e in manifest["segments"]]
    return out


@pytest.mark.slow
def test_ray_build_answers_like_a_local_build(
    tmp_path: Path, corpus_dir: Path, real_embedder: Embedder
) -> None:
    build_index(corpus_dir, tmp_path / "local", embedder=real_embedder)
    report = ray_build_index(corpus_dir, tmp_path / "ray", embedder=real_embedder, workers=2)
    assert report.documents == 5 and report.embedded_chunks > 0
    local_m, ray_m = read_manifest(tmp_path / "local"), read_manifest(tmp_path / "ray")
    assert _without_times(ray_m) == _without_times(local_m)  # same manifest, same format
    local_ix, ray_ix = (load_index(tmp_path / n, embedder=real_embedder) for n in ("local", "ray"))
    assert [local_ix.doc_meta(d) for d in local_ix.doc_ids()] == \
        [ray_ix.doc_meta(d) for d in ray_ix.doc_ids()]  # the same document tables
    local, remote = _answers(tmp_path / "local", real_embedder), \
        _answers(tmp_path / "ray", real_embedder)
    assert len(local) == 102
    assert sum(not a["abstained"] for a in local) > 50  # the comparison is not vacuous
    for a, b in zip(local, remote, strict=True):
        assert a == b, a["id"]
    # The vectors themselves are the local build's.
    li, ri = load_index(tmp_path / "local", embedder=real_embedder), \
        load_index(tmp_path / "ray", embedder=real_embedder)
    sids = sorted({sid for c in li.live_chunk_ids() for sid in li.sentences_of_chunk(c)})
    assert len(sids) > 100
    assert np.array_equal(li.sentence_vectors_of(sids), ri.sentence_vectors_of(sids))
    li.close()
    ri.close()


@pytest.mark.slow
def test_cli_ray_build_skips_an_unreadable_file_like_a_local_build(
    tmp_path: Path, corpus_dir: Path
) -> None:
    (corpus_dir / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    runner = CliRunner()
    local = runner.invoke(cli, ["index", "--corpus", str(corpus_dir), "--index",
                                str(tmp_path / "local"), "--embedder", "hash"])
    remote = runner.invoke(cli, ["index", "--ray", "--workers", "1", "--corpus",
                                 str(corpus_dir), "--index", str(tmp_path / "ray"),
                                 "--embedder", "hash"])
    assert local.exit_code == 0 and remote.exit_code == 0, remote.output
    warnings = [ln for ln in local.stderr.splitlines() if "broken.pdf" in ln]
    assert warnings and warnings == [ln for ln in remote.stderr.splitlines()
                                     if "broken.pdf" in ln]
    assert read_manifest(tmp_path / "ray")["skipped"] == ["broken.pdf"]


def test_cli_ray_build_keeps_retry_skipped_and_the_parse_limits(
    tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`qa index --ray --retry-skipped --parse-cpu-seconds 5` builds as a local build with
    the same options (before: both were silently dropped, a remembered skip stayed hidden)."""
    import qa.distributed as distributed
    from qa.documents import ParseLimits

    seen: dict[str, Any] = {}

    def fake_ray_build(corpus: Path, index: Path, *, embedder: Embedder, address: Any,
                       workers: int, **options: Any) -> Any:
        seen.update(options)
        return build_index(corpus, index, embedder=embedder, **options)

    monkeypatch.setattr(distributed, "import_ray", lambda: None)
    monkeypatch.setattr(distributed, "ray_build_index", fake_ray_build)
    out = CliRunner().invoke(cli, ["index", "--ray", "--retry-skipped", "--parse-cpu-seconds",
                                   "5", "--corpus", str(corpus_dir), "--index",
                                   str(tmp_path / "ix"), "--embedder", "hash"])
    assert out.exit_code == 0, out.output
    assert seen["retry_skipped"] is True
    assert seen["parse_limits"] == ParseLimits(cpu_seconds=5)


def test_without_ray_the_cli_says_how_to_install_it(
    tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    result = CliRunner().invoke(cli, ["index", "--ray", "--corpus", str(corpus_dir),
                                      "--index", str(tmp_path / "index"), "--embedder", "hash"])
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [f"error: {INSTALL_HINT}"]
    assert not (tmp_path / "index").exists()


def test_an_unreachable_cluster_fails_fast_and_leaves_the_index_untouched(
    tmp_path: Path, corpus_dir: Path
) -> None:
    build_index(corpus_dir, tmp_path / "index", embedder=HashEmbedder(64))
    before = {p.relative_to(tmp_path): p.read_bytes()
              for p in (tmp_path / "index").rglob("*") if p.is_file()}
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(ClusterError, match="cannot reach the Ray cluster"):
        ray_build_index(corpus_dir, tmp_path / "index", embedder=HashEmbedder(64),
                        address=address)
    assert time.monotonic() - started < 30
    after = {p.relative_to(tmp_path): p.read_bytes()
             for p in (tmp_path / "index").rglob("*") if p.is_file()}
    assert after == before
    result = CliRunner().invoke(cli, ["index", "--ray", address, "--corpus", str(corpus_dir),
                                      "--index", str(tmp_path / "index"), "--embedder", "hash"])
    assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1
    assert "cannot reach the Ray cluster" in result.output


def test_a_bad_address_is_named(tmp_path: Path, corpus_dir: Path) -> None:
    with pytest.raises(ClusterError, match="bad Ray address"):
        ray_build_index(corpus_dir, tmp_path / "index", embedder=HashEmbedder(64),
                        address="no-port-here")
    assert not (tmp_path / "index").exists()


def test_the_local_build_does_not_import_ray(tmp_path: Path, corpus_dir: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; import qa.cli, qa.index, qa.api.app; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
