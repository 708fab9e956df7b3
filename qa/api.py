"""FastAPI app: a thin HTTP shell over the library (`qa serve` runs it with uvicorn).

    POST /ask              question -> the same result object as `qa ask --json`
    GET  /documents        the indexed documents (id, date, title, length)
    GET  /documents/{id}   one document's exact text, to check a citation's offsets
    POST /index            re-index the corpus and swap the new index in (needs QA_API_KEY)
    GET  /healthz          readiness, never behind the API key
"""

from __future__ import annotations

import hmac
import logging
import math
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.answering import MAX_K, MAX_QUESTION_CHARS, answer_question
from qa.config import Settings
from qa.embedding import Embedder, make_embedder
from qa.errors import (
    DocumentNotFoundError,
    IndexMismatchError,
    IndexNotFoundError,
    InvalidQuestionError,
    QAError,
)
from qa.index import BuildReport, Index, build_index, load_index, open_index

logger = logging.getLogger(__name__)

# A question is at most 1,000 characters; 64 KiB leaves room for a long doc_ids list while
# keeping a request's cost bounded before any parsing happens.
MAX_BODY_BYTES = 64 * 1024

# One place where library errors become HTTP statuses; the first match wins.
_ERROR_STATUS: list[tuple[type[QAError], int]] = [
    (InvalidQuestionError, 422),
    (DocumentNotFoundError, 404),
    (IndexNotFoundError, 503),
    (IndexMismatchError, 503),
]


def _safe(value: Any) -> Any:
    """A JSON-safe copy: non-finite floats and unencodable strings become their repr."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {str(_safe(k)): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def _safe_errors(errors: Any) -> Any:
    return _safe(jsonable_encoder(errors, custom_encoder={float: lambda f: _safe(f)}))


def status_for(exc: QAError) -> int:
    """The HTTP status for a library error (400 for any QAError not listed)."""
    for cls, status in _ERROR_STATUS:
        if isinstance(exc, cls):
            return status
    return 400


# ---------------------------------------------------------------------------- HTTP models

_EXAMPLE_CITATION_TEXT = (
    "• Les ministres des affaires étrangères du G7 réunis à Tokyo en début de semaine ont "
    "« fermement condamné » le programme de missiles balistiques de la Corée du Nord. [...] "
    "Le ministère des affaires étrangères russe Sergueï Lavrov s’est rendu en visite en "
    "Corée du Nord le 18 octobre dernier."
)


class AskRequest(BaseModel):
    """A question and optional filters."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"question": "When did Lavrov visit North Korea?", "k": 3},
                {
                    "question": "Quand Kim Jong-un a-t-il rencontré le ministre russe ?",
                    "k": 5,
                    "doc_ids": ["004_2ebee54b9c6398b9.txt"],
                    "date_from": "2024-01-01",
                    "date_to": "2024-12-31",
                },
            ]
        },
    )

    question: str = Field(
        min_length=1, max_length=MAX_QUESTION_CHARS, strict=True,
        # In the schema only: the validator below says "empty" more clearly than a pattern.
        json_schema_extra={"pattern": r"\S"},
        description=f"The question, in English or French (1 to {MAX_QUESTION_CHARS} characters, "
        "not only whitespace).",
    )
    k: int = Field(
        default=5, ge=1, le=MAX_K, strict=True, description="Number of passages to cite."
    )
    doc_ids: list[Annotated[str, Field(strict=True)]] | None = Field(
        default=None, min_length=1,
        description="Only search these documents (ids as listed by GET /documents).",
    )
    date_from: str | None = Field(
        default=None, pattern=r"^\d{4}-\d{2}-\d{2}$", strict=True,
        description="Only documents dated on or after this day (YYYY-MM-DD).",
    )
    date_to: str | None = Field(
        default=None, pattern=r"^\d{4}-\d{2}-\d{2}$", strict=True,
        description="Only documents dated on or before this day (YYYY-MM-DD).",
    )

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():  # Python's idea of whitespace, as in the library
            raise ValueError("the question is empty (only whitespace)")
        return value


class AnswerSpanOut(BaseModel):
    doc_id: str
    start: int = Field(description="Offset of the answer's first character in the document.")
    end: int = Field(description="Offset just past the answer's last character.")


class ShortAnswerOut(BaseModel):
    text: str = Field(description="Exactly the document's text[start:end].")
    doc_id: str
    start: int
    end: int
    kind: Literal["date", "quantity", "person", "place", "organisation", "other"]
    value: str | int | float | None = Field(
        description="Normalised: ISO YYYY, YYYY-MM or YYYY-MM-DD for dates (null when a "
        "relative date cannot be resolved), a number for quantities, else the text.")


class CitationOut(BaseModel):
    rank: int
    doc_id: str
    start: int
    end: int
    text: str = Field(description="Exactly the document's text[start:end].")
    score: float


class AskResponse(BaseModel):
    """The result object of `qa ask --json`: an answer span and its citations, or abstention."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "question": "When did Lavrov visit North Korea?",
                    "answer": "Le ministère des affaires étrangères russe Sergueï Lavrov s’est "
                    "rendu en visite en Corée du Nord le 18 octobre dernier.",
                    "abstained": False,
                    "answer_span": {"doc_id": "000_25f13bc6add64f1c.txt", "start": 577,
                                    "end": 696},
                    "citations": [
                        {"rank": 1, "doc_id": "000_25f13bc6add64f1c.txt", "start": 222,
                         "end": 696, "text": _EXAMPLE_CITATION_TEXT, "score": 0.743},
                    ],
                    "confidence": 0.743,
                }
            ]
        }
    )

    question: str
    answer: str | None = Field(description="The answer sentence, or null when abstaining.")
    abstained: bool
    answer_span: AnswerSpanOut | None
    citations: list[CitationOut]
    confidence: float
    short_answer: ShortAnswerOut | None = Field(
        default=None, description="The phrase that answers, inside the answer; null when "
        "none can be isolated.")
    note: str | None = Field(default=None, description="Why qa abstained, when it did.")


class DocumentInfo(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"doc_id": "001_113f9629b7018fa7.txt", "date": "2024-03",
                          "title": "Les liens entre la Corée du Nord et la Russie ...",
                          "length": 3455}]
        }
    )

    doc_id: str
    date: str | None = Field(description="YYYY-MM or YYYY-MM-DD, when the document has one.")
    title: str
    length: int = Field(description="Length of the text in characters (offsets index it).")


class DocumentOut(DocumentInfo):
    text: str = Field(description="The document's exact text; citation offsets index it.")


class HealthOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "ok", "documents": 5, "chunks": 62, "embedder": "use-m3",
                          "built_at": "2024-11-21T14:49:41+00:00"}]
        }
    )

    status: Literal["ok", "not ready"]
    documents: int | None
    chunks: int | None
    embedder: str | None
    built_at: str | None


class SkippedOut(BaseModel):
    path: str
    reason: str


class IndexReportOut(BaseModel):
    """What a re-index did (the library's BuildReport)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"documents": 5, "chunks": 62, "added": 0, "changed": 1,
                          "unchanged": 4, "removed": 0, "embedded_chunks": 5, "skipped": [],
                          "seconds": 1.9, "path": "index"}]
        }
    )

    documents: int
    chunks: int
    added: int
    changed: int
    unchanged: int
    removed: int
    embedded_chunks: int
    skipped: list[SkippedOut]
    seconds: float
    path: str


class ErrorOut(BaseModel):
    detail: str | list[dict[str, Any]] = Field(
        description="A message, or FastAPI's list of validation errors."
    )


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "The request was not acceptable.",
        401: "Missing or wrong API key (when QA_API_KEY is set).",
        403: "Re-indexing over HTTP is disabled (no QA_API_KEY configured).",
        404: "No such document.",
        409: "A re-index is already running.",
        413: f"Request body larger than {MAX_BODY_BYTES} bytes.",
        415: "The body must be JSON (Content-Type: application/json).",
        422: "Invalid question, options or JSON.",
        503: "The index is not loaded (yet), or does not match this server.",
    }
    return {code: {"model": ErrorOut, "description": text[code]} for code in codes}


# ---------------------------------------------------------------------------- state


class ReindexRunningError(Exception):
    """A POST /index arrived while another one was running."""


class IndexHolder:
    """The live Index. A request takes a reference when it starts and keeps it to the end,
    so a re-index swaps the new Index in without disturbing requests in flight."""

    def __init__(self) -> None:
        self._index: Index | None = None
        self._swap = threading.Lock()
        self._reindexing = threading.Lock()

    @property
    def index(self) -> Index | None:
        with self._swap:
            return self._index

    def set(self, index: Index) -> None:
        with self._swap:
            self._index = index

    def reindex(self, settings: Settings, embedder: Embedder) -> BuildReport:
        """Build (incrementally), load, swap. One at a time: a second caller gets an error
        rather than a queue, so clients never pile up behind a long build."""
        if not self._reindexing.acquire(blocking=False):
            raise ReindexRunningError
        try:
            report = build_index(
                settings.corpus, settings.index, embedder=embedder,
                chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap,
            )
            self.set(load_index(settings.index, embedder=embedder))
            return report
        finally:
            self._reindexing.release()


# ---------------------------------------------------------------------------- middleware


class BodyLimitMiddleware:
    """Answer 413 to a body over max_bytes: at once when Content-Length says so, else while
    counting what arrives (a chunked body has no Content-Length). Bodies are small, so the
    accepted ones are buffered and handed to the app whole."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                await self._reply(scope, receive, send, 400, "invalid Content-Length header")
                return
            if int(length) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body is larger than {self.max_bytes} bytes"
        await self._reply(scope, receive, send, 413, detail)

    @staticmethod
    async def _reply(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
        await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)


# ---------------------------------------------------------------------------- dependencies

_bearer = HTTPBearer(auto_error=False, description="The server's QA_API_KEY, when it sets one.")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


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
        raise HTTPException(
            status_code=401,
            detail="missing or wrong API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def get_index(request: Request) -> Index:
    """The live index, taken once at the start of the request."""
    index = request.app.state.holder.index
    if index is None:
        raise HTTPException(status_code=503, detail="the index is not loaded yet")
    result: Index = index
    return result


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
SettingsDep = Annotated[Settings, Depends(get_settings)]


# ---------------------------------------------------------------------------- app


def create_app(settings: Settings | None = None, *, embedder: Embedder | None = None) -> FastAPI:
    """The HTTP API over the index in settings.index (built from settings.corpus if missing).

    `embedder` replaces the one named by settings.embedder (tests pass a fast fake one).
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        emb = embedder or make_embedder(settings.embedder)
        index, report = open_index(
            settings.corpus, settings.index, embedder=emb,
            chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap,
        )
        if report is not None:
            logger.warning("built the index at %s: %d documents, %d chunks",
                           settings.index, report.documents, report.chunks)
        # The default model loads its weights on first use: pay that now, not on a request.
        emb.embed(["warm-up"], kind="query")
        app.state.embedder = emb
        app.state.holder.set(index)
        yield

    try:
        app_version = version("qa")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        app_version = "0"
    app = FastAPI(
        title="qa",
        version=app_version,
        description="Questions over a folder of documents; answers cite exact character "
        "offsets. With QA_API_KEY set, every endpoint but /healthz (including these docs) "
        "needs `Authorization: Bearer <key>`.",
        lifespan=lifespan,
        # Served below, behind the API key like every other endpoint but /healthz.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.holder = IndexHolder()

    @app.exception_handler(QAError)
    async def qa_error(request: Request, exc: QAError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_for(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The default handler echoes the offending input, and JSON cannot carry every input
        # Python parsed (NaN, 1e400, lone surrogates): that would turn a 422 into a 500.
        return JSONResponse({"detail": _safe_errors(exc.errors())}, status_code=422)

    @app.exception_handler(ReindexRunningError)
    async def reindex_running(request: Request, exc: ReindexRunningError) -> JSONResponse:
        return JSONResponse(
            {"detail": "a re-index is already running; retry when it has finished"},
            status_code=409,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error ({exc.__class__.__name__})"},
                            status_code=500)

    # Added last = outermost: a 413 still carries CORS headers a browser can read.
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(
        CORSMiddleware,  # closed unless QA_CORS_ORIGINS lists origins
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
    )

    @app.get("/healthz", response_model=HealthOut, tags=["service"],
             responses={503: {"model": HealthOut, "description": "Not ready yet."}})
    async def healthz(request: Request) -> JSONResponse:
        """Readiness: 200 with index counts once the index is loaded, 503 before."""
        index: Index | None = request.app.state.holder.index
        if index is None:
            body = HealthOut(status="not ready", documents=None, chunks=None, embedder=None,
                             built_at=None)
            return JSONResponse(body.model_dump(), status_code=503)
        body = HealthOut(status="ok", documents=index.n_documents, chunks=index.n_chunks,
                         embedder=index.embedder.id, built_at=index.built_at or None)
        return JSONResponse(body.model_dump())

    protected = [Depends(require_key)]

    @app.post("/ask", response_model=AskResponse, tags=["questions"],
              dependencies=[*protected, Depends(require_json)],
              responses=_errors(400, 401, 413, 415, 422, 503))
    def ask(body: AskRequest, index: IndexDep) -> dict[str, Any]:
        """Answer a question with a sentence of the corpus and the passages that support it,
        or abstain. The same result object as `qa ask --json`."""
        # A plain def: embedding and search run in the threadpool, never on the event loop.
        result = answer_question(
            index, body.question, k=body.k, doc_ids=body.doc_ids,
            date_from=body.date_from, date_to=body.date_to,
        )
        return result.to_dict()

    @app.get("/documents", response_model=list[DocumentInfo], tags=["documents"],
             dependencies=protected, responses=_errors(401, 503))
    def list_documents(index: IndexDep) -> list[dict[str, Any]]:
        """The indexed documents, in corpus order."""
        return [
            {"doc_id": d, "date": m["date"], "title": m["title"], "length": m["length"]}
            for d in index.doc_ids() for m in [index.doc_meta(d)]
        ]

    @app.get("/documents/{doc_id:path}", response_model=DocumentOut, tags=["documents"],
             dependencies=protected, responses=_errors(401, 404, 503))
    def get_document(doc_id: str, index: IndexDep) -> dict[str, Any]:
        """One document's exact text: `text[start:end]` is what a citation quotes."""
        # Served from the loaded index only, so no id can reach a file outside the corpus.
        if not index.has_doc(doc_id):
            raise DocumentNotFoundError(f"no document {doc_id!r} in the index")
        doc = index.doc(doc_id)
        return {"doc_id": doc.doc_id, "date": doc.date, "title": doc.title,
                "length": doc.length, "text": doc.text}

    @app.post("/index", response_model=IndexReportOut, tags=["service"],
              dependencies=protected, responses=_errors(400, 401, 403, 409, 503))
    def reindex(request: Request, settings: SettingsDep) -> dict[str, Any]:
        """Re-index the corpus (only new or changed documents are embedded) and swap the new
        index in; requests already running finish on the old one. Needs QA_API_KEY."""
        if not settings.api_key:
            raise HTTPException(
                status_code=403,
                detail="re-indexing over HTTP is disabled: start the server with QA_API_KEY set",
            )
        holder: IndexHolder = request.app.state.holder
        if holder.index is None:
            raise HTTPException(status_code=503, detail="the index is not loaded yet")
        report = holder.reindex(settings, request.app.state.embedder)
        return asdict(report)

    @app.get("/openapi.json", include_in_schema=False, dependencies=protected)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=protected)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="qa API")

    return app


__all__ = ["AskRequest", "AskResponse", "IndexHolder", "create_app", "status_for"]
