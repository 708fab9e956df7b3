"""The page at / : plain HTML, CSS and JavaScript from the package, no build step, nothing
from another origin. The page itself holds no data; what it shows comes from the API, with
the API key when the server has one."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

router = APIRouter(include_in_schema=False)

_STATIC = files("qa.api") / "static"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".svg": "image/svg+xml"}
# Revalidate on each load: a new version of qa never runs with the old page's script.
_NO_CACHE = {"Cache-Control": "no-cache"}


@router.get("/")
async def page() -> FileResponse:
    return FileResponse(str(_STATIC / "index.html"), media_type="text/html; charset=utf-8",
                        headers=_NO_CACHE)


@router.get("/static/{name}")
async def static(name: str) -> FileResponse:
    # Only the page's own files, by exact name: no path ever reaches the file system.
    suffix = name[name.rfind("."):] if "." in name else ""
    if suffix not in _TYPES or "/" in name or not (_STATIC / name).is_file():
        raise HTTPException(status_code=404, detail="not found")
    return FileResponse(str(_STATIC / name), media_type=_TYPES[suffix], headers=_NO_CACHE)
