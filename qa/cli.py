"""`qa ...`: a thin command-line shell over the library."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from qa.config import Settings
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
        except KeyboardInterrupt:
            _fail("interrupted; the existing index is unchanged", 130)
        except Exception as exc:  # an unexpected bug: still one line, with a way to see more
            if os.environ.get("QA_DEBUG"):
                raise
            _fail(f"unexpected {exc.__class__.__name__}: {exc} (set QA_DEBUG=1 for a traceback)")
        return None

    return wrapper  # type: ignore[return-value]


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A click progress bar on stderr, driven by (done, total) callbacks."""
    state: dict[str, Any] = {"bar": None, "done": 0}

    def update(done: int, total: int) -> None:
        if state["bar"] is None:
            state["bar"] = click.progressbar(
                length=max(total, 1), label=label, file=sys.stderr, show_pos=True
            )
            state["bar"].__enter__()
        state["bar"].update(done - state["done"])
        state["done"] = done

    try:
        yield update
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def corpus_options(func: F) -> F:
    func = click.option("--corpus", type=click.Path(path_type=Path), default=None,
                        help="Corpus folder [env QA_CORPUS, default ./corpus].")(func)
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


def _print_report(report: Any) -> None:
    click.echo(
        f"indexed {report.documents} documents, {report.chunks} chunks in {report.seconds:.1f}s "
        f"(added {report.added}, changed {report.changed}, unchanged {report.unchanged}, "
        f"removed {report.removed}; skipped {len(report.skipped)} file(s))",
        err=True,
    )
    for skipped in report.skipped:
        click.echo(f"warning: skipped {skipped.path}: {skipped.reason}", err=True)


@cli.command("index")
@corpus_options
@click.option("--chunk-size", type=click.IntRange(50, 20_000), default=None,
              help="Characters per chunk [env QA_CHUNK_SIZE].")
@click.option("--chunk-overlap", type=click.IntRange(0, 10_000), default=None,
              help="Characters shared by neighbouring chunks [env QA_CHUNK_OVERLAP].")
@handle_errors
def index_cmd(
    corpus: Path | None, index_dir: Path | None, embedder: str | None,
    chunk_size: int | None, chunk_overlap: int | None,
) -> None:
    """Build or update the index (only new or changed documents are embedded)."""
    from qa.embedding import make_embedder
    from qa.index import build_index

    s = _settings(corpus=corpus, index=index_dir, embedder=embedder,
                  chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    emb = make_embedder(s.embedder)
    with progress_bar("embedding") as progress:
        report = build_index(s.corpus, s.index, embedder=emb, chunk_size=s.chunk_size,
                             chunk_overlap=s.chunk_overlap, progress=progress)
    _print_report(report)


def load_or_build(s: Settings) -> Any:
    """Open the index for commands that read it, building it first if there is none."""
    from qa.embedding import make_embedder
    from qa.index import index_exists, open_index

    emb = make_embedder(s.embedder)
    if not index_exists(s.index):
        click.echo(f"no index at {s.index} yet: building it from {s.corpus}", err=True)
    with progress_bar("embedding") as progress:
        index, report = open_index(s.corpus, s.index, embedder=emb, chunk_size=s.chunk_size,
                                   chunk_overlap=s.chunk_overlap, progress=progress)
    if report is not None:
        _print_report(report)
    return index


def _highlight(text: str, start: int, end: int, color: bool) -> str:
    if color:
        return text[:start] + click.style(text[start:end], bold=True, underline=True) + text[end:]
    return f"{text[:start]}>>{text[start:end]}<<{text[end:]}"


def format_answer(result: dict[str, Any], *, color: bool) -> str:
    """Readable rendering of an answer: the answer, then numbered citations."""
    lines = []
    span = result["answer_span"]
    if result["abstained"]:
        lines.append("Not found in these documents "
                     f"(confidence {result['confidence']:.2f} is below the threshold).")
        if result["citations"]:
            lines.append("Closest passages, which do not answer it:")
    else:
        lines.append(result["answer"])
        lines.append(f"  — {span['doc_id']}, characters {span['start']}–{span['end']}"
                     f" (confidence {result['confidence']:.2f})")
    for c in result["citations"]:
        lines.append("")
        lines.append(f"[{c['rank']}] {c['doc_id']}  characters {c['start']}–{c['end']}"
                     f"  score {c['score']:.3f}")
        text = c["text"]
        if span and span["doc_id"] == c["doc_id"] and c["start"] <= span["start"] \
                and span["end"] <= c["end"]:
            text = _highlight(text, span["start"] - c["start"], span["end"] - c["start"], color)
        lines.extend("    " + line for line in text.splitlines())
    return "\n".join(lines)


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

    validate_question(question, k)  # before any loading: bad input fails fast
    s = _settings(corpus=corpus, index=index_dir, embedder=embedder)
    index = load_or_build(s)
    result = answer_question(index, question, k=k, doc_ids=list(doc_ids) or None,
                             date_from=date_from, date_to=date_to, mode=mode)  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(format_answer(result.to_dict(), color=sys.stdout.isatty()))


def main() -> None:
    cli(prog_name="qa")
