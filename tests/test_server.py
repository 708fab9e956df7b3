"""A real `qa serve` on 127.0.0.1 with the real default model (use-m3), driven by httpx:
the contract, the same answers as `qa ask --json`, auth, raw path traversal, body limits, and a
re-index while eight clients keep asking. One server per module, always terminated."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import free_port
from contract import assert_contract, document_text

pytestmark = pytest.mark.slow

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
KEY = "server-test-key-5f1c0a"
AUTH = {"Authorization": f"Bearer {KEY}"}
SECRET = "TOP SECRET: this file is outside the corpus"
QUESTIONS = [
    "When did Lavrov visit North Korea?",
    "Dans quelle ville les chefs de la diplomatie du G7 se sont-ils retrouvés ?",
    "Who is the North Korean foreign minister?",
    "Quand Kim Jong-un a-t-il rencontré le ministre russe des ressources naturelles ?",
    "How many North Korean soldiers were sent to Russia?",
    "Quel est le prix du pain à Paris ?",
]


@dataclass
class Server:
    url: str
    base: Path
    process: subprocess.Popen[bytes]

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)


def qa_command() -> list[str]:
    """The installed `qa` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("qa")
    if script.exists():
        return [str(script)]
    found = shutil.which("qa")
    assert found, "the qa console script is not installed"
    return [found]


def stop(process: subprocess.Popen[Any]) -> None:
    """Terminate a server process, killing it if it has not exited within 20 s."""
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def build_shipped_index(base: Path) -> Path:
    """The shipped corpus copied into base and indexed by the real `qa index` (use-m3)."""
    shutil.copytree(CORPUS, base / "corpus")
    done = subprocess.run([*qa_command(), "index", "--corpus", "corpus", "--index", "index",
                           "--embedder", "use-m3"], cwd=base, env=clean_env(),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return base


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    return env | extra


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("server")
    shutil.copytree(CORPUS, base / "corpus")
    (base / "secret.txt").write_text(SECRET, encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [*qa_command(), "serve", "--host", "127.0.0.1", "--port", str(port),
               "--corpus", str(base / "corpus"), "--index", str(base / "index"),
               "--embedder", "use-m3"]
    # A file, not a pipe: a full pipe would stall the server once its access log grows.
    with open(base / "server.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env=clean_env(QA_API_KEY=KEY), cwd=base)
        try:
            deadline = time.monotonic() + 180
            while True:
                if process.poll() is not None:
                    pytest.fail("qa serve exited early:\n" + (base / "server.log").read_text())
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("qa serve not ready:\n" + (base / "server.log").read_text())
                time.sleep(0.2)
            yield Server(url, base, process)
        finally:
            stop(process)


def test_healthz_is_open(server: Server) -> None:
    r = httpx.get(f"{server.url}/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["embedder"] == "use-m3"
    assert body["documents"] >= 5 and body["chunks"] > 0 and body["built_at"]


def test_ask_contract_with_the_real_model(server: Server) -> None:
    with server.client(headers=AUTH) as c:
        text = document_text(c, AUTH)
        results = {}
        for q in QUESTIONS:
            r = c.post("/ask", json={"question": q, "k": 3})
            assert r.status_code == 200, r.text
            assert_contract(r.json(), q, 3, text)
            results[q] = r.json()
    lavrov = results["When did Lavrov visit North Korea?"]
    assert not lavrov["abstained"] and "18 octobre" in lavrov["answer"]


def test_same_answers_as_the_cli(server: Server) -> None:
    """`qa ask --json` on the same index prints exactly what POST /ask returns."""
    with server.client(headers=AUTH) as c:
        for q, k in [(QUESTIONS[0], 3), (QUESTIONS[3], 5)]:
            cli = subprocess.run(
                [*qa_command(), "ask", q, "-k", str(k), "--json",
                 "--corpus", str(server.base / "corpus"), "--index", str(server.base / "index")],
                capture_output=True, text=True, env=clean_env(), timeout=120, check=True,
            )
            r = c.post("/ask", json={"question": q, "k": k})
            assert r.status_code == 200
            assert r.json() == json.loads(cli.stdout)


def test_the_key_is_required_everywhere_but_healthz(server: Server) -> None:
    with server.client() as c:
        for method, path in [("POST", "/ask"), ("GET", "/documents"), ("POST", "/index"),
                             ("GET", "/documents/000_25f13bc6add64f1c.txt"),
                             ("GET", "/openapi.json"), ("GET", "/docs")]:
            for headers in [{}, {"Authorization": "Bearer nope"}]:
                r = c.request(method, path, json={"question": "Qui ?"}, headers=headers)
                assert r.status_code == 401, (method, path)
                assert r.headers["www-authenticate"] == "Bearer"
        assert c.get("/openapi.json", headers=AUTH).status_code == 200
        assert c.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/documents/../secret.txt",
        "/documents/../../secret.txt",
        "/documents/%2e%2e/secret.txt",
        "/documents/..%2fsecret.txt",
        "/documents/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/documents//etc/passwd",
        "/documents/..\\secret.txt",
        "/documents/000_25f13bc6add64f1c.txt/../../secret.txt",
    ],
)
def test_raw_traversal_paths_never_leave_the_index(server: Server, path: str) -> None:
    """Sent byte for byte (http.client does not normalise '..'), with the key."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path, headers=AUTH)
        response = conn.getresponse()
        body = response.read().decode("utf-8", "replace")
    finally:
        conn.close()
    assert response.status in (400, 404), (path, response.status, body)
    assert SECRET not in body and "root:" not in body


def test_absolute_path_of_a_real_file_is_not_served(server: Server) -> None:
    with server.client(headers=AUTH) as c:
        for doc_id in [str(server.base / "secret.txt"), "/etc/passwd",
                       str(server.base / "corpus" / "000_25f13bc6add64f1c.txt")]:
            r = c.get(f"/documents/{doc_id}")
            assert r.status_code == 404 and SECRET not in r.text


def test_body_limits_and_bad_input_on_the_wire(server: Server) -> None:
    with server.client(headers=AUTH) as c:
        big = b'{"question": "Qui ?", "doc_ids": ["' + b"x" * 70_000 + b'"]}'
        r = c.post("/ask", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["detail"]

        def chunks() -> Iterator[bytes]:  # Transfer-Encoding: chunked, no Content-Length
            yield b'{"question": "Qui ?", "doc_ids": ["'
            for _ in range(80):
                yield b"x" * 1024
            yield b'"]}'

        r = c.post("/ask", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        r = c.post("/ask", content=b'{"question": "Qui ?"', headers={"Content-Type":
                                                                      "application/json"})
        assert r.status_code == 422
        r = c.post("/ask", content=b'{"question": "Qui ?"}', headers={"Content-Type":
                                                                       "text/plain"})
        assert r.status_code == 415
        r = c.post("/ask", json={"question": "Qui ?", "k": 0})
        assert r.status_code == 422
        assert c.get("/healthz").json()["status"] == "ok"


def test_reindex_during_concurrent_asks_fails_no_request(server: Server) -> None:
    """Eight clients ask in a loop while POST /index re-embeds a changed document and swaps
    the new index in: every request gets a 200, some are served during the re-index, and
    afterwards the change is live."""
    results: list[tuple[str, int, Any, float, float]] = []
    errors: list[str] = []
    stop = threading.Event()

    def asker(worker: int) -> None:
        with server.client(headers=AUTH) as c:
            n = worker
            while not stop.is_set():
                q = QUESTIONS[n % len(QUESTIONS)]
                n += 1
                started = time.monotonic()
                try:
                    r = c.post("/ask", json={"question": q, "k": 3})
                except httpx.HTTPError as exc:
                    errors.append(f"{q!r}: {exc!r}")
                    continue
                body = r.json() if r.status_code == 200 else r.text
                results.append((q, r.status_code, body, started, time.monotonic()))

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 120
        while len(results) < count and not errors and time.monotonic() < deadline:
            time.sleep(0.05)

    threads = [threading.Thread(target=asker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    try:
        wait_for(16)
        doc = server.base / "corpus" / "004_2ebee54b9c6398b9.txt"
        added = ("\nLe comité d’essai du service s’est réuni à Grenoble le 3 février 2025 "
                 "pour vérifier les réponses.")
        doc.write_text(doc.read_text(encoding="utf-8") + added, encoding="utf-8")
        with server.client(headers=AUTH) as admin:
            before = admin.get("/healthz").json()["built_at"]
            index_started = time.monotonic()
            r = admin.post("/index", timeout=300)
            index_ended = time.monotonic()
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["changed"] == 1 and report["unchanged"] == 4
        assert report["embedded_chunks"] >= 1
        wait_for(len(results) + 16)
    finally:
        stop.set()
        for t in threads:
            t.join(120)

    assert not errors, errors[:5]
    assert len(results) >= 32
    assert all(status == 200 for _, status, _, _, _ in results), [
        (q, s, b) for q, s, b, _, _ in results if s != 200][:3]
    during = [r for r in results if r[3] >= index_started and r[4] <= index_ended]
    assert during, "no request was served while the re-index ran"
    # Concurrency does not change answers: per question, one result before the swap and at
    # most one other after it.
    outcomes: dict[str, set[str]] = {}
    for q, _, body, _, _ in results:
        key = json.dumps([body["answer_span"], [(c["doc_id"], c["start"], c["end"])
                                                for c in body["citations"]]])
        outcomes.setdefault(q, set()).add(key)
    assert all(len(v) <= 2 for v in outcomes.values()), outcomes

    with server.client(headers=AUTH) as c:
        health = c.get("/healthz").json()
        assert health["built_at"] >= before
        assert c.get(f"/documents/{doc.name}").json()["text"].endswith(added)
        q = "Où le comité d’essai du service s’est-il réuni ?"
        r = c.post("/ask", json={"question": q})
        assert r.status_code == 200
        assert_contract(r.json(), q, 5, document_text(c, AUTH))
        assert "Grenoble" in (r.json()["answer"] or "")


def test_eval_over_the_service_matches_the_library(server: Server) -> None:
    """`qa eval --url` (black box over HTTP) scores exactly as a library run on the same index."""
    from qa import evaluation as ev
    from qa.embedding import make_embedder
    from qa.index import load_index

    root = Path(__file__).resolve().parent.parent
    questions = ev.read_questions(root / "eval" / "questions.jsonl")[:24]
    client = ev.ServiceClient(server.url, api_key=KEY)
    try:
        over_http = ev.run_eval(
            ev.locate_evidence(questions, client.documents()), client.answer, k=10
        )
        index = load_index(server.base / "index", embedder=make_embedder("use-m3"))
        in_process = ev.run_eval(
            ev.locate_evidence(questions, ev.index_documents(index)),
            ev.library_answer_fn(index), k=10,
        )
    finally:
        client.close()
    def scores(results: list[ev.QuestionResult]) -> list[dict[str, Any]]:
        return [{k: v for k, v in asdict(r).items() if k != "latency_ms"} for r in results]

    assert len(over_http) == 24
    assert scores(over_http) == scores(in_process)
