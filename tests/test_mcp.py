"""`qa mcp` as a subprocess, driven by the official MCP client over stdio, with the real
default model over an index of the shipped corpus: the tools, their schemas, an `ask` result
checked against `get_document`, abstention, and bad arguments as tool errors."""

from __future__ import annotations

import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from test_server import CORPUS, build_shipped_index, clean_env, qa_command

pytestmark = pytest.mark.slow

Session = Callable[[ClientSession], Awaitable[None]]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped corpus indexed once with the real default model (`qa index`)."""
    return build_shipped_index(tmp_path_factory.mktemp("mcp"))


def run_session(base: Path, body: Session) -> None:
    command, *args = qa_command()
    params = StdioServerParameters(
        command=command, args=[*args, "mcp", "--index", "index", "--embedder", "use-m3"],
        cwd=str(base), env=clean_env(),
    )

    async def main() -> None:
        with anyio.fail_after(240), open(base / "mcp.log", "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), \
                    ClientSession(read, write) as session:
                await session.initialize()
                await body(session)

    anyio.run(main)


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    data = result.structured_content
    assert isinstance(data, dict)
    # the text content carries the same object, for clients that read only text
    assert json.loads(result.content[0].text) == data
    return data


def test_tools_ask_search_get_document(workspace: Path) -> None:
    seen: dict[str, Any] = {}

    async def body(s: ClientSession) -> None:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert set(tools) == {"ask", "search", "get_document"}
        for tool in tools.values():
            assert tool.description and len(tool.description) > 60
        ask_schema = tools["ask"].input_schema
        assert ask_schema["required"] == ["question"]
        assert ask_schema["properties"]["k"]["maximum"] == 50
        assert all(p.get("description") for p in ask_schema["properties"].values())
        # ask's output schema is POST /ask's
        assert set(tools["ask"].output_schema["properties"]) >= {
            "answer", "abstained", "answer_span", "citations", "confidence", "generation"}

        q = "When did Lavrov visit North Korea?"
        answer = structured(await s.call_tool("ask", {"question": q, "k": 3}))
        seen["answer"] = answer
        assert not answer["abstained"] and "18 octobre" in answer["answer"]
        span = answer["answer_span"]
        doc = structured(await s.call_tool("get_document", {"doc_id": span["doc_id"]}))
        assert doc["text"][span["start"]:span["end"]] == answer["answer"]
        assert doc["generation"] == answer["generation"] and doc["length"] == len(doc["text"])
        for c in answer["citations"]:
            text = structured(await s.call_tool("get_document", {"doc_id": c["doc_id"]}))["text"]
            assert text[c["start"]:c["end"]] == c["text"]

        found = structured(await s.call_tool("search", {"question": q, "k": 4}))
        assert "answer" not in found and 1 <= len(found["passages"]) <= 4
        assert [p["rank"] for p in found["passages"]] == list(range(1, len(found["passages"]) + 1))
        assert any(p["doc_id"] == span["doc_id"] for p in found["passages"])
        scores = [p["score"] for p in found["passages"]]
        assert scores == sorted(scores, reverse=True)  # best first
        for p in found["passages"]:
            assert set(p) == {"rank", "doc_id", "start", "end", "text", "score", "page",
                              "section"}
            text = structured(await s.call_tool("get_document", {"doc_id": p["doc_id"]}))["text"]
            assert text[p["start"]:p["end"]] == p["text"]
        assert tools["search"].output_schema is not None

        nothing = structured(await s.call_tool("ask", {"question": "Who won the 2022 World Cup?"}))
        assert nothing["abstained"] and nothing["answer"] is None
        seen["done"] = True

    run_session(workspace, body)
    assert seen.get("done")


BAD_CALLS = [
    # argument validation by the SDK (the input schema), multi-line pydantic messages
    ("ask", {"question": "Qui ?", "k": 0}, "greater than or equal to 1"),
    ("ask", {"question": "Qui ?", "k": "five"}, "valid integer"),
    ("ask", {}, "Field required"),
    ("search", {"question": "x" * 1001}, "at most 1000 characters"),
    ("nope", {}, "Unknown tool: nope"),
    # the library's own one-line messages
    ("ask", {"question": "\u200b\ufeff"}, "the question is empty"),
    ("ask", {"question": "Qui ?", "doc_ids": ["nope.txt"]}, "unknown doc_id(s): 'nope.txt'"),
    ("ask", {"question": "Qui ?", "date_from": "2024-13-01"},
     "date_from must be a date YYYY-MM-DD, got '2024-13-01'"),
    ("get_document", {"doc_id": "../secret.txt"}, "no document '../secret.txt' in the index"),
]


def test_bad_arguments_are_tool_errors(workspace: Path) -> None:
    """Each bad call is a tool error with a one-line message (no traceback), and the server
    keeps serving after it. One session for all: starting the real model costs seconds."""
    got: list[tuple[str, Any, Any]] = []

    async def body(s: ClientSession) -> None:
        for tool, arguments, message in BAD_CALLS:
            result = await s.call_tool(tool, arguments)
            after = await s.call_tool("search", {"question": "Pyongyang", "k": 1})
            got.append((message, result, after))

    run_session(workspace, body)
    assert len(got) == len(BAD_CALLS)
    for message, result, after in got:
        assert result.is_error, (message, result.content)
        text = result.content[0].text
        assert message in text, (message, text)
        assert "Traceback" not in text and "\n  File " not in text
        assert not after.is_error


def test_streamable_http_transport(tmp_path: Path) -> None:
    """`qa mcp --transport streamable-http` serves the same tools at http://127.0.0.1:PORT/mcp
    (fast fake embedder: this checks the transport, the tools are checked above)."""
    import subprocess
    import time

    import httpx
    from conftest import free_port
    from mcp.client.streamable_http import streamable_http_client

    shutil.copytree(CORPUS, tmp_path / "corpus")
    port = free_port()
    log = open(tmp_path / "mcp-http.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [*qa_command(), "mcp", "--transport", "streamable-http", "--port", str(port),
         "--corpus", "corpus", "--index", "index", "--embedder", "hash"],
        cwd=tmp_path, env=clean_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "mcp-http.log").read_text()
            try:
                httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "qa mcp (HTTP) not listening"
                time.sleep(0.2)
        seen: dict[str, Any] = {}

        async def main() -> None:
            with anyio.fail_after(60):
                async with streamable_http_client(f"http://127.0.0.1:{port}/mcp") as streams, \
                        ClientSession(streams[0], streams[1]) as session:
                    await session.initialize()
                    seen["tools"] = {t.name for t in (await session.list_tools()).tools}
                    seen["ask"] = await session.call_tool(
                        "ask", {"question": "Quand Lavrov s’est-il rendu en Corée du Nord ?"})

        anyio.run(main)
        assert seen["tools"] == {"ask", "search", "get_document"}
        assert "18 octobre" in structured(seen["ask"])["answer"]
    finally:
        process.terminate()
        process.wait(20)
        log.close()
