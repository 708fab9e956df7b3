"""Answer sources: the library over a loaded index, or a running service over HTTP."""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from qa.answering import answer_question
from qa.errors import QAError
from qa.evaluation.metrics import AnswerFn

if TYPE_CHECKING:
    from qa.index import Index
    from qa.retrieval import Mode


def library_answer_fn(index: Index, *, mode: Mode = "hybrid") -> AnswerFn:
    """An answer function over a loaded index (what `qa ask --json` prints)."""

    def answer(question: str, k: int) -> dict[str, Any]:
        return answer_question(index, question, k=k, mode=mode).to_dict()

    return answer


def index_documents(index: Index) -> dict[str, str]:
    """doc_id -> exact text of an index's documents, for `locate_evidence`."""
    return {doc_id: index.doc(doc_id).text for doc_id in index.doc_ids()}


# Bounds on what a service may send back: a document is at most 5M characters (up to
# ~30 MB as JSON with escapes); answers are small. JSON nested deeper than MAX_JSON_DEPTH is
# refused before it is parsed (json.loads raises RecursionError at ~1,000 levels).
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
MAX_JSON_DEPTH = 64
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(rb"[\[\]{}]")


def json_depth(data: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (strings skipped)."""
    depth = deepest = 0
    for m in _BRACKETS.finditer(_STRINGS.sub(b'""', data)):
        if m.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class ServiceClient:
    """A running `qa` service as an answer function (POST /ask) and a document source.

    Every request has a total deadline (`timeout` seconds from its start to the last byte,
    not per read: a server dripping a byte a second cannot hold it), a response-size cap
    and a JSON depth limit."""

    def __init__(
        self, url: str, *, api_key: str | None = None, timeout: float = 120.0,
        transport: Any = None, max_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.timeout = timeout
        self.max_bytes = max_bytes
        # identity: the bytes counted against the cap are the bytes parsed (no gzip bomb).
        headers = {"Accept-Encoding": "identity"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._new_client = functools.partial(httpx.Client, base_url=self.url, headers=headers,
                                             timeout=timeout, transport=transport)
        self._client = self._new_client()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """_request_now under the total deadline. httpx's timeouts are per read, and the
        deadline checks between body pieces come too late for a server that drips its
        headers: the request runs in a thread, abandoned (its connection closed) at the
        deadline."""
        outcome: list[tuple[bool, Any]] = []

        def run() -> None:
            try:
                outcome.append((True, self._request_now(method, path, **kwargs)))
            except BaseException as exc:  # handed to the caller below
                outcome.append((False, exc))

        worker = threading.Thread(target=run, name="qa-eval-request", daemon=True)
        worker.start()
        worker.join(self.timeout + 1.0)
        if worker.is_alive() or not outcome:
            stuck, self._client = self._client, self._new_client()
            stuck.close()  # its socket closed: the thread's next read fails and it ends
            raise QAError(f"{method} {self.url}{path} took more than {self.timeout:g} s; "
                          "gave up")
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def _request_now(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        where = f"{method} {self.url}{path}"
        deadline = time.monotonic() + self.timeout
        try:
            with self._client.stream(method, path, **kwargs) as response:
                status = response.status_code
                encoding = response.headers.get("content-encoding", "").strip().lower()
                if encoding not in ("", "identity"):
                    raise QAError(f"{where} answered with {encoding!r} encoding, which qa "
                                  "eval does not inflate (it asks for identity)")
                body = bytearray()
                for piece in response.iter_bytes():  # as it arrives: no 64 KB buffering
                    body += piece
                    if len(body) > self.max_bytes:
                        raise QAError(f"{where} sent more than {self.max_bytes:,} bytes; "
                                      "stopped reading")
                    if time.monotonic() > deadline:
                        raise QAError(f"{where} took more than {self.timeout:g} s; gave up")
        except httpx.HTTPError as exc:
            raise QAError(f"cannot reach the service at {self.url}: {exc}") from exc
        if status in (401, 403):
            raise QAError(f"the service at {self.url} refused {method} {path} "
                          f"(HTTP {status}); set QA_API_KEY to its API key")
        if status >= 400:
            try:
                data = self._json(bytes(body), where)
                detail = data.get("detail", data) if isinstance(data, dict) else data
            except QAError:
                detail = bytes(body[:300]).decode("utf-8", "replace")
            raise QAError(f"{where} failed (HTTP {status}): {str(detail)[:300]}")
        return self._json(bytes(body), where)

    @staticmethod
    def _json(body: bytes, where: str) -> Any:
        if json_depth(body) > MAX_JSON_DEPTH:
            raise QAError(f"{where} returned JSON nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise QAError(f"{where} did not return JSON") from None

    def documents(self) -> dict[str, str]:
        """doc_id -> exact text, from GET /documents and GET /documents/{doc_id}."""
        listing = self._request("GET", "/documents")
        if isinstance(listing, dict):  # tolerate a wrapped or paginated listing
            listing = listing.get("documents", listing.get("items"))
        if not isinstance(listing, list):
            raise QAError(f"GET {self.url}/documents did not return a list of documents")
        texts = {}
        for item in listing:
            doc_id = item.get("doc_id") if isinstance(item, dict) else None
            if not isinstance(doc_id, str):
                raise QAError(f"GET {self.url}/documents returned an item without a doc_id")
            doc = self._request("GET", f"/documents/{quote(doc_id, safe='/')}")
            if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
                raise QAError(f"GET {self.url}/documents/{doc_id} returned no 'text'")
            texts[doc_id] = doc["text"]
        return texts

    def answer(self, question: str, k: int) -> dict[str, Any]:
        """POST /ask; the response is `Answer.to_dict()`."""
        result: dict[str, Any] = self._request("POST", "/ask", json={"question": question, "k": k})
        return result
