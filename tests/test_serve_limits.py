"""A real `qa serve` (fast fake embedder) against idle and slow clients, and an index served
without --corpus (issue 8, items 7 and 8). Loopback only, bounded loops."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import free_port
from test_server import CORPUS, clean_env, qa_command, stop

pytestmark = pytest.mark.slow
KEY = "limits-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def start(base: Path, *args: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(base / f"server-{port}.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [*qa_command(), "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=base,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("qa serve exited:\n" + (base / f"server-{port}.log").read_text())
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    pytest.fail("qa serve not ready")


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[str]:
    shutil.copytree(CORPUS, tmp_path / "corpus")
    env = clean_env(QA_TIMEOUT_HEADERS="1", QA_LIMIT_CONCURRENCY="20",
                    QA_TIMEOUT_KEEP_ALIVE="2")
    process, url = start(tmp_path, "--corpus", "corpus", "--index", "index",
                         "--embedder", "hash", env=env)
    try:
        yield url
    finally:
        stop(process)


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes the connection within `within` seconds (what it still sends
    before closing, such as the rest of a response, is read and ignored)."""
    deadline = time.monotonic() + within
    try:
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if sock.recv(4096) == b"":
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return False


def test_idle_and_slow_clients_are_dropped(limited: str) -> None:
    """Connections that never finish their headers are closed after QA_TIMEOUT_HEADERS; while
    more idle connections than QA_LIMIT_CONCURRENCY are open, requests get a quick 503 rather
    than a hang, and /healthz answers again once the idle ones are dropped."""
    port = int(limited.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
    slow = socket.create_connection(("127.0.0.1", port))
    try:
        started = time.monotonic()
        r = httpx.get(f"{limited}/healthz", timeout=5)
        assert r.status_code == 503 and time.monotonic() - started < 2  # over the limit: quick
        for _ in range(4):  # a byte now and then never completes the headers
            slow.sendall(b"G" if _ == 0 else b"E")
            time.sleep(0.3)
        assert _closed_by_server(slow, within=2.0)
        assert all(_closed_by_server(s, within=2.0) for s in idle)
        assert time.monotonic() - started < 5
        r = httpx.get(f"{limited}/healthz", timeout=5)
        assert r.status_code == 200
    finally:
        for s in [*idle, slow]:
            s.close()


def test_keep_alive_connections_are_kept_then_closed(limited: str) -> None:
    port = int(limited.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        for pause in [0, 1.5]:  # longer than the header timeout, shorter than keep-alive
            time.sleep(pause)
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            assert response.status == 200 and b'"ok"' in response.read()
        assert conn.sock is not None  # the same connection served both
        assert _closed_by_server(conn.sock, within=4.0)  # idle past QA_TIMEOUT_KEEP_ALIVE
    finally:
        conn.close()


def test_serve_and_ask_use_the_corpus_the_index_was_built_from(tmp_path: Path) -> None:
    """`--index X` without --corpus: POST /index re-reads X's own corpus, never ./corpus."""
    shutil.copytree(CORPUS, tmp_path / "mine")
    (tmp_path / "corpus").mkdir()  # a different ./corpus in the working directory
    (tmp_path / "corpus" / "other.txt").write_text("Un tout autre document.", encoding="utf-8")
    env = clean_env(QA_API_KEY=KEY)
    built = subprocess.run([*qa_command(), "index", "--corpus", "mine", "--index", "idx",
                            "--embedder", "hash"], cwd=tmp_path, env=env, capture_output=True)
    assert built.returncode == 0, built.stderr
    process, url = start(tmp_path, "--index", "idx", "--embedder", "hash", env=env)
    try:
        r = httpx.post(f"{url}/index", headers=AUTH, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["documents"] == 5 and r.json()["unchanged"] == 5
        docs = httpx.get(f"{url}/documents", headers=AUTH).json()
        assert "other.txt" not in {d["doc_id"] for d in docs}
    finally:
        stop(process)
    # qa index --index X: re-reads X's corpus too
    again = subprocess.run([*qa_command(), "index", "--index", "idx", "--embedder", "hash"],
                           cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "indexed 5 documents" in again.stderr and "unchanged 5" in again.stderr
    # qa ask: staleness is computed against the index's corpus, not ./corpus
    (tmp_path / "mine" / "new.txt").write_text("Un ajout.", encoding="utf-8")
    asked = subprocess.run([*qa_command(), "ask", "Qui ?", "--index", "idx", "--embedder", "hash",
                            "--json"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert asked.returncode == 0, asked.stderr
    assert "new.txt" in asked.stderr and "other.txt" not in asked.stderr
    # an index that does not record its corpus is refused with a message
    current = (tmp_path / "idx" / "CURRENT").read_text().strip()
    manifest_path = tmp_path / "idx" / current
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    del manifest["corpus"]
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    asked = subprocess.run([*qa_command(), "ask", "Qui ?", "--index", "idx", "--embedder", "hash"],
                           cwd=tmp_path, env=env, capture_output=True, text=True)
    assert asked.returncode == 1
    assert "--corpus" in asked.stderr and "Traceback" not in asked.stderr
