"""Server items of issue 8 in-process (TestClient, fast fake embedder): the generation of an
answer and reading a citation from it after a swap (410 once it is gone), HEAD /healthz,
/docs without a CDN, 401 before 422, unparseable JSON is 422 (not 400), invisible questions,
no server paths in POST /index answers, a read-only index folder, and the page's security
headers."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_api import AUTH, KEY, QUESTIONS, make_settings, make_workspace

from qa.api import create_app
from qa.embedding import HashEmbedder

DOC = "004_2ebee54b9c6398b9.txt"


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    base = make_workspace(tmp_path)
    app = create_app(make_settings(base, api_key=KEY), embedder=HashEmbedder())
    with TestClient(app) as c:
        yield c, base


@pytest.fixture(scope="module")
def open_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    base = make_workspace(tmp_path_factory.mktemp("open"))
    with TestClient(create_app(make_settings(base), embedder=HashEmbedder())) as c:
        yield c


def test_citations_stay_checkable_across_swaps(keyed: tuple[TestClient, Path]) -> None:
    """An answer names its generation; after one re-index its citations are still read from
    that generation (the text changed meanwhile); after two, that generation is 410 Gone."""
    c, base = keyed
    first = c.post("/ask", json={"question": QUESTIONS[0]}, headers=AUTH).json()
    g1 = first["generation"]
    assert g1 == c.get("/healthz").json()["generation"]
    path = base / "corpus" / DOC
    before = path.read_text(encoding="utf-8")
    path.write_text("Un préambule ajouté qui décale tous les offsets.\n" + before, "utf-8")
    r = c.post("/index", headers=AUTH)
    assert r.status_code == 200, r.text
    g2 = r.json()["generation"]
    assert g2 != g1 and c.get("/healthz").json()["generation"] == g2

    live = c.get(f"/documents/{DOC}", headers=AUTH).json()
    old = c.get(f"/documents/{DOC}", params={"generation": g1}, headers=AUTH).json()
    assert live["generation"] == g2 and live["text"] != before
    assert old["generation"] == g1 and old["text"] == before
    for cit in first["citations"]:
        text = c.get(f"/documents/{cit['doc_id']}", params={"generation": g1},
                     headers=AUTH).json()["text"]
        assert text[cit["start"]:cit["end"]] == cit["text"]
    assert c.get(f"/documents/{DOC}", params={"generation": g2},
                 headers=AUTH).json()["text"] == live["text"]

    path.write_text(before + "\nEncore une modification.", "utf-8")
    assert c.post("/index", headers=AUTH).status_code == 200
    r = c.get(f"/documents/{DOC}", params={"generation": g1}, headers=AUTH)
    assert r.status_code == 410
    assert g1 in r.json()["detail"] and "no longer available" in r.json()["detail"]
    assert c.get(f"/documents/{DOC}", params={"generation": g2},
                 headers=AUTH).status_code == 200
    # the key still comes first
    assert c.get(f"/documents/{DOC}", params={"generation": g1}).status_code == 401


def test_head_healthz(open_client: TestClient) -> None:
    r = open_client.head("/healthz")
    assert r.status_code == 200 and r.content == b""


def test_docs_load_nothing_from_another_origin(open_client: TestClient) -> None:
    page = open_client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text) + re.findall(
        r"url: ?['\"]([^'\"]+)", page.text)
    assert urls and all(u.startswith("/") for u in urls), urls
    assert "cdn" not in page.text.lower()
    for url in urls:
        r = open_client.get(url)
        assert r.status_code == 200, url
        assert len(r.content) > 100
    js = open_client.get("/docs/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in js.text
    assert open_client.get("/docs/assets/../../deps.py").status_code == 404


@pytest.mark.parametrize("body", [b'{"question": ', b"{,}", b"\xff\xfe", b'{"k": "x"}'])
def test_without_the_key_bad_json_is_401_not_422(
    keyed: tuple[TestClient, Path], body: bytes
) -> None:
    """Nothing about how the body parses is told to a caller without the key."""
    c, _ = keyed
    headers = {"Content-Type": "application/json"}
    r = c.post("/ask", content=body, headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "API key" in r.json()["detail"]
    wrong = headers | {"Authorization": "Bearer nope"}
    assert c.post("/ask", content=body, headers=wrong).status_code == 401
    assert c.post("/ask", content=body, headers=headers | AUTH).status_code == 422


# Bodies Python's JSON parser refuses with something other than JSONDecodeError: FastAPI
# answered those 400 "There was an error parsing the body" (and before the key check), where
# every other malformed body is 422.
UNPARSEABLE = [
    (b'{"question": "caf\xe9 ?"}', "not valid UTF-8"),  # Latin-1, not UTF-8
    (b'{"question": "x", "k": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deeply"),
    (b'{"question": "x", "k": ' + b"9" * 5000 + b"}", "more than 4300 digits"),
]


@pytest.mark.parametrize(("body", "reason"), UNPARSEABLE)
def test_unparseable_json_is_422_like_any_malformed_json(
    open_client: TestClient, body: bytes, reason: str
) -> None:
    r = open_client.post("/ask", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["type"] == "json_invalid" and error["loc"] == ["body"]
    assert reason in error["ctx"]["error"]


@pytest.mark.parametrize(("body", "reason"), UNPARSEABLE)
def test_without_the_key_unparseable_json_is_401(
    keyed: tuple[TestClient, Path], body: bytes, reason: str
) -> None:
    c, _ = keyed
    headers = {"Content-Type": "application/json"}
    assert c.post("/ask", content=body, headers=headers).status_code == 401
    assert c.post("/ask", content=body, headers=headers | AUTH).status_code == 422


@pytest.mark.parametrize("question", ["\ufeff", "\u200b", "\u200b\u200d \ufeff\u2060", " \u00ad "])
def test_invisible_questions_are_422(open_client: TestClient, question: str) -> None:
    r = open_client.post("/ask", json={"question": question})
    assert r.status_code == 422, r.text
    assert "empty" in str(r.json()["detail"])


def test_reindex_answers_name_no_server_path(keyed: tuple[TestClient, Path]) -> None:
    c, base = keyed
    (base / "corpus" / "bad.txt").write_bytes(b"\xff\xfe\x00 not text")
    r = c.post("/index", headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["skipped"] and "path" not in r.json()
    assert str(base) not in r.text and str(base.resolve()) not in r.text
    for name in os.listdir(base / "corpus"):
        (base / "corpus" / name).unlink()
    r = c.post("/index", headers=AUTH)  # an empty corpus: CorpusError, 400
    assert r.status_code == 400, r.text
    assert "the corpus folder" in r.json()["detail"]
    assert str(base) not in r.text and str(base.resolve()) not in r.text


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make a folder truly unwritable: chmod for a user; for root, who ignores modes, the
    immutable attribute (chattr +i). Skips when neither holds on this file system."""
    mode = folder.stat().st_mode
    as_root = os.geteuid() == 0
    if as_root:
        if not shutil.which("chattr") or subprocess.run(
                ["chattr", "+i", str(folder)], capture_output=True).returncode:
            pytest.skip("cannot make a folder read-only for root here")
    else:
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        probe = folder / ".probe"
        try:
            probe.mkdir()
        except OSError:
            pass
        else:
            probe.rmdir()
            pytest.skip("the folder is still writable")
        yield
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        else:
            folder.chmod(mode)


def test_reindex_on_a_read_only_index_folder_is_a_clear_error(
    keyed: tuple[TestClient, Path],
) -> None:
    c, base = keyed
    before = c.get("/healthz").json()["generation"]
    (base / "corpus" / DOC).write_text("Un texte changé.", encoding="utf-8")
    with read_only(base / "index"):
        r = c.post("/index", headers=AUTH)
    assert r.status_code == 503, r.text
    assert "not writable" in r.json()["detail"] and "unchanged" in r.json()["detail"]
    assert str(base) not in r.text
    assert c.get("/healthz").json()["generation"] == before
    assert c.post("/ask", json={"question": QUESTIONS[0]}, headers=AUTH).status_code == 200
    assert c.post("/index", headers=AUTH).status_code == 200  # writable again: it works


def test_reindex_write_errors_are_clear(keyed: tuple[TestClient, Path],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same mapping, for a read-only file system and a full disk (as root can be)."""
    import errno

    c, base = keyed

    def failing(code: int) -> object:
        def build(*args: object, **kwargs: object) -> None:
            raise OSError(code, os.strerror(code), str(base / "index" / ".tmp-g-x"))
        return build

    for code, status, words in [(errno.EROFS, 503, "read-only"), (errno.ENOSPC, 507, "space"),
                                (errno.EACCES, 503, "not writable"), (errno.EIO, 500, "written")]:
        monkeypatch.setattr("qa.api.deps.build_index", failing(code))
        r = c.post("/index", headers=AUTH)
        assert r.status_code == status, r.text
        assert words in r.json()["detail"] and str(base) not in r.text


def test_the_page_and_its_security_headers(open_client: TestClient) -> None:
    r = open_client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    html = r.text
    assert "<script>" not in html and " style=" not in html and "<style" not in html
    assert not re.search(r"\son\w+=", html), "no inline event handlers"
    assert not re.search(r"(?:src|href)=[\"']https?:", html), "nothing from another origin"
    for name in ["app.js", "app.css"]:
        asset = open_client.get(f"/static/{name}")
        assert asset.status_code == 200 and asset.text.strip()
        assert "http://" not in asset.text and "https://" not in asset.text
    for bad in ["/static/../deps.py", "/static/x.py", "/static/%2e%2e%2fapp.py"]:
        assert open_client.get(bad).status_code == 404, bad


def test_the_page_is_public_and_the_data_is_not(keyed: tuple[TestClient, Path]) -> None:
    c, _ = keyed
    assert c.get("/").status_code == 200
    assert c.get("/static/app.js").status_code == 200
    assert c.get("/documents").status_code == 401
