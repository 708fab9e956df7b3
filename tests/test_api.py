"""The HTTP API in-process (TestClient): contract, bad input, auth, path traversal, re-index,
and a schemathesis run over /openapi.json. Most tests use the fast HashEmbedder; the one marked
slow uses the real default model. tests/test_server.py drives a real `qa serve`."""

from __future__ import annotations

import dataclasses
import inspect
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from contract import assert_contract, document_text
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.config._checks import NegativeDataRejectionConfig, PositiveDataAcceptanceConfig

import qa.api
import qa.index
from qa.api import MAX_BODY_BYTES, create_app
from qa.api.schemas import IndexReportOut
from qa.config import DEFAULT_EMBEDDER, Settings
from qa.embedding import HashEmbedder
from qa.errors import (
    CorpusError,
    DocumentNotFoundError,
    EmbedderError,
    IndexMismatchError,
    IndexNotFoundError,
    InvalidQuestionError,
    QAError,
)
from qa.index import load_index

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
SECRET = "TOP SECRET: this file is outside the corpus"
# French questions the trigram HashEmbedder and BM25 can answer; English ones that it may not.
QUESTIONS = [
    "Quand Sergueï Lavrov s’est-il rendu en visite en Corée du Nord ?",
    "Où les ministres des affaires étrangères du G7 étaient-ils réunis ?",
    "Qui est la ministre nord-coréenne des Affaires étrangères ?",
    "When did Kim Jong-un meet the Russian minister?",
    "   Combien de soldats nord-coréens ?  ",
    "Quelle est la couleur du ciel sur Mars ?",
]


def make_workspace(base: Path, docs: list[str] | None = None) -> Path:
    """A corpus copy under base/corpus (optionally only some documents) and a file outside it."""
    corpus = base / "corpus"
    corpus.mkdir(parents=True)
    for path in sorted(CORPUS.iterdir()):
        if path.is_file() and (docs is None or path.name in docs):
            shutil.copy(path, corpus / path.name)
    (base / "secret.txt").write_text(SECRET, encoding="utf-8")
    return base


def make_settings(base: Path, **overrides: Any) -> Settings:
    # Explicit values win over the environment, so a developer's QA_API_KEY cannot leak in.
    values: dict[str, Any] = {"corpus": base / "corpus", "index": base / "index",
                              "api_key": None, "cors_origins": []}
    return Settings(**(values | overrides))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def client(workspace: Path) -> Iterator[TestClient]:
    """An open app (no API key) over the whole corpus with the fast fake embedder."""
    app = create_app(make_settings(workspace), embedder=HashEmbedder())
    with TestClient(app) as c:
        yield c


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    """An app with QA_API_KEY set, over its own corpus copy (tests may change it)."""
    base = make_workspace(tmp_path)
    app = create_app(make_settings(base, api_key=KEY), embedder=HashEmbedder())
    with TestClient(app) as c:
        yield c, base


# ---------------------------------------------------------------------------- contract


def test_healthz_reports_the_loaded_index(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["documents"] == 5 and body["chunks"] > 5
    assert body["embedder"] == "hash-256" and body["built_at"]


def test_not_ready_before_startup(tmp_path: Path) -> None:
    """Without the lifespan having run (no `with`), the app says so instead of failing."""
    app = create_app(make_settings(make_workspace(tmp_path)), embedder=HashEmbedder())
    c = TestClient(app)
    r = c.get("/healthz")
    assert r.status_code == 503 and r.json()["status"] == "not ready"
    r = c.post("/ask", json={"question": "Qui ?"})
    assert r.status_code == 503 and "not loaded" in r.json()["detail"]


@pytest.mark.parametrize("question", QUESTIONS)
@pytest.mark.parametrize("k", [1, 3, 5])
def test_ask_contract(client: TestClient, question: str, k: int) -> None:
    r = client.post("/ask", json={"question": question, "k": k})
    assert r.status_code == 200, r.text
    assert_contract(r.json(), question, k, document_text(client))


def test_ask_answers_and_filters(client: TestClient) -> None:
    """At least the Lavrov question is answered; doc_ids and dates restrict the citations."""
    text = document_text(client)
    q = QUESTIONS[0]
    r = client.post("/ask", json={"question": q})
    assert r.status_code == 200
    assert not r.json()["abstained"] and "18 octobre" in r.json()["answer"]

    only = "004_2ebee54b9c6398b9.txt"
    r = client.post("/ask", json={"question": q, "k": 5, "doc_ids": [only]})
    assert r.status_code == 200
    assert_contract(r.json(), q, 5, text)
    assert {c["doc_id"] for c in r.json()["citations"]} == {only}

    # 001 is the only dated document (2024-03): a March 2024 range keeps only it.
    r = client.post("/ask", json={"question": q, "date_from": "2024-03-01",
                                  "date_to": "2024-03-31"})
    assert r.status_code == 200
    assert {c["doc_id"] for c in r.json()["citations"]} == {"001_113f9629b7018fa7.txt"}


def test_ask_is_the_library_result(client: TestClient, workspace: Path) -> None:
    """POST /ask returns exactly answer_question(...).to_dict(), as `qa ask --json` prints."""
    from qa.answering import answer_question

    index = load_index(workspace / "index", embedder=HashEmbedder())
    for question in QUESTIONS[:3]:
        expected = answer_question(index, question, k=4).to_dict()
        r = client.post("/ask", json={"question": question, "k": 4})
        assert r.json() == json.loads(json.dumps(expected)) | {"generation": index.generation}


def test_documents_list_and_text(client: TestClient) -> None:
    r = client.get("/documents")
    assert r.status_code == 200
    docs = r.json()
    assert [d["doc_id"] for d in docs] == sorted(p.name for p in CORPUS.glob("*.txt"))
    for d in docs:
        assert set(d) == {"doc_id", "date", "title", "length", "date_source"}
        full = client.get(f"/documents/{d['doc_id']}").json()
        assert full["text"] == (CORPUS / d["doc_id"]).read_text(encoding="utf-8")
        assert full["length"] == len(full["text"]) == d["length"]
    assert {d["doc_id"]: d["date"] for d in docs}["001_113f9629b7018fa7.txt"] == "2024-03"
    assert {d["doc_id"]: d["date_source"] for d in docs}["001_113f9629b7018fa7.txt"] \
        == "text prefix"


def test_routes_doing_cpu_work_are_plain_functions(client: TestClient) -> None:
    """FastAPI runs plain `def` routes in its threadpool: embedding never blocks the loop."""
    app: Any = client.app

    def flat(routes: list[Any]) -> Iterator[Any]:  # FastAPI keeps included routers nested
        for r in routes:
            yield from flat(r.original_router.routes) if hasattr(r, "original_router") else [r]

    endpoints = {(r.path, m): r.endpoint for r in flat(app.routes)
                 for m in getattr(r, "methods", ())}
    for key in [("/ask", "POST"), ("/index", "POST"), ("/reload", "POST"), ("/documents", "GET"),
                ("/documents/{doc_id:path}", "GET")]:
        assert not inspect.iscoroutinefunction(endpoints[key]), key


def test_openapi_documents_the_contract(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/healthz", "/ask", "/documents", "/documents/{doc_id}",
                                  "/index", "/reload"}
    schemas = spec["components"]["schemas"]
    assert schemas["AskRequest"]["examples"] and schemas["AskResponse"]["examples"]
    assert schemas["AskRequest"]["additionalProperties"] is False
    ask = spec["paths"]["/ask"]["post"]
    assert {"200", "401", "413", "415", "422"} <= set(ask["responses"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    r = client.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()


# ---------------------------------------------------------------------------- bad input

LONG = "é" * 1001  # characters, not bytes, count


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),  # missing question
        ({"question": ""}, 422),
        ({"question": " \n\t "}, 422),
        ({"question": "\u2003\u00a0"}, 422),  # Unicode whitespace only
        ({"question": LONG}, 422),
        ({"question": None}, 422),
        ({"question": 42}, 422),
        ({"question": ["Qui ?"]}, 422),
        ({"question": "Qui ?", "k": 0}, 422),
        ({"question": "Qui ?", "k": 51}, 422),
        ({"question": "Qui ?", "k": -3}, 422),
        ({"question": "Qui ?", "k": "5"}, 422),
        ({"question": "Qui ?", "k": 2.5}, 422),
        ({"question": "Qui ?", "k": True}, 422),
        ({"question": "Qui ?", "k": None}, 422),
        ({"question": "Qui ?", "top_k": 3}, 422),  # unknown field
        ({"question": "Qui ?", "doc_ids": "000_25f13bc6add64f1c.txt"}, 422),
        ({"question": "Qui ?", "doc_ids": [1]}, 422),
        ({"question": "Qui ?", "doc_ids": []}, 422),
        ({"question": "Qui ?", "doc_ids": ["nope.txt"]}, 422),
        ({"question": "Qui ?", "doc_ids": ["../secret.txt"]}, 422),
        ({"question": "Qui ?", "date_from": "2024-13-01"}, 422),
        ({"question": "Qui ?", "date_from": "2024-02-30"}, 422),
        ({"question": "Qui ?", "date_from": "yesterday"}, 422),
        ({"question": "Qui ?", "date_from": "2024-03"}, 422),
        ({"question": "Qui ?", "date_from": 20240301}, 422),
        ({"question": "Qui ?", "date_to": "2024-03-01T00:00:00"}, 422),
        ({"question": "Qui ?", "date_from": "2024-05-01", "date_to": "2024-04-01"}, 422),
        ([{"question": "Qui ?"}], 422),
        ("Qui ?", 422),
        (None, 422),
    ],
)
def test_bad_body_is_refused(client: TestClient, workspace: Path, body: Any, status: int) -> None:
    before = (workspace / "index" / "CURRENT").read_text()
    r = client.post("/ask", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json()["detail"]
    assert (workspace / "index" / "CURRENT").read_text() == before
    assert client.get("/healthz").json()["status"] == "ok"


def test_question_of_exactly_the_limit_is_accepted(client: TestClient) -> None:
    r = client.post("/ask", json={"question": "Qui ? " + "é" * 994})
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("content", "content_type", "statuses"),
    [
        (b'{"question": ', "application/json", {422}),
        (b'{"question": "Qui ?",}', "application/json", {422}),
        (b"\xff\xfe\x00{", "application/json", {422}),  # not UTF-8
        (b'{"question": "\xc3("}', "application/json", {422}),  # invalid UTF-8 sequence
        (b"", "application/json", {422}),
        (b'{"question": "Qui ?"}', "text/plain", {415}),
        (b"question=Qui", "application/x-www-form-urlencoded", {415}),
        (b'{"question": "Qui ?"}', None, {415}),
        (b'{"question": "Qui ?"}', "application/problem+json", {200}),
        (b'{"question": "Qui ?"}', "application/json; charset=utf-8", {200}),
        # Python's JSON parser accepts these; the 422 must still be valid JSON, not a 500.
        (b'{"question": "x", "k": NaN}', "application/json", {422}),
        (b'{"question": "x", "k": 1e400}', "application/json", {422}),
        (b'{"question": Infinity}', "application/json", {422}),
        (b'{"question": "\\ud800 Poutine"}', "application/json", {422}),
        (b'{"question": "x", "date_from": "\\udc00"}', "application/json", {422}),
    ],
)
def test_malformed_bodies_and_content_types(
    client: TestClient, content: bytes, content_type: str | None, statuses: set[int]
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    r = client.post("/ask", content=content, headers=headers)
    assert r.status_code in statuses, r.text
    if r.status_code != 200:
        assert r.json()["detail"]


def test_oversized_bodies_get_413(client: TestClient) -> None:
    big = json.dumps({"question": "Qui ?", "doc_ids": ["x" * MAX_BODY_BYTES]}).encode()
    r = client.post("/ask", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]

    def stream() -> Iterator[bytes]:  # no Content-Length: the middleware counts
        yield b'{"question": "Qui ?", "doc_ids": ["'
        for _ in range(70):
            yield b"x" * 1024
        yield b'"]}'

    r = client.post("/ask", content=stream(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    # just under the limit is read and validated normally
    ok = json.dumps({"question": "Qui ?", "doc_ids": ["x" * (MAX_BODY_BYTES - 100)]}).encode()
    r = client.post("/ask", content=ok, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "unknown doc_id" in r.json()["detail"]
    r = client.post("/ask", content=b"{}", headers={"Content-Type": "application/json",
                                                    "Content-Length": "abc"})
    assert r.status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/documents/..%2Fsecret.txt",
        "/documents/%2e%2e/secret.txt",
        "/documents/%2e%2e%2fsecret.txt",
        "/documents/..%5Csecret.txt",
        "/documents/%2Fetc%2Fpasswd",
        "/documents//etc/passwd",
        "/documents/corpus/../secret.txt",
        "/documents/nope.txt",
        "/documents/000_25f13bc6add64f1c.txt/",
        "/documents/",
    ],
)
def test_documents_never_read_outside_the_index(
    client: TestClient, workspace: Path, path: str
) -> None:
    r = client.get(path)
    assert r.status_code == 404, r.text
    assert r.json()["detail"]
    assert SECRET not in r.text


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidQuestionError("bad"), 422),
        (DocumentNotFoundError("gone"), 404),
        (IndexNotFoundError("no index"), 503),
        (IndexMismatchError("other embedder"), 503),
        (CorpusError("empty corpus"), 400),
        (EmbedderError("no model"), 400),
        (QAError("something"), 400),
    ],
)
def test_library_errors_map_to_statuses(
    client: TestClient, error: QAError, status: int
) -> None:
    def failing() -> None:
        raise error

    app: Any = client.app
    app.dependency_overrides[qa.api.get_index] = failing
    try:
        r = client.post("/ask", json={"question": "Qui ?"})
    finally:
        app.dependency_overrides.clear()
    assert r.status_code == status
    assert r.json() == {"detail": str(error)}


# ---------------------------------------------------------------------------- auth and CORS


def test_without_a_key_everything_is_open_but_reindex(client: TestClient) -> None:
    assert client.post("/ask", json={"question": "Qui ?"}).status_code == 200
    assert client.get("/documents").status_code == 200
    r = client.post("/index")
    assert r.status_code == 403 and "QA_API_KEY" in r.json()["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {KEY}x"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": KEY},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer clé".encode("latin-1")},  # not ASCII: still just a 401
    ],
)
def test_with_a_key_every_endpoint_but_healthz_needs_it(
    keyed: tuple[TestClient, Path], headers: dict[str, Any]
) -> None:
    c, _ = keyed
    for method, path, body in [
        ("POST", "/ask", {"question": "Qui ?"}),
        ("GET", "/documents", None),
        ("GET", "/documents/000_25f13bc6add64f1c.txt", None),
        ("GET", "/documents/nope.txt", None),
        ("POST", "/index", None),
        ("GET", "/openapi.json", None),
        ("GET", "/docs", None),
    ]:
        r = c.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert "API key" in r.json()["detail"]
    assert c.get("/healthz", headers=headers).status_code == 200


def test_with_the_key_everything_works_including_reindex(keyed: tuple[TestClient, Path]) -> None:
    c, base = keyed
    assert c.post("/ask", json={"question": QUESTIONS[0]}, headers=AUTH).status_code == 200
    assert c.get("/documents", headers=AUTH).status_code == 200
    assert c.get("/openapi.json", headers=AUTH).status_code == 200

    built_at = c.get("/healthz").json()["built_at"]
    doc = base / "corpus" / "004_2ebee54b9c6398b9.txt"
    added = "\nLe comité d’essai s’est réuni à Grenoble le 3 février 2025 pour tester le service."
    doc.write_text(doc.read_text(encoding="utf-8") + added, encoding="utf-8")
    (base / "corpus" / "005_new.txt").write_text("Un document tout neuf sur Vladivostok.",
                                                 encoding="utf-8")
    r = c.post("/index", headers=AUTH)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["added"], report["changed"], report["unchanged"], report["removed"]) == (
        1, 1, 4, 0)
    assert report["documents"] == 6 and report["embedded_chunks"] >= 2
    # the new index is live
    health = c.get("/healthz").json()
    assert health["documents"] == 6 and health["built_at"] >= built_at
    text = c.get(f"/documents/{doc.name}", headers=AUTH).json()["text"]
    assert text.endswith(added)
    r = c.post("/ask", json={"question": "Où le comité d’essai s’est-il réuni ?"}, headers=AUTH)
    assert r.status_code == 200
    assert_contract(r.json(), "Où le comité d’essai s’est-il réuni ?", 5, document_text(c, AUTH))
    assert "Grenoble" in (r.json()["answer"] or "")
    # Nothing changed since: no new generation, the same index keeps serving.
    live = c.get("/healthz").json()
    again = c.post("/index", headers=AUTH).json()
    assert again["up_to_date"] is True and again["embedded_chunks"] == 0
    assert again["generation"] == report["generation"] == live["generation"]
    assert c.get("/healthz").json()["generation"] == live["generation"]
    # The response is the library's BuildReport, field for field, without its server path.
    fields = {f.name for f in dataclasses.fields(qa.index.BuildReport)} - {"path"}
    assert set(report) == set(IndexReportOut.model_fields) == fields


def test_one_reindex_at_a_time(keyed: tuple[TestClient, Path],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A second POST /index while one runs gets 409; asks keep working meanwhile."""
    c, _ = keyed
    started, release = threading.Event(), threading.Event()
    real_build = qa.index.build_index

    def slow_build(*args: Any, **kwargs: Any) -> Any:
        started.set()
        assert release.wait(30)
        return real_build(*args, **kwargs)

    monkeypatch.setattr("qa.api.deps.build_index", slow_build)
    first: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: first.update(r=c.post("/index", headers=AUTH)))
    thread.start()
    try:
        assert started.wait(30)
        r = c.post("/index", headers=AUTH)
        assert r.status_code == 409 and "already running" in r.json()["detail"]
        assert c.post("/ask", json={"question": "Qui ?"}, headers=AUTH).status_code == 200
    finally:
        release.set()
        thread.join(60)
    assert first["r"].status_code == 200
    assert c.post("/index", headers=AUTH).status_code == 200


def test_cors_closed_by_default_and_configurable(client: TestClient, tmp_path: Path) -> None:
    origin = {"Origin": "https://example.org"}
    r = client.get("/documents", headers=origin)
    assert "access-control-allow-origin" not in r.headers

    app = create_app(make_settings(make_workspace(tmp_path), cors_origins=["https://example.org"]),
                     embedder=HashEmbedder())
    with TestClient(app) as c:
        r = c.get("/documents", headers=origin)
        assert r.headers["access-control-allow-origin"] == "https://example.org"
        r = c.options("/ask", headers=origin | {"Access-Control-Request-Method": "POST",
                                                 "Access-Control-Request-Headers": "authorization"})
        assert r.status_code == 200
        r = c.get("/documents", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_cors_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]


# ---------------------------------------------------------------------------- real model


@pytest.mark.slow
def test_real_default_model_answers_across_languages(tmp_path: Path) -> None:
    """The default use-m3 model (settings.embedder, not a test double) built at start-up:
    an English question finds the French sentence that answers it."""
    docs = ["000_25f13bc6add64f1c.txt", "004_2ebee54b9c6398b9.txt"]  # small: a fast build
    base = make_workspace(tmp_path, docs)
    with TestClient(create_app(make_settings(base, embedder=DEFAULT_EMBEDDER))) as c:
        assert c.get("/healthz").json()["embedder"] == "use-m3"
        question = "When did Lavrov visit North Korea?"
        r = c.post("/ask", json={"question": question, "k": 2})
        assert r.status_code == 200
        result = r.json()
        assert_contract(result, question, 2, document_text(c))
        assert not result["abstained"]
        assert result["answer_span"]["doc_id"] == "000_25f13bc6add64f1c.txt"
        assert "18 octobre" in result["answer"]


# ---------------------------------------------------------------------------- schemathesis


class _AppInTmp:
    """An ASGI app that forwards to one a fixture creates: schemathesis binds the app when it
    collects the tests, before any fixture (and so any tmp_path) exists. (The lazy loader,
    schemathesis.pytest.from_fixture, fails on pytest 9.)"""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "use the schema_app fixture"
        await self.app(scope, receive, send)


_app_in_tmp = _AppInTmp()
# The schema is the app's own OpenAPI document; generating it needs no index, so no I/O here.
schema = schemathesis.openapi.from_dict(
    create_app(make_settings(Path("unused")), embedder=HashEmbedder()).openapi()
)
schema.app = _app_in_tmp
schema.config.update(base_url="http://testserver")
# A schema-valid body can still be refused with 422 for what JSON Schema cannot say: a doc_id
# that is not in the index, date_from after date_to, a day such as 2024-02-30; and 410 for a
# ?generation= the server does not keep.
schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
    expected_statuses=["2xx", "404", "409", "410", "422"]
)
# Unknown query parameters are ignored, as everywhere in HTTP: a request with one and an
# unknown ?generation= is refused by the 410.
schema.config.checks.negative_data_rejection = NegativeDataRejectionConfig(
    expected_statuses=["400", "401", "403", "404", "405", "406", "409", "410", "415", "422",
                       "428", "429", "5xx"]
)


@pytest.fixture(scope="module")
def schema_app(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The app under test: a key set (so POST /index runs), its corpus and index in tmp."""
    if _app_in_tmp.app is None:  # schemathesis keeps an app's lifespan up for the whole run
        base = make_workspace(tmp_path_factory.mktemp("schemathesis"))
        _app_in_tmp.app = create_app(make_settings(base, api_key=KEY), embedder=HashEmbedder())


@schema.parametrize()
@settings(max_examples=50, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_openapi_conformance(case: Any, schema_app: None) -> None:
    """Generated requests never get a 500, every response matches the documented schema, and
    the key is not optional (schemathesis also replays each request without it)."""
    case.call_and_validate(headers=AUTH)
