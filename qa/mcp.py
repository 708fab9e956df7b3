"""`qa mcp`: the Model Context Protocol server, so that an AI assistant can ask, search and
cite the documents. A thin shell like the CLI and the HTTP API: each tool calls one library
function and returns the same result objects (`ask` is exactly POST /ask's; `search` is
`qa.retrieval.search`, which ranks passages without running the answer stage).

Needs the `mcp` extra (`pip install 'qa[mcp]'`); imported only by `qa mcp`.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import Field

from qa.answering import (
    DEFAULT_PARAMS,
    MAX_K,
    MAX_QUESTION_CHARS,
    answer_question,
    validate_question,
)
from qa.api.schemas import AskResponse  # the ask tool's output schema is POST /ask's
from qa.errors import DocumentNotFoundError, EmbedderError, QAError
from qa.index import Index
from qa.retrieval import search as search_passages

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

INSTRUCTIONS = (
    "Answers questions about a fixed collection of documents (French news articles by "
    "default) in English or French, with exact citations. Use `ask` for a question: it "
    "returns an answer sentence copied from a document, its character offsets, and the "
    "numbered passages that support it; or `abstained: true` when the documents do not "
    "answer (then say so; the passages returned are only the closest, not an answer). Use "
    "`search` to find passages without an answer, and `get_document` to read a whole "
    "document: text[start:end] of a citation is exactly its quoted text."
)

# The same constraints as POST /ask's AskRequest (strict: k="5" and doc_ids=[] refused
# here as there; MCP's argument pre-parsing leaves a quoted number a string).
Question = Annotated[str, Field(
    min_length=1, max_length=MAX_QUESTION_CHARS, strict=True,
    description="The question, in English or French, as a full sentence.",
)]
K = Annotated[int, Field(ge=1, le=MAX_K, strict=True,
                         description="How many passages to return.")]
DocIds = Annotated[list[Annotated[str, Field(strict=True)]] | None, Field(
    min_length=1,
    description="Only search these documents (ids as returned in citations); null for all.",
)]
DateFrom = Annotated[str | None, Field(
    pattern=r"^\d{4}-\d{2}-\d{2}$", strict=True,
    description="Only documents dated on or after this day, YYYY-MM-DD.",
)]
DateTo = Annotated[str | None, Field(
    pattern=r"^\d{4}-\d{2}-\d{2}$", strict=True,
    description="Only documents dated on or before this day, YYYY-MM-DD.",
)]

T = TypeVar("T")


def _tool_errors(fn: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """Run fn in a worker thread (embedding is CPU work) and turn library errors into tool
    errors carrying the library's one-line message."""
    from anyio import to_thread
    from mcp.server.mcpserver.exceptions import ToolError

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return await to_thread.run_sync(functools.partial(fn, *args, **kwargs))
        except QAError as exc:
            raise ToolError(str(exc)) from None

    return wrapper


def build_server(index: Index) -> MCPServer[Any]:
    """The MCP server over a loaded index: tools ask, search, get_document."""
    try:
        from mcp.server.mcpserver import MCPServer
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise EmbedderError("`qa mcp` needs the MCP SDK: pip install 'qa[mcp]'") from exc

    server: MCPServer[Any] = MCPServer(name="qa", instructions=INSTRUCTIONS)

    @server.tool(title="Ask the documents")
    @_tool_errors
    def ask(question: Question, k: K = 5, doc_ids: DocIds = None, date_from: DateFrom = None,
            date_to: DateTo = None) -> AskResponse:
        """Answer a question from the documents, with citations.

        Returns the same object as the HTTP API's POST /ask: `answer` (a sentence copied from
        a document, or null), `abstained` (true when the documents do not answer: report
        that, do not guess), `answer_span` {doc_id, start, end, page, section}, `citations`
        (rank, doc_id, start, end, text, score, page, section: the heading path, e.g.
        "Chapter 1 › 1.2. Files", or null), `confidence`, and `generation` (the index snapshot)."""
        result = answer_question(index, question, k=k, doc_ids=doc_ids, date_from=date_from,
                                 date_to=date_to)
        return AskResponse.model_validate(result.to_dict() | {"generation": index.generation})

    @server.tool(title="Search passages")
    @_tool_errors
    def search(question: Question, k: K = 5, doc_ids: DocIds = None,
               date_from: DateFrom = None, date_to: DateTo = None) -> dict[str, Any]:
        """Find the passages most relevant to a question, without choosing an answer.

        Returns {question, passages: [{rank, doc_id, start, end, text, score, page, section}],
        generation}, best first; each passage's text is exactly the document's
        text[start:end], and its score the retrieval's (higher is better)."""
        question = validate_question(question, k)
        # BM25 weighted as `ask` retrieves its passages.
        hits = search_passages(index, question, k=k, doc_ids=doc_ids, date_from=date_from,
                               date_to=date_to, lexical_weight=DEFAULT_PARAMS.lexical_weight)
        return {"question": question, "passages": [h.to_dict() for h in hits],
                "generation": index.generation}

    @server.tool(title="Read a document")
    @_tool_errors
    def get_document(doc_id: Annotated[str, Field(
        min_length=1, max_length=1000,
        description="A document id, as in a citation's doc_id.")]) -> dict[str, Any]:
        """The full text of one document, to read a citation in context.

        Returns {doc_id, title, date, length, text, generation}, plus `pages` (the page
        map) when the document has pages and `headings` ([{start, end, level, section}],
        its table of contents) when it has headings. Citation offsets index `text`."""
        if not index.has_doc(doc_id):
            raise DocumentNotFoundError(f"no document {doc_id!r} in the index")
        doc = index.doc(doc_id)
        out: dict[str, Any] = {"doc_id": doc.doc_id, "title": doc.title, "date": doc.date,
                               "length": doc.length, "text": doc.text}
        pages = getattr(doc, "pages", None)  # the page map, for documents that have pages
        if pages:
            out["pages"] = [asdict(p) if is_dataclass(p) and not isinstance(p, type) else p
                            for p in pages]
        headings = [{"start": b.start, "end": b.end, "level": b.level, "section": b.section}
                    for b in doc.blocks if b.kind == "heading"]
        if headings:
            out["headings"] = headings
        return out | {"generation": index.generation}

    return server


def run(index: Index, *, transport: str = "stdio", host: str = "127.0.0.1",
        port: int = 8001) -> None:
    """Serve the tools over stdio (what MCP clients start) or streamable HTTP at /mcp."""
    server = build_server(index)
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=host, port=port)
