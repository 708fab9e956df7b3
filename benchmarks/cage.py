"""What the parsing cage costs: reading corpora in worker processes (qa.documents.cage) vs in
this process, same run, medians.

    python benchmarks/cage.py [--repeat 3] [--out benchmarks/results/cage.json]

Corpora: the shipped sample (corpus/), the real ones under ~/.cache/qa/corpora when present
(Debian Reference HTML and PDF: `python eval/fetch_corpora.py`), and ~2,000 small text files
copied from /usr/share/doc (copyright files, READMEs) and the man pages. Each is read by
`read_corpus` with workers=0 (in process, no limits), 1 and 2 (caged); the first caged run of
each corpus also pays the workers' start, reported apart as `cold`. Then whole builds
(`build_index --rebuild`): the shipped corpus with the default model, the small texts with the
`hash` embedder (so that parsing, not embedding, dominates).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.documents import ParseLimits, read_corpus  # noqa: E402
from qa.documents.cage import close_pools  # noqa: E402
from qa.embedding import make_embedder  # noqa: E402
from qa.index import build_index  # noqa: E402

CORPORA = Path.home() / ".cache" / "qa" / "corpora"


def small_texts(dest: Path, limit: int = 2000) -> Path:
    """Up to `limit` small text files (under 64 KB) from /usr/share/doc and the man pages."""
    dest.mkdir(parents=True, exist_ok=True)
    sources = sorted(Path("/usr/share/doc").rglob("*"))
    sources += sorted((ROOT / "eval" / "manpages" / "corpus").glob("*"))
    n = 0
    for src in sources:
        if n >= limit:
            break
        if src.suffix == ".gz" or not src.is_file() or src.is_symlink():
            continue
        try:
            size = src.stat().st_size
            if not 200 <= size <= 65_536:
                continue
            data = src.read_bytes()
            data.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        (dest / f"{n:05d}.txt").write_bytes(data)
        n += 1
    return dest


def timed(corpus: Path, workers: int) -> tuple[float, int, int]:
    started = time.perf_counter()
    result = read_corpus(corpus, limits=ParseLimits(workers=workers))
    return time.perf_counter() - started, len(result.documents), len(result.skipped)


def build_timed(corpus: Path, index: Path, embedder: object, workers: int) -> float:
    """A full `build_index --rebuild` (read, chunk, embed, write), seconds."""
    started = time.perf_counter()
    build_index(corpus, index, embedder=embedder, rebuild=True,  # type: ignore[arg-type]
                parse_limits=ParseLimits(workers=workers))
    return time.perf_counter() - started


def builds(corpora: dict[str, tuple[Path, str]], tmp: Path, repeat: int) -> list[dict[str, object]]:
    rows = []
    for label, (corpus, spec) in corpora.items():
        embedder = make_embedder(spec)
        build_timed(corpus, tmp / "warm", embedder, 2)  # model loaded, workers started
        row: dict[str, object] = {"build": label, "embedder": spec}
        for workers in (0, 2):
            runs = [build_timed(corpus, tmp / f"ix{workers}", embedder, workers)
                    for _ in range(repeat)]
            row[f"median_w{workers}"] = round(statistics.median(runs), 3)
        row["ratio_w2"] = round(float(row["median_w2"])  # type: ignore[arg-type]
                                / float(row["median_w0"]), 2)  # type: ignore[arg-type]
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="qa-cage-"))
    corpora = {"shipped (5 txt)": ROOT / "corpus"}
    for name, label in (("debian-reference-en", "debian-reference-en (html)"),
                        ("debian-reference-pdf", "debian-reference (2 pdf)")):
        if (CORPORA / name).is_dir():
            corpora[label] = CORPORA / name
    corpora["small texts"] = small_texts(tmp / "small")
    rows = []
    try:
        for label, corpus in corpora.items():
            close_pools()  # each corpus starts cold
            row: dict[str, object] = {"corpus": label}
            for workers in (0, 1, 2):
                runs = [timed(corpus, workers) for _ in range(args.repeat + (workers > 0))]
                if workers:
                    row[f"cold_w{workers}"] = round(runs[0][0], 3)
                    runs = runs[1:]
                    close_pools() if workers == 1 else None
                row[f"median_w{workers}"] = round(statistics.median(r[0] for r in runs), 3)
                row["documents"], row["skipped"] = runs[0][1], runs[0][2]
            base = float(row["median_w0"])  # type: ignore[arg-type]
            for workers in (1, 2):
                row[f"ratio_w{workers}"] = round(float(row[f"median_w{workers}"])  # type: ignore[arg-type]
                                                 / max(base, 1e-9), 2)
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
        rows += builds({"shipped (5 txt)": (ROOT / "corpus", "use-m3"),
                        "small texts": (corpora["small texts"], "hash")}, tmp, args.repeat)
    finally:
        close_pools()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
