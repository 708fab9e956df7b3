"""GET /documents and GET /documents/{id}: the texts citations point into."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query

from qa.api.deps import KEY, HolderDep, IndexDep
from qa.api.schemas import DocumentInfo, DocumentOut, error_responses
from qa.errors import DocumentNotFoundError

router = APIRouter(tags=["documents"], dependencies=[KEY])


@router.get("/documents", response_model=list[DocumentInfo], responses=error_responses(401, 503))
def list_documents(index: IndexDep) -> list[dict[str, Any]]:
    """The indexed documents, in corpus order."""
    return [
        {"doc_id": d, "date": m["date"], "title": m["title"], "length": m["length"],
         "date_source": m.get("date_source")}
        for d in index.doc_ids() for m in [index.doc_meta(d)]
    ]


@router.get("/documents/{doc_id:path}", response_model=DocumentOut,
            responses=error_responses(401, 404, 410, 503))
def get_document(
    doc_id: str,
    index: IndexDep,
    holder: HolderDep,
    generation: str | None = Query(
        default=None, max_length=100,
        description="Read the text from this index generation (the `generation` of an /ask "
        "answer), so that a citation can be checked after a re-index. The live one and the "
        "one before it are kept; an older one is 410.",
    ),
) -> dict[str, Any]:
    """One document's exact text: `text[start:end]` is what a citation quotes."""
    if generation is not None and generation != index.generation:
        kept = holder.get(generation)
        if kept is None:
            raise HTTPException(
                status_code=410,
                detail=f"index generation {generation!r} is no longer available (kept: "
                f"{', '.join(holder.kept_generations())}); ask the question again",
            )
        index = kept
    # Served from the loaded index only, so no id can reach a file outside the corpus.
    if not index.has_doc(doc_id):
        raise DocumentNotFoundError(f"no document {doc_id!r} in the index")
    doc = index.doc(doc_id)
    return {"doc_id": doc.doc_id, "date": doc.date, "title": doc.title,
            "length": doc.length, "text": doc.text, "date_source": doc.date_source,
            "pages": [list(p) for p in doc.pages] or None, "generation": index.generation,
            "blocks": [{"start": b.start, "end": b.end, "kind": b.kind, "level": b.level,
                        "section": b.section} for b in doc.blocks]}
