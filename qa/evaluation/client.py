"""Answer sources: the library over a loaded index, or a running service over HTTP."""

from __future__ import annotations

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


class ServiceClient:
    """A running `qa` service as an answer function (POST /ask) and a document source."""

    def __init__(
        self, url: str, *, api_key: str | None = None, timeout: float = 120.0,
        transport: Any = None,
    ) -> None:
        import httpx

        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                                    transport=transport)

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise QAError(f"cannot reach the service at {self.url}: {exc}") from exc
        if response.status_code in (401, 403):
            raise QAError(f"the service at {self.url} refused {method} {path} "
                          f"(HTTP {response.status_code}); set QA_API_KEY to its API key")
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except (ValueError, AttributeError):
                detail = response.text
            raise QAError(f"{method} {self.url}{path} failed (HTTP {response.status_code}): "
                          f"{str(detail)[:300]}")
        try:
            return response.json()
        except ValueError as exc:
            raise QAError(f"{method} {self.url}{path} did not return JSON") from exc

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
