"""Load benchmark for the HTTP API: a real `qa serve` on 127.0.0.1, N POST /ask at a fixed
concurrency (English and French questions), and one POST /index midway after a corpus file
has changed, so the re-index embeds for real while the asks go on.

Prints throughput (req/s), latency percentiles (ms) and the error count (any non-200 or
transport error; it must be 0), and writes them as JSON with --out. Self-contained and
bounded: its own temporary copy of the corpus and index, loopback traffic only, a fixed
number of requests, a timeout on each, and the server is always stopped.

    python benchmarks/load.py --out benchmarks/load.json
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import (
    ServerError,
    free_port,
    percentile,
    qa_command,
    questions,
    stop_server,
    wait_ready,
)
from _common import start_server as start_qa_server

KEY = "load-benchmark-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
ROOT = Path(__file__).resolve().parent.parent


def start_server(base: Path, port: int, embedder: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")} | {"QA_API_KEY": KEY}
    command = [*qa_command(), "serve", "--host", "127.0.0.1", "--port", str(port),
               "--corpus", str(base / "corpus"), "--index", str(base / "index"),
               "--embedder", embedder]
    return start_qa_server(command, log=base / "server.log", env=env, cwd=base)


async def run_load(url: str, base: Path, *, total: int, concurrency: int,
                   timeout: float) -> dict[str, Any]:
    qs = questions()
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    failures: list[str] = []
    reindex: dict[str, Any] = {}
    ask_times: list[tuple[float, float]] = []
    next_request = 0
    midpoint = asyncio.Event()
    began = time.perf_counter()

    limits = httpx.Limits(max_connections=concurrency + 1, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=timeout,
                                 limits=limits) as client:

        async def worker() -> None:
            nonlocal next_request
            while next_request < total:
                i = next_request
                next_request += 1
                if i == total // 2:
                    midpoint.set()
                started = time.perf_counter()
                try:
                    r = await client.post("/ask", json={"question": qs[i % len(qs)], "k": 5})
                    key = str(r.status_code)
                    if r.status_code != 200:
                        failures.append(f"{r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as exc:
                    key = exc.__class__.__name__
                    failures.append(f"{key} at {time.perf_counter() - began:.2f}s after "
                                    f"{time.perf_counter() - started:.2f}s: {exc!r} "
                                    f"cause {exc.__cause__!r} / {exc.__context__!r}")
                ended = time.perf_counter()
                latencies.append(ended - started)
                ask_times.append((started, ended))
                statuses[key] = statuses.get(key, 0) + 1

        async def reindex_midway() -> None:
            await midpoint.wait()
            # Change one document so the re-index really embeds (and swaps) something.
            doc = sorted((base / "corpus").glob("*.txt"))[-1]
            doc.write_text(doc.read_text(encoding="utf-8")
                           + "\nAjout du banc d’essai : une phrase de plus pour la réindexation.",
                           encoding="utf-8")
            started = time.perf_counter()
            try:
                r = await client.post("/index", timeout=600)
                reindex.update(status=r.status_code,
                               report=r.json() if r.status_code == 200 else r.text)
            except httpx.HTTPError as exc:
                reindex.update(status=exc.__class__.__name__, report=str(exc))
            reindex.update(started=started, seconds=round(time.perf_counter() - started, 3))

        await asyncio.gather(reindex_midway(), *(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - began

    latencies.sort()
    r_start = reindex.pop("started", began)
    r_end = r_start + float(reindex.get("seconds", 0))
    reindex["asks_completed_during"] = sum(1 for s, e in ask_times if s >= r_start and e <= r_end)
    ms = [v * 1000 for v in latencies]
    return {
        "requests": len(latencies),
        "concurrency": concurrency,
        "seconds": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 1),
        "latency_ms": {
            "p50": round(percentile(ms, 50), 1),
            "p90": round(percentile(ms, 90), 1),
            "p99": round(percentile(ms, 99), 1),
            "max": round(ms[-1], 1),
            "mean": round(sum(ms) / len(ms), 1),
        },
        "errors": len(failures),
        "first_errors": failures[:5],
        "status_counts": statuses,
        "reindex": reindex,
        "questions": len(qs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="POST /ask to send")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--embedder", default="use-m3")
    parser.add_argument("--timeout", type=float, default=120.0, help="per request, seconds")
    parser.add_argument("--out", type=Path, default=None, help="write the numbers here (JSON)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="qa-load-") as tmp:
        base = Path(tmp)
        shutil.copytree(ROOT / "corpus", base / "corpus")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = start_server(base, port, args.embedder)
        try:
            t0 = time.perf_counter()
            try:
                wait_ready(process, url, base / "server.log", timeout=300)
            except ServerError as exc:
                raise SystemExit(str(exc)) from None
            startup = time.perf_counter() - t0
            print(f"server ready in {startup:.1f}s (index built at start-up); "
                  f"{args.requests} asks at concurrency {args.concurrency}...", file=sys.stderr)
            result = asyncio.run(run_load(url, base, total=args.requests,
                                          concurrency=args.concurrency, timeout=args.timeout))
        finally:
            stop_server(process)
        if result["errors"]:  # keep what the server said, minus its access log
            lines = (base / "server.log").read_text(errors="replace").splitlines()
            result["server_log"] = [ln for ln in lines if '" 200' not in ln][-30:]

    result = {
        "benchmark": "qa serve: POST /ask under load, one POST /index midway",
        "command": "python benchmarks/load.py " + " ".join(sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "embedder": args.embedder,
        "startup_seconds": round(startup, 1),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **result,
    }
    lat = result["latency_ms"]
    reindex = result["reindex"]
    print(f"requests     {result['requests']} at concurrency {result['concurrency']} "
          f"in {result['seconds']} s")
    print(f"throughput   {result['throughput_rps']} req/s")
    print(f"latency      p50 {lat['p50']} ms   p90 {lat['p90']} ms   p99 {lat['p99']} ms   "
          f"max {lat['max']} ms")
    print(f"errors       {result['errors']}")
    print(f"re-index     status {reindex.get('status')} in {reindex.get('seconds')} s, "
          f"{reindex.get('asks_completed_during')} asks completed meanwhile")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n",
                            encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    if result["errors"] or reindex.get("status") != 200:
        sys.exit(1)


if __name__ == "__main__":
    main()
