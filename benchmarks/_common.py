"""Helpers shared by the benchmark scripts: the question set, a free loopback port, the `qa`
command of this interpreter, percentiles, and starting / waiting for / stopping `qa serve`.

The scripts run as `python benchmarks/<name>.py`, so this module is imported as `_common`.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
FALLBACK_QUESTIONS = [
    "When did Lavrov visit North Korea?",
    "Dans quelle ville les chefs de la diplomatie du G7 se sont-ils retrouvés ?",
    "Who is the North Korean foreign minister?",
    "Quand Kim Jong-un a-t-il rencontré le ministre russe ?",
]


class ServerError(RuntimeError):
    """`qa serve` exited or did not become ready; the message holds its log."""


def questions() -> list[str]:
    """The committed question set, English and French interleaved; a fallback without it."""
    path = ROOT / "eval" / "questions.jsonl"
    by_lang: dict[str, list[str]] = {}
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                by_lang.setdefault(row.get("lang", "?"), []).append(row["question"])
    except (OSError, ValueError, KeyError):
        return FALLBACK_QUESTIONS
    en, fr = by_lang.get("en", []), by_lang.get("fr", [])
    mixed = [q for pair in zip(en, fr, strict=False) for q in pair]
    rest = en[len(fr):] + fr[len(en):] + [q for k, v in by_lang.items() if k not in ("en", "fr")
                                           for q in v]
    return (mixed + rest) or FALLBACK_QUESTIONS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def qa_command() -> list[str]:
    """The `qa` console script of this interpreter's environment (else the one on PATH)."""
    script = Path(sys.executable).with_name("qa")
    if script.exists():
        return [str(script)]
    found = shutil.which("qa")
    if not found:
        raise SystemExit("the qa console script is not installed (pip install -e .)")
    return [found]


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(p / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def start_server(command: list[str], *, log: Path, env: dict[str, str], cwd: Path,
                 new_session: bool = False) -> subprocess.Popen[bytes]:
    """Start `qa serve ...` (the full command) with its output going to the file `log`."""
    # A file, not a pipe: a full pipe would stall the server. The child keeps its own handle.
    with open(log, "wb") as fh:
        return subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=new_session)


def wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float) -> None:
    """Poll GET url/healthz until it answers 200; ServerError if the server exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError("qa serve exited:\n" + log.read_text(errors="replace"))
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise ServerError(f"qa serve not ready after {timeout:.0f}s:\n"
                      + log.read_text(errors="replace"))


def stop_server(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Terminate, wait (bounded), then kill if it is still running."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)
