"""Reports: JSON files, plain-text tables and Markdown."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qa.errors import QAError
from qa.evaluation.calibration import expected_calibration_error, reliability, reliability_png
from qa.evaluation.compare import PERMUTATIONS, SEED, _run_name, compare_reports
from qa.evaluation.metrics import (
    LATENCY_METRICS,
    LOWER_IS_BETTER,
    REPORT_FORMAT,
    metric_label,
    metric_names,
)
from qa.files import write_atomic


def _write_text(path: Path, text: str) -> None:
    path = Path(path)
    if path.parent != Path():
        path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)


def write_report(report: Mapping[str, Any], path: Path) -> None:
    """Write a report as JSON (replacing the file only once written)."""
    _write_text(path, json.dumps(report, ensure_ascii=False, indent=2) + "\n")


# A report of 10k questions with their citations is a few MB.
MAX_REPORT_BYTES = 64 * 1024 * 1024


def check_output_path(path: Path, index_dir: Path) -> None:
    """Refuse a report path inside the index folder: writing there could replace a live
    snapshot or CURRENT (and `qa index` may delete what it does not know)."""
    target = Path(os.path.realpath(path))
    folder = Path(os.path.realpath(index_dir))
    if target == folder or target.is_relative_to(folder):
        raise QAError(f"{path} is inside the index folder {index_dir}: write reports elsewhere")


def _read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (a FIFO or /dev/zero refused
    without blocking or reading without end)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise QAError(f"cannot read eval report {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise QAError(f"{path} is not a regular file: give a `qa eval --out` report")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise QAError(f"{path} is larger than {limit // (1024 * 1024)} MB: is it really a "
                      "`qa eval --out` report?")
    return data


def load_report(path: Path) -> dict[str, Any]:
    """Read a JSON report written by `qa eval --out` (a regular file, bounded in size)."""
    data = _read_regular(Path(path), MAX_REPORT_BYTES)
    try:
        report = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise QAError(f"cannot read eval report {path}: {exc.__class__.__name__}") from None
    if not isinstance(report, dict) or report.get("format") != REPORT_FORMAT or not all(
        k in report for k in ("config", "summary", "questions")
    ):
        raise QAError(f"{path} is not a `qa eval --out` report (format {REPORT_FORMAT})")
    required = ("id", "lang", "question", "unanswerable", "correct", "first_relevant_rank",
                "latency_ms")
    for n, row in enumerate(report["questions"], start=1):
        missing = [k for k in required if not isinstance(row, dict) or k not in row]
        if missing:
            raise QAError(f"{path}: question row {n} lacks {', '.join(missing)}; "
                          "is it a `qa eval --out` report?")
    return report




def _fmt(value: Any, metric: str) -> str:
    if value is None:
        return "–"
    if metric in ("questions", "answerable", "unanswerable"):
        return str(value)
    if metric in LATENCY_METRICS:
        return f"{value:.1f}"
    return f"{value:.3f}"


def _summary_rows(report: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    summary = report["summary"]
    groups = [("all", summary["overall"]), *summary["by_lang"].items()]
    header = ["metric", *(name for name, _ in groups)]
    names = ["questions", "answerable", "unanswerable",
             *metric_names(int(report["config"]["k"])), *LATENCY_METRICS]
    rows = [[metric_label(m), *(_fmt(g.get(m), m) for _, g in groups)] for m in names]
    return header, rows


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                          strict=True))]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def _describe(config: Mapping[str, Any]) -> str:
    if config.get("url"):
        where = f"service {config['url']}"
    else:
        where = f"{config.get('mode', 'hybrid')} retrieval, embedder {config.get('embedder')}"
    return f"{where}, k={config['k']}, {config.get('questions_file', '')}".rstrip(", ")


def format_table(report: Mapping[str, Any]) -> str:
    """The summary as a plain-text table (rows: metrics; columns: all, then each language)."""
    header, rows = _summary_rows(report)
    config = report["config"]
    title = f"qa eval: {_run_name(report)} ({_describe(config)})"
    return f"{title}\n{_text_table(header, rows)}"


def _change_text(c: Mapping[str, Any]) -> str:
    parts = []
    if c["old_correct"] != c["new_correct"]:
        word = ("abstained", "answered") if c["unanswerable"] else ("right", "wrong")
        old = word[0] if c["old_correct"] else word[1]
        new = word[0] if c["new_correct"] else word[1]
        parts.append(f"{old} -> {new}")
    if c["old_rank"] != c["new_rank"]:
        parts.append(f"rank {c['old_rank'] or '-'} -> {c['new_rank'] or '-'}")
    return f"{c['id']} ({', '.join(parts)})"


def _delta(m: Mapping[str, Any]) -> str:
    if m["metric"] in LATENCY_METRICS:
        return f"{m['delta']:+.1f}"
    return f"{m['delta']:+.3f}"


def _p(m: Mapping[str, Any]) -> str:
    return "–" if m["p_value"] is None else f"{m['p_value']:.4f}"


def format_comparison(comparison: Mapping[str, Any]) -> str:
    """Per-metric deltas and changed questions, as plain text."""
    c = comparison
    lines = [f"compared with {c['old']['label']} ({c['old']['timestamp']}): {c['paired']} "
             f"paired questions; two-sided paired randomization test, "
             f"{c['permutations']} permutations"]
    if c["only_old"] or c["only_new"]:
        lines.append(f"not paired: {len(c['only_old'])} only in the old run, "
                     f"{len(c['only_new'])} only in this one")
    if c.get("changed_text"):
        lines.append(f"warning: {len(c['changed_text'])} paired question(s) changed wording: "
                     + ", ".join(c["changed_text"][:10]))
    rows = [[metric_label(m["metric"]), _fmt(m["old"], m["metric"]), _fmt(m["new"], m["metric"]),
             _delta(m), _p(m)] for m in c["metrics"]]
    lines.append(_text_table(["metric", "old", "new", "delta", "p"], rows))
    for name in ("better", "worse"):
        items = c[name]
        shown = ", ".join(_change_text(x) for x in items) if items else "none"
        lines.append(f"{name} ({len(items)}): {shown}")
    return "\n".join(lines)


def _md_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], *, left: int = 1
) -> list[str]:
    """A Markdown table whose first `left` columns are text and the rest numbers."""
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |",
             "|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


def _short(text: str | None, limit: int = 120) -> str:
    if text is None:
        return "(abstained)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _calibration_lines(report: Mapping[str, Any], png: str | None) -> list[str]:
    bins, left_out = reliability(report["questions"])
    ece = expected_calibration_error(bins)
    lines = ["## Calibration of confidence", "",
             "`confidence` is the estimated probability that the answer is right. Over the "
             "questions whose outcome is known (answered, or unanswerable); "
             f"{left_out} abstention(s) on answerable questions left out. Expected calibration "
             f"error: {'–' if ece is None else f'{ece:.3f}'}.", ""]
    if png:
        lines += [f"![reliability diagram: observed share right (bars) and mean confidence "
                  f"(dots) per bin; dashed: perfect calibration]({png})", ""]
    lines += _md_table(["confidence", "questions", "mean confidence", "share right"], [
        [f"{b.lo:.1f}–{b.hi:.1f}", b.n, _fmt(b.predicted, "p"), _fmt(b.observed, "p")]
        for b in bins if b.n])
    return [*lines, ""]


def _section(row: Mapping[str, Any]) -> str:
    span = row.get("answer_span") or {}
    return f" (§ {span['section']})" if span.get("section") else ""


def report_markdown(
    report: Mapping[str, Any], *, comparison: Mapping[str, Any] | None = None,
    reliability_png_name: str | None = None,
) -> str:
    """A Markdown report for humans: config, summary table, calibration, comparison, missed
    questions (`reliability_png_name`: the diagram's file, beside the Markdown)."""
    config = report["config"]
    overall = report["summary"]["overall"]
    lines = [f"# qa eval: {_run_name(report)}", ""]
    where = (f"service `{config['url']}`" if config.get("url")
             else f"library, {config.get('mode')} retrieval, embedder `{config.get('embedder')}`,"
                  f" index `{config.get('index')}`")
    lines += [
        f"- questions: `{config.get('questions_file')}` ({overall['questions']}: "
        f"{overall['answerable']} answerable, {overall['unanswerable']} unanswerable)",
        f"- run: {where}, k={config['k']}",
        f"- at: {config.get('timestamp')}",
        "",
        "## Summary",
        "",
    ]
    header, rows = _summary_rows(report)
    lines += _md_table(header, rows[3:])  # counts are in the list above
    lines.append("")
    lines += _calibration_lines(report, reliability_png_name)
    if comparison is not None:
        c = comparison
        lines += [f"## Compared with {c['old']['label']}", "",
                  f"{c['paired']} paired questions; p from a two-sided paired randomization test "
                  f"({c['permutations']} permutations, seed {c['seed']}).", ""]
        lines += _md_table(["metric", "old", "new", "delta", "p"], [
            [metric_label(m["metric"]), _fmt(m["old"], m["metric"]),
             _fmt(m["new"], m["metric"]), _delta(m), _p(m)] for m in c["metrics"]])
        for name in ("better", "worse"):
            lines += ["", f"**{name.capitalize()}** ({len(c[name])}): "
                      + (", ".join(_change_text(x) for x in c[name]) or "none")]
        lines.append("")
    missed = [r for r in report["questions"] if not r["correct"]]
    lines += [f"## Questions not passed ({len(missed)})", ""]
    if missed:
        lines += _md_table(
            ["id", "lang", "question", "answer", "short answer", "first relevant rank"],
            [[r["id"], r["lang"], ("[near-miss] " if r.get("near_miss") else "[unanswerable] "
                                   if r["unanswerable"] else "") + r["question"],
              _short(r["answer"]) + _section(r), r.get("short_answer") or "–",
              r["first_relevant_rank"] if r["first_relevant_rank"] is not None else "–"]
             for r in missed], left=5)
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def write_markdown(
    report: Mapping[str, Any], path: Path, *, comparison: Mapping[str, Any] | None = None
) -> None:
    """Write the Markdown report, and its reliability diagram beside it (NAME.reliability.png,
    drawn without matplotlib)."""
    path = Path(path)
    png = path.with_name(f"{path.stem}.reliability.png")
    if png.parent != Path():
        png.parent.mkdir(parents=True, exist_ok=True)
    bins, _ = reliability(report["questions"])
    write_atomic(png, reliability_png(bins))
    _write_text(path, report_markdown(report, comparison=comparison,
                                      reliability_png_name=png.name))


def _unique_names(reports: Sequence[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for i, report in enumerate(reports, start=1):
        name = _run_name(report)
        names.append(f"{name} #{i}" if name in names else name)
    return names


def comparison_markdown(
    reports: Sequence[Mapping[str, Any]], *, permutations: int = PERMUTATIONS, seed: int = SEED
) -> str:
    """Several runs side by side: one table per language group, then deltas vs the first run."""
    if not reports:
        raise QAError("no reports to compare")
    names = _unique_names(reports)
    files = sorted({str(r["config"].get("questions_file")) for r in reports})
    lines = ["# Evaluation runs compared", "",
             f"Question set: {', '.join(f'`{f}`' for f in files)}. "
             "Each column is one `qa eval --out` report; bold marks the best value in a row.", ""]
    lines += _md_table(["run", "mode / service", "embedder", "k", "at"], left=5, rows=[
        [n, r["config"].get("url") or r["config"].get("mode"), r["config"].get("embedder") or "–",
         r["config"].get("k"), r["config"].get("timestamp")] for n, r in zip(names, reports,
                                                                              strict=True)])
    k = min(int(r["config"]["k"]) for r in reports)
    metrics = [*metric_names(k), *LATENCY_METRICS]
    langs = sorted({lang for r in reports for lang in r["summary"]["by_lang"]})
    groups = [("All questions", "overall", None)] + [(f"Language: {lang}", "by_lang", lang)
                                                     for lang in langs]
    for title, key, lang in groups:
        summaries = [r["summary"][key] if lang is None else r["summary"][key].get(lang, {})
                     for r in reports]
        counts = sorted({s["questions"] for s in summaries if s})
        lines += ["", f"## {title} ({'/'.join(map(str, counts))} questions)", ""]
        rows = []
        for m in metrics:
            values = [s.get(m) for s in summaries]
            present = [v for v in values if v is not None]
            best = (min(present) if m in LOWER_IS_BETTER else max(present)) if present else None
            rows.append([metric_label(m), *(
                f"**{_fmt(v, m)}**" if v is not None and v == best and len(reports) > 1
                else _fmt(v, m) for v in values)])
        lines += _md_table(["metric", *names], rows)
    if len(reports) > 1:
        comparisons = [compare_reports(reports[0], r, permutations=permutations, seed=seed)
                       for r in reports[1:]]
        lines += ["", f"## Against {names[0]}", "",
                  "Difference from the first run over the questions both answered, with the "
                  f"p-value of a two-sided paired randomization test ({permutations} permutations, "
                  f"seed {seed}); latency has no test.", ""]
        by_metric: dict[str, list[str]] = {}
        for i, c in enumerate(comparisons):
            for m in c["metrics"]:
                cell = _delta(m) if m["p_value"] is None else f"{_delta(m)} (p={_p(m)})"
                by_metric.setdefault(m["metric"], ["–"] * len(comparisons))[i] = cell
        lines += _md_table(["metric", *names[1:]],
                           [[metric_label(m), *cells] for m, cells in by_metric.items()])
    return "\n".join(lines) + "\n"


def write_comparison_markdown(
    reports: Sequence[Mapping[str, Any]], path: Path, *, permutations: int = PERMUTATIONS,
    seed: int = SEED,
) -> None:
    """Write `comparison_markdown(reports)` to path (e.g. eval/REPORT.md)."""
    _write_text(path, comparison_markdown(reports, permutations=permutations, seed=seed))
