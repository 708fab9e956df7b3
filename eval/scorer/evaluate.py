"""Run `qa eval` on every set of eval/scorer/sets.json, and compare two such runs in a table.

    python eval/scorer/evaluate.py run OUT_DIR [--index-root DIR] [--part tuning|heldout|both]
    python eval/scorer/evaluate.py table BEFORE_DIR [...] AFTER_DIR > table.md

`run` writes OUT_DIR/<set>.json (the `qa eval --out` report) and, with --markdown, the
Markdown report and its reliability diagram. Every set runs with --missing-evidence: evidence
the HTML extraction lost counts as a retrieval miss instead of refusing the file. To measure
another checkout ("before"), run this script with that checkout first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
COLUMNS = [("accuracy", "accuracy"), ("false_abstention", "false abst."),
           ("abstention_near_miss", "near-miss abst."), ("abstention_off_topic", "off-topic abst."),
           ("short_hit", "short answer"), ("utility", "utility")]


def set_name(path: str) -> str:
    return path.removeprefix("eval/").removesuffix(".jsonl").replace("/", "_")


def run(out: Path, index_root: Path, part: str, markdown: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    corpora = json.loads((HERE / "sets.json").read_text(encoding="utf-8"))["corpora"]
    for entry in corpora:
        for p in (["tuning", "heldout"] if part == "both" else [part]):
            for qfile in entry[p]:
                name = set_name(qfile)
                cmd = [sys.executable, "-c", "from qa.cli import main; main()", "eval", qfile,
                       "--index", str(index_root / entry["name"]),
                       "--out", str(out / f"{name}.json"), "--missing-evidence",
                       "--label", f"{name} ({p})"]
                if markdown:
                    cmd += ["--markdown", str(out / f"{name}.md")]
                done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                                      env=dict(os.environ))
                if done.returncode:
                    print(f"{qfile}: failed: {done.stderr.strip()[-300:]}", file=sys.stderr)


def table(*dirs: Path) -> str:
    """One row per set, each cell the runs' values in order ('before → after')."""
    corpora = json.loads((HERE / "sets.json").read_text(encoding="utf-8"))["corpora"]
    lines = ["| set | part | questions | " + " | ".join(label for _, label in COLUMNS) + " |",
             "|---|---|---:|" + "---:|" * len(COLUMNS)]

    def fmt(v: object) -> str:
        return "–" if not isinstance(v, int | float) else f"{v:.2f}"

    for entry in corpora:
        for part in ("tuning", "heldout"):
            for qfile in entry[part]:
                name = set_name(qfile)
                runs = []
                for d in dirs:
                    f = d / f"{name}.json"
                    runs.append(json.loads(f.read_text(encoding="utf-8"))["summary"]["overall"]
                                if f.exists() else {})
                n = next((r["questions"] for r in reversed(runs) if r.get("questions")), "?")
                cells = [" → ".join(fmt(r.get(k)) for r in runs) for k, _ in COLUMNS]
                lines.append(f"| {name} | {part} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("out", type=Path)
    r.add_argument("--index-root", type=Path, default=Path("/tmp/qa-scorer-indexes"))
    r.add_argument("--part", choices=["tuning", "heldout", "both"], default="both")
    r.add_argument("--markdown", action="store_true")
    t = sub.add_parser("table")
    t.add_argument("runs", type=Path, nargs="+", help="run folders, oldest first")
    args = ap.parse_args()
    if args.command == "run":
        run(args.out, args.index_root, args.part, args.markdown)
    else:
        print(table(*args.runs), end="")


if __name__ == "__main__":
    main()
