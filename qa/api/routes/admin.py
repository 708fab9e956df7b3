"""The service's own endpoints: /healthz, POST /index, and the OpenAPI schema and docs
(Swagger UI served from the package, never from a CDN)."""

from __future__ import annotations

import errno
from dataclasses import asdict
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from qa.api.deps import KEY, HolderDep, SettingsDep, status_for
from qa.api.schemas import HealthOut, IndexReportOut, error_responses
from qa.config import Settings
from qa.errors import IndexWriteError, QAError

router = APIRouter()


@router.head("/healthz", include_in_schema=False)  # load balancers probe with HEAD
@router.get("/healthz", response_model=HealthOut, tags=["service"],
            responses={503: {"model": HealthOut, "description": "Not ready yet."}})
async def healthz(holder: HolderDep, settings: SettingsDep) -> JSONResponse:
    """Readiness: 200 with index counts once the index is loaded, 503 before (HEAD too);
    `last_reload_error` says why the latest commit could not be served (still 200: the
    live index answers)."""
    index = holder.index
    if index is None:
        body = HealthOut(status="not ready", documents=None, chunks=None, embedder=None,
                         built_at=None)
        return JSONResponse(body.model_dump(), status_code=503)
    body = HealthOut(status="ok", documents=index.n_documents, chunks=index.n_chunks,
                     embedder=index.embedder.id, built_at=index.built_at or None,
                     generation=index.generation,
                     last_reload_error=_scrub(holder.last_reload_error, settings)
                     if holder.last_reload_error else None)
    return JSONResponse(body.model_dump())


def _scrub(message: str, settings: Settings) -> str:
    """The message without the server's folder paths (they tell a client nothing it needs
    and tell an attacker about the file system)."""
    names = {"the corpus folder": settings.corpus, "the index folder": settings.index}
    for label, path in names.items():
        for form in sorted({str(Path(path).resolve()), str(path)}, key=len, reverse=True):
            if form not in (".", ""):
                message = message.replace(form, label)
    return message


_WRITE_ERRORS = {
    errno.EACCES: (503, "the index folder is not writable by the server"),
    errno.EPERM: (503, "the index folder is not writable by the server"),
    errno.EROFS: (503, "the index folder is on a read-only file system"),
    errno.ENOSPC: (507, "no space left on the disk of the index folder"),
    errno.EDQUOT: (507, "the disk quota of the index folder is exceeded"),
}


@router.post("/index", response_model=IndexReportOut, tags=["service"], dependencies=[KEY],
             responses=error_responses(400, 401, 403, 409, 500, 503, 507))
def reindex(request: Request, settings: SettingsDep, holder: HolderDep) -> dict[str, Any]:
    """Re-index the corpus (only new or changed documents are embedded) and swap the new
    index in; requests already running finish on the old one. Needs QA_API_KEY."""
    if not settings.api_key:
        raise HTTPException(
            status_code=403,
            detail="re-indexing over HTTP is disabled: start the server with QA_API_KEY set",
        )
    if holder.index is None:
        raise HTTPException(status_code=503, detail="the index is not loaded yet")
    try:
        report = holder.reindex(settings, request.app.state.embedder)
    except IndexWriteError as exc:
        status, what = _WRITE_ERRORS.get(exc.errno or 0, (500, "the index could not be written"))
        raise HTTPException(
            status_code=status, detail=f"re-index failed: {what}; the live index is unchanged",
        ) from None
    except QAError as exc:
        raise HTTPException(status_code=status_for(exc), detail=_scrub(str(exc), settings)) \
            from None
    except OSError as exc:
        status, what = _WRITE_ERRORS.get(exc.errno or 0, (500, "the index could not be written"))
        reason = f" ({exc.strerror})" if exc.strerror else ""
        raise HTTPException(
            status_code=status,
            detail=f"re-index failed: {what}{reason}; the live index is unchanged",
        ) from None
    out = asdict(report)
    out.pop("path", None)
    for skipped in out["skipped"]:
        skipped["reason"] = _scrub(skipped["reason"], settings)
    live = holder.index
    out["generation"] = live.generation if live is not None else ""
    return out


@router.post("/reload", tags=["service"], dependencies=[KEY],
             responses=error_responses(401, 403, 409, 503))
def reload(request: Request, settings: SettingsDep, holder: HolderDep) -> dict[str, Any]:
    """Serve the index's latest commit if another process made one (`qa index`, another
    replica's POST /index); requests already running finish on the old one. Needs
    QA_API_KEY. `reloaded` is false when the served commit is already the latest."""
    if not settings.api_key:
        raise HTTPException(
            status_code=403,
            detail="reloading over HTTP is disabled: start the server with QA_API_KEY set "
                   "(or watch the index with QA_WATCH_INDEX)",
        )
    if holder.index is None:
        raise HTTPException(status_code=503, detail="the index is not loaded yet")
    try:
        reloaded = holder.reload(settings, request.app.state.embedder)
    except QAError as exc:  # ReloadError: 503 with the reason; the live index is kept
        raise HTTPException(status_code=status_for(exc), detail=_scrub(str(exc), settings)) \
            from None
    live = holder.index
    return {"reloaded": reloaded, "generation": live.generation if live is not None else ""}


# ---------------------------------------------------------------------------- API docs

# Swagger UI's files come with the fastapi-offline package; only its static folder is used.
_SWAGGER = files("fastapi_offline") / "static"
_SWAGGER_FILES = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}
# Swagger UI's start-up is an inline script in FastAPI's page: allow it on /docs only.
_DOCS_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' "
             "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
             "frame-ancestors 'none'")


@router.get("/openapi.json", include_in_schema=False, dependencies=[KEY])
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False, dependencies=[KEY])
async def docs() -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url="/openapi.json", title="qa API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/docs/assets/favicon.png",
    )
    page.headers["Content-Security-Policy"] = _DOCS_CSP
    return page


@router.get("/docs/assets/{name}", include_in_schema=False)
async def docs_asset(name: str) -> FileResponse:
    # Public, like any static file: the assets are Swagger UI's, nothing of the index.
    if name not in _SWAGGER_FILES:
        raise HTTPException(status_code=404, detail="not found")
    return FileResponse(str(_SWAGGER / name), headers={"Cache-Control": "max-age=86400"})
