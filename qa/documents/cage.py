"""Parse untrusted files in worker processes with a CPU-time and an address-space limit.

A parser (python-docx, pdfium, trafilatura/lxml) can be made to run for minutes or to
allocate gigabytes by a small hostile file. Each file is therefore read and parsed in a
worker process of a small pool (reused across files, one per core): the worker's address
space is capped with RLIMIT_AS, each file gets RLIMIT_CPU seconds of CPU time (the kernel
kills the worker with SIGXCPU past it) and a wall-clock deadline (the parent kills a worker
that blocks). A worker that dies is replaced; its file is skipped with the limit named, and
the build goes on. The parser's result (a Document, whatever fields it carries) comes back
pickled, so the cage does not depend on its fields.
"""

from __future__ import annotations

import atexit
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from qa.documents.model import Document

# The largest text a file may give (5M characters) takes pdfium about 4 s (the Debian
# Reference PDF: 580k characters in 0.4 s); trafilatura reads a 5 MB news page in about 1 s.
# 20 s is five times that, and stops trafilatura on 100k short paragraphs (23 s, quadratic).
# lxml's tree of a 20 MB page or a 32 MB DOCX XML stays under 1.5 GB; a PDF deflate bomb
# reached 2.1 GB. Two workers at 2 GB fit a 24 GB machine beside the embedder and server.
DEFAULT_CPU_SECONDS = 20.0
DEFAULT_MEMORY_MB = 2048
DEFAULT_WORKERS = 2  # one per core of the machine this is sized for
# A worker that waits (I/O, a lock) uses no CPU: the wall deadline catches it; generous, as
# the two cores are shared with the embedding and other processes.
WALL_FACTOR = 3.0
WALL_EXTRA_SECONDS = 30.0


@dataclass(frozen=True)
class ParseLimits:
    """Bounds of the parsing cage. workers=0 parses in this process, without limits."""

    cpu_seconds: float = DEFAULT_CPU_SECONDS
    memory_mb: int = DEFAULT_MEMORY_MB
    workers: int = DEFAULT_WORKERS

    @property
    def wall_seconds(self) -> float:
        return self.cpu_seconds * WALL_FACTOR + WALL_EXTRA_SECONDS


# What a worker sends back: ("ok", Document, warnings, seconds) or ("skip", reason, seconds)
# ("missing" and "retry" in place of "skip": see qa.documents.corpus.parse_outcome).
Outcome = tuple[Any, ...]


def _worker_main(conn: Connection, memory_mb: int) -> None:
    import resource

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a killed worker leaves no core file
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = memory_mb * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    from qa.documents.corpus import parse_outcome

    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        doc_id, path, root, cpu_seconds = task
        used = resource.getrusage(resource.RUSAGE_SELF)
        spent = used.ru_utime + used.ru_stime
        _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = math.ceil(spent + cpu_seconds)
        if cpu_hard != resource.RLIM_INFINITY:
            soft = min(soft, cpu_hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, cpu_hard))
        outcome = parse_outcome(doc_id, Path(path), Path(root), memory_mb=memory_mb)
        try:
            conn.send(outcome)
        except MemoryError:  # the result itself does not fit under the cap
            conn.send(("skip", f"the parser exceeded its address-space limit ({memory_mb} MB; "
                       "QA_PARSE_MEMORY_MB) sending its text back", outcome[-1]))
        except Exception as exc:  # a result that does not pickle: a parser bug
            conn.send(("skip", f"the parser's result could not be sent back "
                       f"({exc.__class__.__name__})", outcome[-1]))
        if outcome[0] == "skip" and "address-space limit" in str(outcome[1]):
            return  # a MemoryError may leave the heap fragmented: start afresh


_START_LOCK = threading.Lock()


def _start_without_main(process: Any) -> None:
    """Start a spawn/forkserver process without re-importing this program's __main__.

    multiprocessing re-runs the parent's main script in the child (as __mp_main__) unless
    it has no file: a script without an `if __name__ == "__main__"` guard would run again,
    and one read from stdin cannot start a worker at all. A worker needs only qa, so the
    child is told there is no main module to prepare.
    """
    main = sys.modules["__main__"]
    stand_in = types.ModuleType("__main__")
    with _START_LOCK:
        sys.modules["__main__"] = stand_in
        try:
            process.start()
        finally:
            sys.modules["__main__"] = main


class _Worker:
    def __init__(self, ctx: Any, memory_mb: int) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, memory_mb),
                                   name="qa-parse", daemon=True)
        _start_without_main(self.process)
        child.close()
        self.task: tuple[int, str, float] | None = None  # (position, doc_id, started)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


def _death_reason(exitcode: int | None, limits: ParseLimits) -> str:
    if exitcode == -signal.SIGXCPU:
        return (f"the parser exceeded its CPU-time limit ({limits.cpu_seconds:g} s per file; "
                "QA_PARSE_CPU_SECONDS)")
    if exitcode == -signal.SIGKILL:
        return ("the parser process was killed from outside (SIGKILL: the system's "
                "out-of-memory killer?); the next build tries the file again")
    name = signal.Signals(-exitcode).name if exitcode and exitcode < 0 else f"exit {exitcode}"
    return (f"the parser process died ({name}), most likely at its address-space limit "
            f"({limits.memory_mb} MB; QA_PARSE_MEMORY_MB)")


class ParsePool:
    """Worker processes that parse files under ParseLimits; `map` yields in input order."""

    def __init__(self, limits: ParseLimits) -> None:
        self.limits = limits
        # forkserver: workers fork from a small clean server, not from this process (which
        # may hold BLAS threads, FAISS, a web server); spawn where it is missing.
        methods = multiprocessing.get_all_start_methods()
        self._ctx = multiprocessing.get_context(
            "forkserver" if "forkserver" in methods else "spawn")
        self._workers: list[_Worker] = []
        self.lock = threading.Lock()

    def _spawn(self) -> _Worker:
        return _Worker(self._ctx, self.limits.memory_mb)

    def map(self, items: Iterable[tuple[str, Path]], root: Path) -> Iterator[Outcome]:
        """The outcome of each (doc_id, path), in order; a killed worker's file is skipped."""
        pending = list(items)
        if not pending:
            return
        while len(self._workers) < min(self.limits.workers, len(pending)):
            self._workers.append(self._spawn())
        results: dict[int, Outcome] = {}
        next_task = next_out = 0
        try:
            while next_out < len(pending):
                for w in self._workers:
                    if w.task is None and next_task < len(pending):
                        doc_id, path = pending[next_task]
                        try:
                            w.conn.send((doc_id, str(path), str(root), self.limits.cpu_seconds))
                        except OSError:  # died while idle: replace it and retry this file
                            self._replace(w)
                            break
                        w.task = (next_task, doc_id, time.monotonic())
                        next_task += 1
                while next_out in results:
                    yield results.pop(next_out)
                    next_out += 1
                if next_out >= len(pending):
                    break
                self._collect(results)
        except BaseException:
            self.close()  # an abandoned map (an error in the build): no worker keeps parsing
            raise

    def _collect(self, results: dict[int, Outcome]) -> None:
        busy = [w for w in self._workers if w.task is not None]
        if not busy:
            return
        now = time.monotonic()
        deadline = min(w.task[2] for w in busy if w.task) + self.limits.wall_seconds
        waitables: list[Any] = [w.conn for w in busy] + [w.process.sentinel for w in busy]
        ready = wait(waitables, timeout=max(0.0, deadline - now))
        for w in busy:
            assert w.task is not None
            position, _, started = w.task
            if w.conn in ready:
                try:
                    results[position] = w.conn.recv()
                    w.task = None
                    outcome = results[position]
                    if not w.process.is_alive() or (
                            outcome[0] == "skip" and "address-space limit" in str(outcome[1])):
                        w.process.join(5)
                        self._replace(w)
                    continue
                except (EOFError, OSError):
                    pass  # died before answering: below
            elapsed = time.monotonic() - started
            if w.process.sentinel in ready or w.conn in ready:
                w.process.join(5)
                # SIGKILL comes from outside (the out-of-memory killer of a busy machine, an
                # operator), never from the worker's own limits: not remembered as a skip.
                kind = "retry" if w.process.exitcode == -signal.SIGKILL else "skip"
                results[position] = (kind, _death_reason(w.process.exitcode, self.limits),
                                     elapsed)
                self._replace(w)
            elif elapsed >= self.limits.wall_seconds:
                # "retry": a wall clock measures the machine's load as much as the file (the
                # CPU limit is the file's measure), so the skip is not remembered.
                results[position] = ("retry", "the parser exceeded its wall-clock limit "
                                     f"({self.limits.wall_seconds:g} s per file)", elapsed)
                self._replace(w)

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        worker.task = None
        self._workers[self._workers.index(worker)] = self._spawn()

    def close(self) -> None:
        for w in self._workers:
            if w.task is None and w.process.is_alive():
                try:
                    w.conn.send(None)
                    w.process.join(2)
                except OSError:
                    pass
            w.kill()
        self._workers = []


_POOLS: dict[ParseLimits, ParsePool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(limits: ParseLimits) -> tuple[ParsePool, bool]:
    """A pool for these limits, kept for the process's next builds (workers start once per
    process, not per build: `qa serve`'s POST /index, tests). The boolean says whether the
    caller must close it (the shared one was busy in another thread)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(limits)
        if pool is None:
            pool = _POOLS[limits] = ParsePool(limits)
    if pool.lock.acquire(blocking=False):
        return pool, False
    return ParsePool(limits), True


def release(pool: ParsePool, private: bool) -> None:
    if private:
        pool.close()
    else:
        pool.lock.release()


def close_pools() -> None:
    """Stop every shared worker (at exit; tests)."""
    with _POOLS_LOCK:
        for pool in _POOLS.values():
            pool.close()
        _POOLS.clear()


def _reap_at_exit() -> None:
    # Only in the process that made the pools: a forked child has its own (empty) registry.
    if os.getpid() == _OWNER:
        close_pools()


_OWNER = os.getpid()
atexit.register(_reap_at_exit)

__all__ = ["Document", "ParseLimits", "ParsePool", "close_pools", "shared_pool"]
