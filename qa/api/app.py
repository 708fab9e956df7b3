"""create_app: the FastAPI app over the index, wired from the routers in qa.api.routes."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from qa.api.deps import (
    UNAUTHORIZED,
    IndexHolder,
    ReindexRunningError,
    key_is_valid,
    status_for,
)
from qa.api.middleware import BodyLimitMiddleware, SecurityHeadersMiddleware, safe_errors
from qa.api.routes import admin, ask, documents, pages
from qa.api.schemas import MAX_BODY_BYTES
from qa.config import Settings, with_index_corpus
from qa.embedding import Embedder, make_embedder
from qa.errors import QAError
from qa.index import Index, open_index

logger = logging.getLogger(__name__)


def _watch(holder: IndexHolder, settings: Settings, embedder: Embedder, every: float,
           stop: threading.Event) -> None:
    """QA_WATCH_INDEX: check CURRENT every `every` seconds, swap a new commit in. A commit
    that cannot be opened (damaged, invalid, being pruned) keeps the live one, is logged
    once (not every tick) and retried; nothing that happens here ends the thread."""
    logged: str | None = None
    while not stop.wait(every):
        try:
            if holder.reload(settings, embedder):
                logged = None
                logger.warning("serving the new commit %s of %s",
                               holder.index.generation if holder.index else "?",
                               settings.index)
        except BaseException as exc:  # the watcher must outlive any commit
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            reason = str(exc)
            if reason != logged:
                logger.warning("could not open the new commit of %s (still serving %s): %s",
                               settings.index,
                               holder.index.generation if holder.index else "nothing", reason)
                logged = reason

# Paths anyone may call even with QA_API_KEY set: readiness, the page and its files.
_PUBLIC = ("/healthz", "/static/", "/docs/assets/")


def _open_live(settings: Settings, embedder: Embedder | None,
               index: Index | None) -> tuple[Index, Embedder]:
    """The index to serve and its embedder: the caller's, else opened (built if missing)."""
    if index is not None:
        return index, index.embedder
    emb = embedder or make_embedder(settings.embedder)
    live, report = open_index(
        settings.corpus, settings.index, embedder=emb,
        chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap,
        parse_limits=settings.parse_limits(),
    )
    if report is not None:
        logger.warning("built the index at %s: %d documents, %d chunks",
                       settings.index, report.documents, report.chunks)
    return live, emb


def _lifespan(settings: Settings, embedder: Embedder | None,
              index: Index | None) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Open the index once at startup (and watch it if asked); stop the watcher at exit."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # An existing index re-indexes its own corpus unless one is named (never ./corpus).
        app.state.settings = with_index_corpus(settings)
        live, emb = _open_live(settings, embedder, index)
        # The default model loads its weights on first use: pay that now, not on a request.
        emb.embed(["warm-up"], kind="query")
        app.state.embedder = emb
        app.state.holder.set(live)
        stop = threading.Event()
        watcher = None
        if settings.watch_index:
            watcher = threading.Thread(
                target=_watch, args=(app.state.holder, app.state.settings, emb,
                                     settings.watch_index, stop),
                name="qa-watch-index", daemon=True)
            watcher.start()
        try:
            yield
        finally:
            stop.set()
            if watcher is not None:
                watcher.join(timeout=5)

    return lifespan


def _add_error_handlers(app: FastAPI, settings: Settings) -> None:
    """Library errors and everything else as JSON with a status; never a traceback."""

    @app.exception_handler(QAError)
    async def qa_error(request: Request, exc: QAError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status_for(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI parses the body before running the route's key check: without this, a
        # caller without the key would learn how its JSON was parsed (422) instead of 401.
        if not request.url.path.startswith(_PUBLIC) and not key_is_valid(
            settings, request.headers.get("authorization")
        ):
            return JSONResponse({"detail": UNAUTHORIZED}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        # The default handler echoes the offending input, and JSON cannot carry every input
        # Python parsed (NaN, 1e400, lone surrogates): that would turn a 422 into a 500.
        return JSONResponse({"detail": safe_errors(exc.errors())}, status_code=422)

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


def create_app(
    settings: Settings | None = None, *, embedder: Embedder | None = None,
    index: Index | None = None,
) -> FastAPI:
    """The HTTP API over the index in settings.index (built from settings.corpus if missing).

    `embedder` replaces the one named by settings.embedder (tests pass a fast fake one);
    `index`, already opened by the caller (`qa serve`), is served as it is instead of being
    opened a second time.
    """
    settings = settings or Settings()
    try:
        app_version = version("qa")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        app_version = "0"
    app = FastAPI(
        title="qa",
        version=app_version,
        description="Questions over a folder of documents; answers cite exact character "
        "offsets. With QA_API_KEY set, every endpoint but /healthz (including these docs) "
        "needs `Authorization: Bearer <key>`. The page at / asks for the key once.",
        lifespan=_lifespan(settings, embedder, index),
        # Served by the admin router, behind the API key like every endpoint but /healthz.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.holder = IndexHolder()
    _add_error_handlers(app, settings)

    # Added last = outermost: a 413 still carries CORS and security headers.
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(
        CORSMiddleware,  # closed unless QA_CORS_ORIGINS lists origins
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
    )

    for module in (admin, ask, documents, pages):
        app.include_router(module.router)
    return app
