"""What the CLI prints: progress bars, a build report, an answer with its citations."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A click progress bar on stderr with rate and ETA, driven by (done, total) callbacks
    (done and total in characters of the corpus)."""
    bars: list[Any] = []
    seen = [0]
    started = time.monotonic()

    def update(done: int, total: int) -> None:
        if not sys.stderr.isatty():  # logs and pipes get the summary line only
            return
        if not bars:
            bars.append(click.progressbar(
                length=max(total, 1), label=label, file=sys.stderr, show_percent=True,
                show_eta=True, item_show_func=lambda rate: rate,
            ))
            bars[0].__enter__()
        rate = done / max(time.monotonic() - started, 1e-6)
        bars[0].update(done - seen[0], f"{rate / 1000:,.0f}k chars/s")
        seen[0] = done

    try:
        yield update
    finally:
        if bars:
            bars[0].__exit__(None, None, None)


def print_report(report: Any) -> None:
    """A build report on stderr: counts, formats, skipped files and warnings."""
    click.echo(
        f"indexed {report.documents} documents, {report.chunks} chunks in {report.seconds:.1f}s "
        f"(added {report.added}, changed {report.changed}, unchanged {report.unchanged}, "
        f"removed {report.removed}; skipped {len(report.skipped)} file(s); "
        f"embedded {report.embedded_chunks} chunk(s); {report.segments} segment(s)"
        + (f", {report.merged} merged" if report.merged else "") + ")",
        err=True,
    )
    for f in getattr(report, "formats", []):
        pages = ""
        if f.pages:
            speed = f" at {f.pages_per_second:.0f} pages/s" if f.pages_per_second else ""
            pages = f", {f.pages} page{'s' if f.pages > 1 else ''} parsed{speed}"
        kept = f", {f.unchanged} unchanged" if f.unchanged else ""
        click.echo(f"  {f.format}: {f.read} read{kept}, {f.skipped} skipped{pages}", err=True)
    # A format whose library cannot be imported is one line at the end, not one per file.
    unreadable = {f.unreadable: f for f in getattr(report, "formats", []) if f.unreadable}
    for skipped in report.skipped:
        if skipped.reason not in unreadable:
            click.echo(f"warning: skipped {skipped.path}: {skipped.reason}", err=True)
    for note in getattr(report, "warnings", []):
        click.echo(f"warning: {note.path}: {note.reason}", err=True)
    for reason, f in unreadable.items():
        n = sum(1 for skipped in report.skipped if skipped.reason == reason)
        what = (f"no {f.format} file could be read ({n} skipped)" if not f.read
                else f"{n} {f.format} file(s) could not be read")
        click.echo(f"warning: {what}: {reason}", err=True)
    if getattr(report, "up_to_date", False):
        click.echo(f"index is up to date ({report.generation}): nothing changed, nothing "
                   "committed", err=True)


def _highlight(text: str, start: int, end: int, color: bool) -> str:
    if color:
        return text[:start] + click.style(text[start:end], bold=True, underline=True) + text[end:]
    return f"{text[:start]}>>{text[start:end]}<<{text[end:]}"


def _page(item: dict[str, Any]) -> str:
    """What follows the file name: its page (PDFs) and its section (heading path)."""
    page = f", page {item['page']}" if item.get("page") else ""
    return page + (f", § {item['section']}" if item.get("section") else "")


def format_answer(result: dict[str, Any], *, color: bool) -> str:
    """Readable rendering of an answer: the answer, then numbered citations."""
    lines = []
    span = result["answer_span"]
    short = result.get("short_answer")
    if result["abstained"]:
        lines.append("Not found in these documents "
                     f"(confidence {result['confidence']:.2f}).")
        if result.get("note"):
            lines.append(result["note"])
        if result["citations"]:
            lines.append("Closest passages, which do not answer it:")
    else:
        sentence = result["answer"]
        if short:
            value = short["value"]
            shown = f" ({value})" if value is not None and str(value) != short["text"] else ""
            lines.append(f"{short['text']}{shown}  [{short['kind']}]")
            sentence = _highlight(sentence, short["start"] - span["start"],
                                  short["end"] - span["start"], color)
        # On one line: a sentence wrapped in its source (PDF lines) reads as one. `--json`
        # keeps the exact text.
        lines.append(" ".join(sentence.split()))
        lines.append(f"  — {span['doc_id']}{_page(span)}, characters {span['start']}–{span['end']}"
                     f" (confidence {result['confidence']:.2f})")
    for c in result["citations"]:
        lines.append("")
        lines.append(f"[{c['rank']}] {c['doc_id']}{_page(c)}  characters {c['start']}–{c['end']}"
                     f"  score {c['score']:.3f}")
        text = c["text"]
        if span and span["doc_id"] == c["doc_id"] and c["start"] <= span["start"] \
                and span["end"] <= c["end"]:
            text = _highlight(text, span["start"] - c["start"], span["end"] - c["start"], color)
        lines.extend("    " + line for line in text.splitlines())
    return "\n".join(lines)
