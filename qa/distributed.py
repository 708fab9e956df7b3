"""`qa index --ray`: the embedding of a build runs on a Ray cluster (issue 12).

The driver (this process) lists and reads the corpus, chunks and splits it, writes the
segments and commits the snapshot exactly as a local build does: only the batches of texts
to embed (97 % of a build's time) go to a pool of Ray actors, each holding the embedder
rebuilt from its id. Batches are the ones a local build embeds, and come back in order, so
the index is the same, byte for byte in its vectors. Ray is imported here only.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from qa.embedding import Embedder
from qa.errors import ClusterError
from qa.index import BuildReport, build_index

INSTALL_HINT = "qa index --ray needs Ray: pip install 'qa[ray]'"
RETRIES = 3  # restarts of a dead actor, and retries of the batch it held


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ClusterError(INSTALL_HINT) from exc
    return ray


def _probe(address: str) -> None:
    """Fail fast on an address nothing listens on (ray.init may wait for minutes)."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"bad Ray address {address!r}: expected HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=10):
            pass
    except OSError as exc:
        raise ClusterError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); "
            "start it with `ray start --head` or check the address"
        ) from exc


def connect(ray: Any, address: str | None, *, workers: int) -> None:
    """ray.init on a cluster (address, probed first: an unreachable one fails in seconds)
    or on a local Ray started for this build. In the main thread: Ray's signal handlers
    and its connection to its control store need it."""
    if address:
        _probe(address)
        kwargs: dict[str, Any] = {"address": address}
    else:
        kwargs = {"num_cpus": max(2, workers), "include_dashboard": False,
                  "_temp_dir": f"/tmp/qa-ray-{os.getuid()}", "_node_ip_address": "127.0.0.1"}
    kwargs.update(log_to_driver=False, ignore_reinit_error=True, logging_level=logging.ERROR)
    try:
        ray.init(**kwargs)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ClusterError(f"cannot start or reach {address or 'a local Ray'}: {first}; "
                           "nothing was indexed") from exc


class _Embed:
    """A Ray actor's body: the embedder, rebuilt from its id once per actor."""

    def __init__(self, spec: str) -> None:
        from qa.embedding import make_embedder
        from qa.index import single_threaded_blas

        single_threaded_blas()  # one core per actor: N actors use N cores
        self.embedder = make_embedder(spec)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embedder.embed(texts, kind="passage")


class RayEmbedPool:
    """Embeds batches of passage texts on `workers` Ray actors, results in order.

    A batch whose actor dies is retried on its restarted actor (Ray: max_restarts,
    max_task_retries); a batch that still fails fails the build, which leaves the
    previous index live."""

    def __init__(self, ray: Any, embedder: Embedder, workers: int) -> None:
        from ray.util import ActorPool

        self._ray = ray
        cls = ray.remote(num_cpus=1, max_restarts=RETRIES, max_task_retries=RETRIES)(_Embed)
        self._actors = [cls.remote(embedder.id) for _ in range(workers)]
        self._pool = ActorPool(self._actors)
        self.dim = embedder.dim

    def __call__(self, batches: list[list[str]]) -> Iterator[np.ndarray]:
        ray = self._ray
        try:
            for vecs in self._pool.map(lambda a, texts: a.embed.remote(texts), batches):
                yield np.asarray(vecs, np.float32).reshape(-1, self.dim)
        except ray.exceptions.RayError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ClusterError(f"a Ray worker failed to embed a batch: {first}; "
                               "nothing was indexed") from exc

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)


def ray_build_index(
    corpus_dir: Path, index_dir: Path, *, embedder: Embedder, address: str | None = None,
    workers: int = 2, **options: Any,
) -> BuildReport:
    """build_index with its embedding on Ray: a cluster at `address`, else a local Ray
    started for this build (and stopped after it). Same manifest, same format, same
    answers as a local build. `options` are build_index's."""
    from qa.embedding import make_embedder

    ray = import_ray()
    try:
        probe = make_embedder(embedder.id)
    except Exception as exc:
        raise ClusterError(f"the embedder {embedder.id!r} cannot be rebuilt from its id on "
                           "Ray workers; build without --ray") from exc
    if probe.id != embedder.id or type(probe) is not type(embedder):
        raise ClusterError(f"the embedder {embedder.id!r} cannot be rebuilt from its id on "
                           "Ray workers; build without --ray")
    connect(ray, address, workers=workers)
    try:
        pool = RayEmbedPool(ray, embedder, workers)
        try:
            return build_index(corpus_dir, index_dir, embedder=embedder, embed_remote=pool,
                               **options)
        finally:
            pool.close()
    finally:
        ray.shutdown()
