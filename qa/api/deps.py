"""The app's state (the live index and the one before it) and the dependencies routes take,
as `Annotated` aliases (full-stack-fastapi-template's deps.py)."""

from __future__ import annotations

import hmac
import threading
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from qa.config import Settings
from qa.embedding import Embedder
from qa.errors import (
    DocumentNotFoundError,
    IndexBusyError,
    IndexMismatchError,
    IndexNotFoundError,
    InvalidQuestionError,
    QAError,
)
from qa.index import BuildReport, Index, build_index, live_generation, load_index

# One place where library errors become HTTP statuses; the first match wins.
_ERROR_STATUS: list[tuple[type[QAError], int]] = [
    (InvalidQuestionError, 422),
    (DocumentNotFoundError, 404),
    (IndexNotFoundError, 503),
    (IndexMismatchError, 503),
    (IndexBusyError, 409),
]


def status_for(exc: QAError) -> int:
    """The HTTP status for a library error (400 for any QAError not listed)."""
    for cls, status in _ERROR_STATUS:
        if isinstance(exc, cls):
            return status
    return 400


class ReloadError(IndexMismatchError):
    """A new commit could not be opened; the served index is unchanged."""


class ReindexRunningError(Exception):
    """A POST /index arrived while another one was running."""


class IndexHolder:
    """The live Index and the one it replaced. A request takes a reference when it starts
    and keeps it to the end, so a re-index swaps the new Index in without disturbing
    requests in flight; the previous one stays loaded so that a client can check citations
    of an answer it got just before the swap (GET /documents/{id}?generation=...)."""

    def __init__(self) -> None:
        self._index: Index | None = None
        self._previous: Index | None = None
        self._swap = threading.Lock()
        self._reindexing = threading.Lock()
        self._reloading = threading.Lock()
        # Why the last attempt to open a new commit failed (None: it did not, or a later
        # one succeeded); /healthz reports it.
        self.last_reload_error: str | None = None

    @property
    def index(self) -> Index | None:
        with self._swap:
            return self._index

    def get(self, generation: str) -> Index | None:
        """The live or the previous Index if it is that generation, else None."""
        with self._swap:
            for index in (self._index, self._previous):
                if index is not None and index.generation == generation:
                    return index
        return None

    def kept_generations(self) -> list[str]:
        with self._swap:
            return [i.generation for i in (self._index, self._previous) if i is not None]

    def set(self, index: Index) -> None:
        with self._swap:
            if self._index is not None and self._index.generation != index.generation:
                self._previous = self._index
            self._index = index

    def reload(self, settings: Settings, embedder: Embedder) -> bool:
        """Open the live snapshot if CURRENT names another one than the served Index (a
        commit by another process: `qa index`, another replica) and swap it in; True when
        it did. Requests in flight finish on the old Index, as with a re-index.

        Whatever goes wrong (a damaged CURRENT, a snapshot that does not parse or validate,
        a FIFO, a segment outside the folder) raises ReloadError with the reason, recorded
        in `last_reload_error`; the served Index is kept."""
        with self._reloading:
            try:
                live = self.index
                current = live_generation(settings.index, strict=True)
                if current is None or (live is not None and live.generation == current):
                    self.last_reload_error = None
                    return False
                self.set(load_index(settings.index, embedder=embedder))
            except Exception as exc:  # no error may kill a watcher
                reason = str(exc) if isinstance(exc, QAError) else \
                    f"unexpected {exc.__class__.__name__}: {str(exc)[:300]}"
                self.last_reload_error = reason
                raise ReloadError(reason) from exc
            self.last_reload_error = None
            return True

    def reindex(self, settings: Settings, embedder: Embedder) -> BuildReport:
        """Build (incrementally), load, swap. One at a time: a second caller gets an error
        rather than a queue, so clients never pile up behind a long build."""
        if not self._reindexing.acquire(blocking=False):
            raise ReindexRunningError
        try:
            report = build_index(
                settings.corpus, settings.index, embedder=embedder,
                chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap,
                wait=0,  # another process writing the index: 409 now, not a queue
                parse_limits=settings.parse_limits(),
            )
            live = self.index
            if not (report.up_to_date and live is not None
                    and live.generation == report.generation):
                self.set(load_index(settings.index, embedder=embedder))
            self.last_reload_error = None  # the latest commit (this build's) is served
            return report
        finally:
            self._reindexing.release()


_bearer = HTTPBearer(auto_error=False, description="The server's QA_API_KEY, when it sets one.")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_holder(request: Request) -> IndexHolder:
    holder: IndexHolder = request.app.state.holder
    return holder


def key_is_valid(settings: Settings, authorization: str | None) -> bool:
    """Whether a request may pass: no key configured, or `Bearer <the key>`."""
    if not settings.api_key:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        given = ""
    return hmac.compare_digest(given.strip().encode(), settings.api_key.encode())


UNAUTHORIZED = "missing or wrong API key: send 'Authorization: Bearer <key>'"


def unauthorized() -> HTTPException:
    return HTTPException(status_code=401, detail=UNAUTHORIZED,
                         headers={"WWW-Authenticate": "Bearer"})


async def require_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """With an API key configured, demand `Authorization: Bearer <key>`."""
    key = get_settings(request).api_key
    if not key:
        return
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), key.encode()):
        raise unauthorized()


async def get_index(request: Request) -> Index:
    """The live index, taken once at the start of the request."""
    index = get_holder(request).index
    if index is None:
        raise HTTPException(status_code=503, detail="the index is not loaded yet")
    return index


async def require_json(request: Request) -> None:
    """415 unless the body is declared as JSON (application/json or application/*+json)."""
    mime = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if mime != "application/json" and not (
        mime.startswith("application/") and mime.endswith("+json")
    ):
        raise HTTPException(
            status_code=415,
            detail="send the question as JSON with 'Content-Type: application/json'",
        )


IndexDep = Annotated[Index, Depends(get_index)]
HolderDep = Annotated[IndexHolder, Depends(get_holder)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
# Route-level guards (dependencies=[...]).
KEY = Depends(require_key)
JSON_BODY = Depends(require_json)
