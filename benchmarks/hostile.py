"""Issue 19's acceptance run: a folder of every hostile file plus good ones, indexed by `qa
index` (the real default model) under a 3.5 GB address space (`ulimit -v`), then indexed
again (the hostile files are not parsed twice), then asked about the good files.

    python benchmarks/hostile.py [--limit-gb 3.5] [--out benchmarks/results/hostile.json]

The hostile files come from tests/hostile.py: a DOCX with 200 merged table rows, one with a
gridSpan=100000 cell, one whose zip directory declares 20 KB for 1 GiB, a PDF whose content
stream inflates to 1 GiB, a 2 KB PDF with 2^19 pages, an HTML page of 100k short
paragraphs, random bytes named .html.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hostile import write_hostile  # noqa: E402
from makefiles import make_docx, make_html, make_pdf  # noqa: E402

QUESTIONS = {
    "Quand Lavrov s'est-il rendu en Corée du Nord ?": "000_",  # the shipped corpus
    "Which bridge did the city of Ostrava close for repairs?": "ostrava.pdf",
    "Combien de vélos la mairie de Nantes a-t-elle commandés ?": "velos.docx",
    "Combien de concerts sont programmés au festival ?": "jazz.html",
}


def good_files(folder: Path) -> None:
    for path in sorted((ROOT / "corpus").iterdir()):
        if path.is_file():
            shutil.copy(path, folder / path.name)
    make_pdf(folder / "ostrava.pdf", [[
        "Ostrava city council report.",
        "The city of Ostrava closed the Sykora bridge for repairs in May 2024.",
        "The repairs of the Sykora bridge will last eight months.",
    ]])
    make_docx(folder / "velos.docx", [
        ("h1", "Plan vélo de Nantes"),
        ("p", "La mairie de Nantes a commandé 1 200 vélos électriques pour ses agents."),
        ("p", "Les vélos seront livrés au printemps."),
    ])
    make_html(folder / "jazz.html", "Le festival Jazz à Vienne revient cet été", [
        "Le festival de jazz de Vienne se tient chaque été au théâtre antique de Vienne.",
        "Cette année, quarante concerts sont programmés pendant deux semaines.",
    ])


def qa(args: list[str], *, cwd: Path, limit_kb: int
       ) -> tuple[float, subprocess.CompletedProcess[str]]:
    """`qa ARGS` of this checkout, under `ulimit -v limit_kb`; (seconds, the process)."""
    command = " ".join([f"ulimit -v {limit_kb} && exec", shlex.quote(sys.executable), "-c",
                        shlex.quote("from qa.cli import main; main()"),
                        *map(shlex.quote, args)])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)
    return time.monotonic() - started, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit-gb", type=float, default=3.5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    limit_kb = int(args.limit_gb * 1024 * 1024)
    base = Path(tempfile.mkdtemp(prefix="qa-hostile-"))
    corpus = base / "corpus"
    corpus.mkdir()
    try:
        hostile = write_hostile(corpus)
        good_files(corpus)
        index = ["index", "--corpus", str(corpus), "--index", str(base / "index")]
        first_s, first = qa(index, cwd=base, limit_kb=limit_kb)
        second_s, second = qa(index, cwd=base, limit_kb=limit_kb)
        skipped = [line for line in first.stderr.splitlines() if line.startswith("warning: skip")]
        answers = {}
        for question, expected in QUESTIONS.items():
            _, asked = qa(["ask", question, "--json", "--index", str(base / "index")],
                          cwd=base, limit_kb=limit_kb)
            out = json.loads(asked.stdout) if asked.returncode == 0 else {}
            span = out.get("answer_span") or {}
            answers[question] = {"doc_id": span.get("doc_id"), "answer": out.get("answer"),
                                 "ok": str(span.get("doc_id", "")).startswith(expected)}
        result = {
            "limit_gb": args.limit_gb,
            "hostile": hostile,
            "first_build_s": round(first_s, 1), "first_rc": first.returncode,
            "second_build_s": round(second_s, 1), "second_rc": second.returncode,
            "skipped_first": skipped,
            "skipped_second": [ln for ln in second.stderr.splitlines()
                               if ln.startswith("warning: skip")],
            "summary_first": [ln for ln in first.stderr.splitlines()
                              if ln.startswith(("indexed", "  "))],
            "answers": answers,
        }
        print(json.dumps(result, ensure_ascii=False, indent=2))
        if first.returncode:
            print(first.stderr[-3000:], file=sys.stderr)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
