"""Pydantic models of the HTTP boundary. The /ask and /index responses are derived from the
library's result dataclasses (`qa.answering.Answer`, `qa.index.BuildReport`), so a field added
there appears here by itself."""

from __future__ import annotations

import dataclasses
import typing
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from qa.answering import MAX_K, MAX_QUESTION_CHARS, Answer
from qa.documents import FormatStats, SkippedFile
from qa.index import BuildReport
from qa.text import is_blank

# A question is at most 1,000 characters; 64 KiB leaves room for a long doc_ids list while
# keeping a request's cost bounded before any parsing happens.
MAX_BODY_BYTES = 64 * 1024

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
        "not only whitespace or invisible characters).",
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
        if is_blank(value):
            raise ValueError("the question is empty (only whitespace or invisible characters)")
        return value


# ---------------------------------------------------------------------------- /ask response

# Descriptions of the result's fields, applied when the library's dataclass has them.
_DESCRIPTIONS = {
    "question": "The question as answered (stripped).",
    "answer": "The answer sentence, or null when abstaining.",
    "abstained": "True when no sentence of the documents answers well enough.",
    "answer_span": "Where the answer sentence lies: its document and character offsets.",
    "citations": "The passages that support the answer (or, when abstaining, the closest "
    "ones, which do not answer it); text is exactly the document's text[start:end].",
    "confidence": "Estimated probability (0-1) that the answer is right; below the fitted "
    "threshold the service abstains.",
    "short_answer": "The shortest span that answers (a date, a number, a name, a command, an "
    "option, a path...), when found.",
}


class _AskResponseBase(BaseModel):
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
                    "generation": "snap-000042",
                }
            ]
        }
    )


def _result_fields() -> dict[str, Any]:
    hints = typing.get_type_hints(Answer)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(Answer):
        description = _DESCRIPTIONS.get(f.name)
        fields[f.name] = (hints[f.name], Field(description=description))
    fields["generation"] = (str, Field(description="The index generation that answered."))
    return fields


if TYPE_CHECKING:  # for type checkers, a model class; at run time, built from Answer

    class AskResponse(_AskResponseBase):
        generation: str

else:
    AskResponse = create_model(  # the library's Answer, plus the generation it was read from
        "AskResponse",
        __base__=_AskResponseBase,
        __doc__="The result object of `qa ask --json`, plus the index generation that answered: "
        "pass it to GET /documents/{id}?generation=... to check a citation after a re-index.",
        **_result_fields(),
    )


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
    date_source: str | None = Field(default=None, description="Where the date came from: "
                                    "front matter, text prefix, html meta, pdf info, docx core.")


class BlockOut(BaseModel):
    start: int
    end: int = Field(description="text[start:end] is the block's text.")
    kind: str = Field(description="heading, paragraph, list_item, term, definition, code, "
                      "table_row, note or caption.")
    level: int = Field(description="A heading's level (1 for the top); 0 for other kinds.")
    section: str | None = Field(description="The headings the block sits under, outermost "
                                "first, joined by ' › ' (a heading's ends with itself).")


class DocumentOut(DocumentInfo):
    text: str = Field(description="The document's exact text; citation offsets index it.")
    pages: list[list[int]] | None = Field(default=None, description="PDFs: the [start, end) "
                                          "character range of each page in `text`.")
    blocks: list[BlockOut] = Field(default_factory=list, description="The document's "
                                   "structure in text order: headings, paragraphs, notes, "
                                   "listings..., each with offsets into `text`.")
    generation: str = Field(description="The index generation this text was read from.")


class HealthOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "ok", "documents": 5, "chunks": 62, "embedder": "use-m3",
                          "built_at": "2024-11-21T14:49:41+00:00",
                          "generation": "snap-000042"}]
        }
    )

    status: Literal["ok", "not ready"]
    documents: int | None
    chunks: int | None
    embedder: str | None
    built_at: str | None
    generation: str | None = None
    last_reload_error: str | None = Field(
        default=None, description="Why the index's latest commit is not served (damaged, "
        "invalid); null when it is.")


class SkippedOut(BaseModel):
    path: str = Field(description="The file's path inside the corpus folder.")
    reason: str


class FormatOut(BaseModel):
    format: str = Field(description="text, pdf, html or docx")
    read: int
    skipped: int
    pages: int
    seconds: float
    unchanged: int = Field(0, description="Kept from the index without reading.")
    unreadable: str | None = Field(None, description="Why no file of this format could be "
                                   "read (a parser library that cannot be imported), and the fix.")


# ---------------------------------------------------------------------------- /index response

# Descriptions of BuildReport's fields, applied when the dataclass has them.
_REPORT_DESCRIPTIONS = {
    "generation": "The generation now live.",
    "up_to_date": "Nothing changed: no new generation was committed.",
    "segments": "Segments of the index now live.",
    "merged": "Segments merged by this build.",
    "formats": "Files read and skipped per format, pages and parsing time.",
    "warnings": "Files indexed with a caveat (e.g. a malformed date, indexed undated).",
}
# The library's types of a report's lists -> their HTTP models.
_REPORT_TYPES: dict[Any, Any] = {list[SkippedFile]: list[SkippedOut],
                                 list[FormatStats]: list[FormatOut]}
# Never sent: server paths.
_REPORT_HIDDEN = frozenset({"path"})
# Always sent although the library defaults it (the route sets the live generation).
_REPORT_REQUIRED = frozenset({"generation"})


def _report_fields() -> dict[str, Any]:
    hints = typing.get_type_hints(BuildReport)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(BuildReport):
        if f.name in _REPORT_HIDDEN:
            continue
        kind = _REPORT_TYPES.get(hints[f.name], hints[f.name])
        extra: dict[str, Any] = {"description": _REPORT_DESCRIPTIONS.get(f.name)}
        if f.name not in _REPORT_REQUIRED and f.default is not dataclasses.MISSING:
            extra["default"] = f.default
        elif f.name not in _REPORT_REQUIRED and f.default_factory is not dataclasses.MISSING:
            extra["default_factory"] = f.default_factory
        fields[f.name] = (kind, Field(**extra))
    return fields


class _IndexReportBase(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"documents": 5, "chunks": 62, "added": 0, "changed": 1,
                          "unchanged": 4, "removed": 0, "embedded_chunks": 5, "skipped": [],
                          "seconds": 1.9, "generation": "snap-000042"}]
        }
    )


if TYPE_CHECKING:  # for type checkers, a model class; at run time, built from BuildReport

    class IndexReportOut(_IndexReportBase):
        generation: str

else:
    IndexReportOut = create_model(
        "IndexReportOut",
        __base__=_IndexReportBase,
        __doc__="What a re-index did (the library's BuildReport, without server paths).",
        **_report_fields(),
    )


class ErrorOut(BaseModel):
    detail: str | list[dict[str, Any]] = Field(
        description="A message, or FastAPI's list of validation errors."
    )


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses."""
    text = {
        400: "The request was not acceptable.",
        401: "Missing or wrong API key (when QA_API_KEY is set).",
        403: "Re-indexing over HTTP is disabled (no QA_API_KEY configured).",
        404: "No such document.",
        409: "A re-index is already running.",
        410: "That index generation is no longer kept; ask again.",
        413: f"Request body larger than {MAX_BODY_BYTES} bytes.",
        415: "The body must be JSON (Content-Type: application/json).",
        422: "Invalid question, options or JSON.",
        500: "The index could not be written (the live index is unchanged).",
        503: "The index is not loaded (yet), or does not match this server, or its folder "
        "is not writable.",
        507: "No space left to write the index (the live index is unchanged).",
    }
    return {code: {"model": ErrorOut, "description": text[code]} for code in codes}
