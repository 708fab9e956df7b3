"""FastAPI app: a thin HTTP shell over the library (`qa serve` runs it with uvicorn).

    GET  /                 the page: ask, see the answer in its passage, open the document
    POST /ask              question -> the same result object as `qa ask --json` + generation
    GET  /documents        the indexed documents (id, date, title, length)
    GET  /documents/{id}   one document's exact text, to check a citation's offsets
                           (?generation=... reads the generation an answer came from)
    POST /index            re-index the corpus and swap the new index in (needs QA_API_KEY)
    GET  /healthz          readiness, never behind the API key (HEAD too)
    GET  /docs             the OpenAPI docs, served locally

Layout: app.py (create_app), deps.py (state and dependencies), schemas.py (Pydantic models),
middleware.py, routes/ (one router per resource), static/ (the page's files).
"""

from qa.api.app import create_app
from qa.api.deps import IndexHolder, get_index, status_for
from qa.api.schemas import MAX_BODY_BYTES, AskRequest, AskResponse

__all__ = ["MAX_BODY_BYTES", "AskRequest", "AskResponse", "IndexHolder", "create_app",
           "get_index", "status_for"]
