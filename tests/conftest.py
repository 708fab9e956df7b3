"""Shared fixtures: the shipped corpus copied into tmp_path, embedders, built indexes; and
`free_port` for the tests that start a server (`from conftest import free_port`)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from qa.embedding import Embedder, HashEmbedder, make_embedder
from qa.index import Index, build_index, load_index

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def real_embedder() -> Embedder:
    """The real default model (use-m3), loaded once per test session."""
    return make_embedder("use-m3")


@pytest.fixture
def fake_embedder() -> Embedder:
    return HashEmbedder(64)


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    dest = tmp_path / "corpus"
    shutil.copytree(CORPUS, dest)
    return dest


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory, real_embedder: Embedder) -> Index:
    """The shipped corpus indexed with the real default model (read-only for tests)."""
    base = tmp_path_factory.mktemp("real")
    shutil.copytree(CORPUS, base / "corpus")
    build_index(base / "corpus", base / "index", embedder=real_embedder)
    return load_index(base / "index", embedder=real_embedder)
