"""`qa index --ray` on this machine: local Ray with 1 and 2 embedding workers, against the
local build (one process), over a few hundred plain-text files of /usr/share/doc.

    python benchmarks/ray_build.py [--docs 300] [--max-chars 4000]

Each build is a fresh --rebuild into a temporary folder with the real default model
(use-m3). Reported: wall time of the whole build (Ray start included, and apart) and the
throughput in corpus characters per second. The machine is shared: numbers are indicative.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import tempfile
import time
from pathlib import Path

from qa.distributed import RayEmbedPool, connect, import_ray
from qa.embedding import make_embedder
from qa.index import build_index


def sample(dest: Path, n: int, max_chars: int) -> int:
    """n text files of /usr/share/doc (plain or gzipped, at most max_chars each)."""
    dest.mkdir(parents=True)
    total = 0
    count = 0
    for path in sorted(Path("/usr/share/doc").rglob("*")):
        if count >= n:
            break
        if not path.is_file() or path.stat().st_size < 1500:
            continue
        try:
            raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else \
                path.read_bytes()
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
            continue
        if "\x00" in text or sum(c.isalpha() for c in text) < len(text) // 2:
            continue
        text = text[:max_chars]
        (dest / f"{count:04d}.txt").write_text(text, encoding="utf-8")
        total += len(text)
        count += 1
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=300)
    ap.add_argument("--max-chars", type=int, default=4000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qa-ray-bench-"))
    try:
        chars = sample(work / "corpus", args.docs, args.max_chars)
        emb = make_embedder("use-m3")
        emb.embed(["warm-up"], kind="passage")
        print(f"{args.docs} documents, {chars:,} characters")
        t = time.perf_counter()
        build_index(work / "corpus", work / "local", embedder=emb, workers=1, rebuild=True)
        local = time.perf_counter() - t
        print(f"local build, 1 process: {local:.1f} s, {chars / local:,.0f} chars/s")
        ray = import_ray()
        for workers in (1, 2):
            t0 = time.perf_counter()
            connect(ray, None, workers=workers)
            pool = RayEmbedPool(ray, emb, workers)
            list(pool([["warm-up"]] * workers))  # actors up and their model loaded
            t1 = time.perf_counter()
            build_index(work / "corpus", work / f"ray{workers}", embedder=emb,
                        embed_remote=pool, rebuild=True)
            t2 = time.perf_counter()
            pool.close()
            ray.shutdown()
            print(f"local Ray, {workers} worker(s): build {t2 - t1:.1f} s "
                  f"({chars / (t2 - t1):,.0f} chars/s), Ray start + actors {t1 - t0:.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
