"""`qa ...`: a thin command-line shell over the library."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError
from pydantic_settings import SettingsError

from qa.config import Settings
from qa.console import format_answer, print_report, progress_bar
from qa.errors import QAError

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn library errors into one line on stderr and a non-zero exit; never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except QAError as exc:
            _fail(str(exc))
        except ValidationError as exc:  # a QA_* variable or option Settings refuses
            err = exc.errors()[0]
            name = "QA_" + "_".join(str(p) for p in err["loc"]).upper()
            _fail(f"invalid setting {name}={err.get('input')!r}: {err['msg']}")
        except SettingsError as exc:
            _fail(f"invalid setting: {exc} (list values are JSON, e.g. '[\"https://x\"]')")
        except KeyboardInterrupt:
            _fail("interrupted; the existing index is unchanged", 130)
        except Exception as exc:  # an unexpected bug: still one line, with a way to see more
            if os.environ.get("QA_DEBUG"):
                raise
            _fail(f"unexpected {exc.__class__.__name__}: {exc} (set QA_DEBUG=1 for a traceback)")
        return None

    return wrapper  # type: ignore[return-value]


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _reader_settings(**overrides: Any) -> Settings:
    """Settings of a command over an existing index: its corpus is the index's own
    unless --corpus or QA_CORPUS names one."""
    from qa.config import with_index_corpus

    return with_index_corpus(_settings(**overrides))


def corpus_options(func: F) -> F:
    func = click.option("--corpus", type=click.Path(path_type=Path), default=None,
                        help="Corpus folder [env QA_CORPUS; default: the one an existing index "
                        "was built from, else ./corpus].")(func)
    func = click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None,
                        help="Index folder [env QA_INDEX, default ./index].")(func)
    func = click.option("--embedder", default=None,
                        help="use-m3 (default), st:<model name or path>, hash [env QA_EMBEDDER].")(
        func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qa")
def cli() -> None:
    """Ask questions of a folder of documents; answers cite the exact characters."""


@cli.command("index")
@corpus_options
@click.option("--chunk-size", type=click.IntRange(50, 20_000), default=None,
              help="Characters per chunk [env QA_CHUNK_SIZE].")
@click.option("--chunk-overlap", type=click.IntRange(0, 10_000), default=None,
              help="Characters shared by neighbouring chunks [env QA_CHUNK_OVERLAP].")
@click.option("--optimize", is_flag=True,
              help="Merge all segments into one (drops deleted documents for good).")
@click.option("--rebuild", is_flag=True,
              help="Ignore the existing index and build a new one from scratch.")
@click.option("--check", is_flag=True,
              help="Verify every document's text against its hash and every segment file; "
                   "change nothing.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Processes that embed in parallel [default: up to 2 cores].")
@click.option("--wait", type=click.FloatRange(0), default=None,
              help="Seconds to wait for another qa index on the same folder [default: forever].")
@click.option("--retry-skipped", is_flag=True,
              help="Parse again the files an earlier build skipped (by default an unchanged "
                   "skipped file is not parsed again).")
@click.option("--restore", default=None, metavar="SNAPSHOT",
              help="Serve this existing snapshot again (snap-NNNNNN): the repair named when "
                   "CURRENT is damaged.")
@click.option("--parse-cpu-seconds", type=click.FloatRange(0, 86_400, min_open=True),
              default=None, help="CPU seconds a file may take to parse [env "
              "QA_PARSE_CPU_SECONDS, default 20].")
@click.option("--parse-memory-mb", type=click.IntRange(256, 1_048_576), default=None,
              help="Address space of a parsing process, MB [env QA_PARSE_MEMORY_MB, "
                   "default 2048].")
@click.option("--parse-workers", type=click.IntRange(0, 64), default=None,
              help="Parsing processes; 0 parses in this process, without limits [env "
                   "QA_PARSE_WORKERS, default 2].")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
              metavar="[ADDRESS]",
              help="Embed on a Ray cluster at ADDRESS (HOST:PORT, ray://HOST:PORT), or on a "
                   "local Ray without one; --workers actors [default: 2]. Needs qa[ray].")
@handle_errors
def index_cmd(
    corpus: Path | None, index_dir: Path | None, embedder: str | None,
    chunk_size: int | None, chunk_overlap: int | None, optimize: bool, rebuild: bool,
    check: bool, workers: int | None, wait: float | None, retry_skipped: bool,
    restore: str | None, parse_cpu_seconds: float | None, parse_memory_mb: int | None,
    parse_workers: int | None, ray_address: str | None,
) -> None:
    """Build or update the index (only new or changed documents are embedded)."""
    from qa.embedding import make_embedder
    from qa.index import build_index, restore_snapshot, verify_index

    if restore is not None:  # the repair of a damaged CURRENT: its manifest is not read
        s = _settings(index=index_dir, embedder=embedder)
        generation = restore_snapshot(s.index, restore, embedder=make_embedder(s.embedder),
                                      wait=wait)
        click.echo(f"the index at {s.index} serves {generation} again", err=True)
        return
    s = _reader_settings(corpus=corpus, index=index_dir, embedder=embedder,
                         chunk_size=chunk_size, chunk_overlap=chunk_overlap,
                         parse_cpu_seconds=parse_cpu_seconds, parse_memory_mb=parse_memory_mb,
                         parse_workers=parse_workers)
    if ray_address is not None and not check:
        from qa.distributed import import_ray

        import_ray()  # the install hint at once, before the model loads
    emb = make_embedder(s.embedder)
    if check:
        problems = verify_index(s.index, embedder=emb)
        for problem in problems:
            click.echo(f"problem: {problem}", err=True)
        if problems:
            _fail(f"{len(problems)} problem(s) in the index at {s.index}; "
                  "run `qa index --rebuild` to rebuild it")
        click.echo(f"the index at {s.index} is healthy", err=True)
        return
    if ray_address is not None:
        from qa.distributed import ray_build_index

        with progress_bar("indexing on Ray") as progress:
            report = ray_build_index(
                s.corpus, s.index, embedder=emb, workers=workers or 2,
                address=None if ray_address == "local" else ray_address,
                chunk_size=s.chunk_size, chunk_overlap=s.chunk_overlap, progress=progress,
                optimize=optimize, rebuild=rebuild, wait=wait,
                parse_limits=s.parse_limits(), retry_skipped=retry_skipped)
        print_report(report)
        return
    with progress_bar("indexing") as progress:
        report = build_index(s.corpus, s.index, embedder=emb, chunk_size=s.chunk_size,
                             chunk_overlap=s.chunk_overlap, progress=progress,
                             optimize=optimize, rebuild=rebuild, workers=workers, wait=wait,
                             parse_limits=s.parse_limits(), retry_skipped=retry_skipped)
    print_report(report)


def load_or_build(s: Settings) -> Any:
    """Open the index for commands that read it, building it first if there is none."""
    from qa.embedding import make_embedder
    from qa.index import check_corpus, corpus_changes, index_exists, open_index

    emb = make_embedder(s.embedder)
    if not index_exists(s.index):
        click.echo(f"no index at {s.index} yet: building it from {s.corpus}", err=True)
    with progress_bar("embedding") as progress:
        index, report = open_index(s.corpus, s.index, embedder=emb, chunk_size=s.chunk_size,
                                   chunk_overlap=s.chunk_overlap, progress=progress,
                                   parse_limits=s.parse_limits())
    if report is not None:
        print_report(report)
    else:
        if "corpus" in s.model_fields_set:  # named by --corpus or QA_CORPUS: must match
            check_corpus(index, s.corpus)
        changes = corpus_changes(index, s.corpus)
        if changes:
            shown = ", ".join(changes[:3]) + (", ..." if len(changes) > 3 else "")
            click.echo(f"warning: {len(changes)} file(s) changed in {s.corpus} since the index "
                       f"was built ({shown}); run `qa index` to include them", err=True)
    return index


@cli.command("ask")
@click.argument("question")
@click.option("-k", "--top-k", "k", type=click.IntRange(1, 50), default=5, show_default=True,
              help="Number of cited passages.")
@click.option("--json", "as_json", is_flag=True, help="Print the result object as JSON.")
@click.option("--doc-id", "doc_ids", multiple=True, help="Only search these documents.")
@click.option("--date-from", default=None, help="Only documents dated on or after YYYY-MM-DD.")
@click.option("--date-to", default=None, help="Only documents dated on or before YYYY-MM-DD.")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid",
              show_default=True, help="Retrieval mode.")
@corpus_options
@handle_errors
def ask_cmd(
    question: str, k: int, as_json: bool, doc_ids: tuple[str, ...], date_from: str | None,
    date_to: str | None, mode: str, corpus: Path | None, index_dir: Path | None,
    embedder: str | None,
) -> None:
    """Answer QUESTION with a sentence from the corpus and the passages that support it."""
    from qa.answering import answer_question, validate_question
    from qa.temporal import parse_date

    validate_question(question, k)  # before any loading: bad input fails fast
    parse_date(date_from, "date_from")
    parse_date(date_to, "date_to")
    s = _reader_settings(corpus=corpus, index=index_dir, embedder=embedder)
    index = load_or_build(s)
    result = answer_question(index, question, k=k, doc_ids=list(doc_ids) or None,
                             date_from=date_from, date_to=date_to, mode=mode)  # type: ignore[arg-type]
    if as_json:
        # Exactly what POST /ask returns: the result and the index generation that answered.
        out = result.to_dict() | {"generation": index.generation}
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        click.echo(format_answer(result.to_dict(), color=sys.stdout.isatty()))


@cli.command("eval")
@click.argument("questions_file", metavar="QUESTIONS.jsonl",
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--k", "k", type=click.IntRange(1, 50), default=10, show_default=True,
              help="Passages cited per question (the @10 metrics need k >= 10).")
@click.option("--url", default=None,
              help="Evaluate a running service (POST URL/ask) instead of the library; "
                   "sends QA_API_KEY as a bearer token.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the JSON report (config, metrics, per-question results) here.")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a Markdown report here.")
@click.option("--compare", "compare_to", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="An earlier --out report: show deltas with p-values.")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default=None,
              help="Retrieval mode of a library run [default: hybrid].")
@click.option("--label", default=None, help="Name of this run in reports.")
@click.option("--missing-evidence", is_flag=True,
              help="Keep questions whose evidence the extracted text lacks (counted as "
                   "retrieval misses, with a warning) instead of refusing the file.")
@corpus_options
@handle_errors
def eval_cmd(
    questions_file: Path, k: int, url: str | None, out: Path | None, markdown: Path | None,
    compare_to: Path | None, mode: str | None, label: str | None, missing_evidence: bool,
    corpus: Path | None, index_dir: Path | None, embedder: str | None,
) -> None:
    """Score qa on a JSONL question set: retrieval, answers, abstention, latency."""
    from qa import evaluation as ev

    questions = ev.read_questions(questions_file)  # a bad file fails before any loading
    index_folder = (_settings(index=index_dir)).index
    for target in (out, markdown):  # never over a live snapshot or CURRENT
        if target is not None:
            ev.check_output_path(target, index_folder)
    old = ev.load_report(compare_to) if compare_to else None
    if old is not None:  # before any work: a comparison that cannot be made fails now
        for warning in ev.check_comparable(old, k=k, questions_file=str(questions_file)):
            click.echo(f"warning: {warning}", err=True)
    config: dict[str, Any] = {"questions_file": str(questions_file)}
    answer_fn: ev.AnswerFn
    if url:
        if mode or corpus or index_dir or embedder:
            raise QAError("--url evaluates a running service: --mode, --corpus, --index and "
                          "--embedder apply to library runs only")
        client = ev.ServiceClient(url, api_key=_settings().api_key)
        click.get_current_context().call_on_close(client.close)
        documents, answer_fn = client.documents(), client.answer
        config.update(label=label or url, url=url)
    else:
        s = _reader_settings(corpus=corpus, index=index_dir, embedder=embedder)
        index = load_or_build(s)
        documents, answer_fn = ev.index_documents(index), ev.library_answer_fn(
            index, mode=mode or "hybrid")  # type: ignore[arg-type]
        emb = index.manifest.get("embedder", {}).get("id")
        config.update(label=label or f"{mode or 'hybrid'}/{emb}", mode=mode or "hybrid",
                      embedder=emb, index=str(s.index), corpus=str(s.corpus),
                      chunking=index.manifest.get("chunking"), index_built_at=index.built_at)
    missing: list[str] | None = [] if missing_evidence else None
    questions = ev.locate_evidence(questions, documents, source=str(questions_file),
                                   missing=missing)
    if missing:
        click.echo(f"warning: {len(missing)} evidence item(s) not in the extracted text, "
                   f"counted as retrieval misses: {missing[0]}", err=True)
    with progress_bar("questions") as progress:
        results = ev.run_eval(questions, answer_fn, k=k, progress=progress)
    report = ev.make_report(results, k=k, config=config)
    if out:  # written before comparing: a failed comparison never loses the run
        ev.write_report(report, out)
    comparison = ev.compare_reports(old, report) if old else None
    if markdown:
        ev.write_markdown(report, markdown, comparison=comparison)
    click.echo(ev.format_table(report))
    if comparison:
        click.echo()
        click.echo(ev.format_comparison(comparison))


@cli.command("eval-report")
@click.argument("reports", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the Markdown comparison here (default: print it).")
@handle_errors
def eval_report_cmd(reports: tuple[Path, ...], markdown: Path | None) -> None:
    """Compare several `qa eval --out` reports in one Markdown table."""
    from qa import evaluation as ev

    loaded = [ev.load_report(path) for path in reports]
    if markdown:
        ev.write_comparison_markdown(loaded, markdown)
        click.echo(f"wrote {markdown}", err=True)
    else:
        click.echo(ev.comparison_markdown(loaded), nl=False)


def _check_port_free(host: str, port: int) -> None:
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise QAError(f"cannot listen on {host}: {exc.strerror}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise QAError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True,
              help="TCP port.")
@corpus_options
@handle_errors
def serve_cmd(host: str, port: int, corpus: Path | None, index_dir: Path | None,
              embedder: str | None) -> None:
    """Serve the page at / and the HTTP API: POST /ask, GET /documents, POST /index; OpenAPI
    docs at /docs.

    Set QA_API_KEY to require 'Authorization: Bearer <key>' (and to allow POST /index).
    Limits: QA_LIMIT_CONCURRENCY, QA_TIMEOUT_HEADERS, QA_TIMEOUT_KEEP_ALIVE (README, HTTP API).
    """
    from qa.api import create_app
    from qa.api.server import run

    s = _reader_settings(corpus=corpus, index=index_dir, embedder=embedder)
    _check_port_free(host, port)
    # Build a missing index with a progress bar, and refuse a mismatched or damaged one with
    # the usual one-line error, before uvicorn starts; the app serves this same Index (it is
    # opened once).
    index = load_or_build(s)
    # One process: the live index (and its swap on POST /index) lives in this process.
    run(create_app(s, index=index), s, host=host, port=port)


@cli.command("mcp")
@click.option("--transport", type=click.Choice(["stdio", "streamable-http"]), default="stdio",
              show_default=True,
              help="stdio: started by an MCP client; streamable-http: serve http://HOST:PORT/mcp.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address for streamable-http (it has no API key: keep it on loopback).")
@click.option("--port", type=click.IntRange(1, 65535), default=8001, show_default=True,
              help="TCP port for streamable-http.")
@corpus_options
@handle_errors
def mcp_cmd(transport: str, host: str, port: int, corpus: Path | None, index_dir: Path | None,
            embedder: str | None) -> None:
    """Serve the tools ask, search and get_document to AI assistants (Model Context Protocol).

    Needs the mcp extra: pip install 'qa[mcp]'. Logs go to stderr; stdout is the protocol.
    """
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise QAError("`qa mcp` needs the MCP SDK: pip install 'qa[mcp]'") from None
    from qa import mcp as qa_mcp

    s = _reader_settings(corpus=corpus, index=index_dir, embedder=embedder)
    if transport == "streamable-http":
        _check_port_free(host, port)
    index = load_or_build(s)
    qa_mcp.run(index, transport=transport, host=host, port=port)


def main() -> None:
    cli(prog_name="qa")
