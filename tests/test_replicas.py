"""Serving replicas (issue 12): two real `qa serve` processes on 127.0.0.1 over one index
folder answer identically, and both pick up a commit made by an outside `qa index` without a
restart: one by watching CURRENT (QA_WATCH_INDEX), the other on POST /reload."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import free_port
from test_server import build_shipped_index, clean_env, qa_command, stop

pytestmark = pytest.mark.slow

KEY = "replica-test-key-8d2e"
AUTH = {"Authorization": f"Bearer {KEY}"}
QUESTIONS = [
    "When did Lavrov visit North Korea?",
    "Dans quelle ville les chefs de la diplomatie du G7 se sont-ils retrouvés ?",
    "Quel est le prix du pain à Paris ?",
]
NEW_FACT = ("Le phare de Kerbrat a été repeint en vert le 3 mars 2023 par l'association "
            "des gardiens de phare de Bretagne.")
NEW_QUESTION = "En quelle couleur le phare de Kerbrat a-t-il été repeint ?"


def _start(base: Path, env: dict[str, str]) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(base / f"serve-{port}.log", "wb")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(
        [*qa_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--corpus",
         "corpus", "--index", "index", "--embedder", "use-m3"],
        stdout=log, stderr=subprocess.STDOUT, env=clean_env(**env), cwd=base)
    log.close()
    return url, process


def _ready(base: Path, url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("qa serve exited early:\n" + _logs(base))
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail("qa serve not ready:\n" + _logs(base))


def _logs(base: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in base.glob("serve-*.log"))


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    base = build_shipped_index(tmp_path)
    watching = _start(base, {"QA_WATCH_INDEX": "0.5"})
    keyed = _start(base, {"QA_API_KEY": KEY})
    try:
        for url, process in (watching, keyed):
            _ready(base, url, process)
        yield base, watching[0], keyed[0]
    finally:
        stop(watching[1])
        stop(keyed[1])


def _ask(url: str, question: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = httpx.post(f"{url}/ask", json={"question": question}, headers=headers or {},
                   timeout=60)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    body.pop("timings", None)
    body.pop("took_ms", None)
    return body


def _generation(url: str) -> str:
    return str(httpx.get(f"{url}/healthz", timeout=10).json()["generation"])


def test_replicas_answer_alike_and_pick_up_a_new_commit(
    replicas: tuple[Path, str, str],
) -> None:
    base, watching, keyed = replicas
    before = _generation(watching)
    assert _generation(keyed) == before
    for q in QUESTIONS:
        assert _ask(watching, q) == _ask(keyed, q, AUTH)
    old = _ask(watching, NEW_QUESTION)
    assert NEW_FACT not in (old.get("answer") or "")

    # Reloading needs the key, and a server without one refuses it.
    assert httpx.post(f"{keyed}/reload", timeout=10).status_code == 401
    assert httpx.post(f"{watching}/reload", timeout=10).status_code == 403
    r = httpx.post(f"{keyed}/reload", headers=AUTH, timeout=10)
    assert r.status_code == 200 and r.json() == {"reloaded": False, "generation": before}

    # An outside `qa index` commits a new snapshot into the shared folder.
    (base / "corpus" / "kerbrat.txt").write_text(
        "Le phare de Kerbrat\n\n" + NEW_FACT + "\n", encoding="utf-8")
    done = subprocess.run([*qa_command(), "index", "--corpus", "corpus", "--index", "index",
                           "--embedder", "use-m3"], cwd=base, env=clean_env(),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    deadline = time.monotonic() + 30
    while _generation(watching) == before:  # the watcher swaps it in by itself
        assert time.monotonic() < deadline, "the watcher did not pick up the commit:\n" + \
            _logs(base)
        time.sleep(0.25)
    assert _generation(keyed) == before  # no watcher, no reload yet: still the old commit
    r = httpx.post(f"{keyed}/reload", headers=AUTH, timeout=60)
    assert r.status_code == 200 and r.json()["reloaded"] is True
    after = _generation(watching)
    assert after != before and r.json()["generation"] == after == _generation(keyed)

    a, b = _ask(watching, NEW_QUESTION), _ask(keyed, NEW_QUESTION, AUTH)
    assert a == b
    assert not a["abstained"] and a["answer_span"]["doc_id"] == "kerbrat.txt"
    assert "vert" in a["answer"]
    for q in QUESTIONS:
        assert _ask(watching, q) == _ask(keyed, q, AUTH)
