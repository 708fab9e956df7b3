"""POST /ask: a question -> the library's result object, with the generation that answered."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from qa.answering import answer_question
from qa.api.deps import JSON_BODY, KEY, IndexDep
from qa.api.middleware import JSONBodyRoute
from qa.api.schemas import AskRequest, AskResponse, error_responses

router = APIRouter(tags=["questions"], route_class=JSONBodyRoute)


@router.post("/ask", response_model=AskResponse, dependencies=[KEY, JSON_BODY],
             responses=error_responses(400, 401, 413, 415, 422, 503))
def ask(body: AskRequest, index: IndexDep) -> dict[str, Any]:
    """Answer a question with a sentence of the corpus and the passages that support it,
    or abstain. The same result object as `qa ask --json`, plus `generation`."""
    # A plain def: embedding and search run in the threadpool, never on the event loop.
    result = answer_question(
        index, body.question, k=body.k, doc_ids=body.doc_ids,
        date_from=body.date_from, date_to=body.date_to,
    )
    return result.to_dict() | {"generation": index.generation}
