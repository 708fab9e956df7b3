"""Where an index's bytes go: bytes per live chunk, by component, for one or more indexes.

    python benchmarks/index_bytes.py INDEX_DIR [INDEX_DIR ...] [--markdown OUT.md]

Reads the live snapshot (CURRENT) of each index and sums the apparent sizes of the files of
the segments it names, grouped by what they hold (file names as `qa/store/segments.py`
writes them), divided by the snapshot's live chunk count. Older snapshots and segments
kept for readers are not counted: this is the cost of the index a reader opens. A file
hard-linked into several segments (a shared sentence codebook) counts once, as `du` does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# Component -> file name prefixes (a file counts in the first component it matches).
COMPONENTS: list[tuple[str, tuple[str, ...]]] = [
    ("sentence vectors", ("sent_",)),
    ("chunk vectors", ("chunks.faiss",)),
    ("lexical postings", ("lex_",)),
    ("word vectors + words", ("words",)),
    ("trigrams", ("tri_",)),
    ("document texts", ("texts.bin",)),
    ("document rows (meta, blocks)", ("docs",)),
    ("units (chunk/sentence offsets)", ("chunks.npy", "sentences.npy", "chunk_sents.npy")),
    ("other segment files", ("",)),
]


def breakdown(index_dir: Path) -> dict[str, object]:
    """Bytes by component (and in total) of the live snapshot, its chunk and sentence counts."""
    live = (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    manifest = json.loads((index_dir / live).read_text(encoding="utf-8"))
    by: dict[str, int] = {name: 0 for name, _ in COMPONENTS}
    by["snapshot"] = (index_dir / live).stat().st_size
    seen: set[tuple[int, int]] = set()
    for entry in manifest["segments"]:
        for f in (index_dir / entry["name"]).iterdir():
            st = f.stat()
            if (st.st_dev, st.st_ino) in seen:  # hard-linked (a shared codebook): once
                continue
            seen.add((st.st_dev, st.st_ino))
            comp = next(name for name, prefixes in COMPONENTS
                        if any(f.name.startswith(p) for p in prefixes))
            by[comp] += st.st_size
    counts = manifest["counts"]
    return {"index": str(index_dir), "embedder": manifest["embedder"]["id"],
            "documents": counts["documents"], "chunks": counts["chunks"],
            "sentences": counts.get("sentences"), "bytes": by, "total": sum(by.values())}


def markdown(rows: list[dict[str, object]]) -> str:
    comps = [name for name, _ in COMPONENTS] + ["snapshot"]
    head = ["index", "embedder", "docs", "chunks", "sent/chunk", *comps, "total B/chunk"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for r in rows:
        chunks = max(1, int(r["chunks"]))  # type: ignore[call-overload]
        by: dict[str, int] = r["bytes"]  # type: ignore[assignment]
        sents = r["sentences"]
        cells = [Path(str(r["index"])).name, str(r["embedder"]), f"{r['documents']:,}",
                 f"{chunks:,}", f"{int(sents) / chunks:.1f}" if sents else "–",  # type: ignore[call-overload]
                 *(f"{by[c] / chunks:,.0f}" for c in comps),
                 f"**{int(r['total']) / chunks:,.0f}**"]  # type: ignore[call-overload]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("indexes", type=Path, nargs="+")
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = [breakdown(p) for p in args.indexes]
    table = markdown(rows)
    sys.stdout.write(table)
    if args.markdown:
        args.markdown.write_text(table, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
