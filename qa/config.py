"""One Settings object, read at the edges (CLI, API) only; library functions take arguments."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from qa.documents.cage import DEFAULT_CPU_SECONDS, DEFAULT_MEMORY_MB, DEFAULT_WORKERS

if TYPE_CHECKING:
    from qa.documents import ParseLimits

DEFAULT_EMBEDDER = "use-m3"


class Settings(BaseSettings):
    """Environment variables with the QA_ prefix (QA_CORPUS, QA_INDEX, QA_API_KEY, ...)."""

    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    corpus: Path = Path("corpus")
    index: Path = Path("index")
    embedder: str = DEFAULT_EMBEDDER
    # None keeps the live index's chunking, else 600/100 (measured: README, Quality).
    chunk_size: int | None = Field(default=None, ge=50, le=20_000)
    chunk_overlap: int | None = Field(default=None, ge=0, le=10_000)
    api_key: str | None = None
    cors_origins: list[str] = Field(default_factory=list)
    # `qa serve` bounds (README, Serving): past limit_concurrency open connections or running
    # requests the server answers 503 at once; a client must finish sending its request
    # headers within timeout_headers seconds; idle kept-alive connections close after
    # timeout_keep_alive seconds.
    limit_concurrency: int = Field(default=512, ge=1, le=100_000)
    timeout_headers: float = Field(default=10.0, gt=0, le=3600)
    timeout_keep_alive: int = Field(default=75, ge=1, le=3600)
    backlog: int = Field(default=2048, ge=1, le=65_535)
    # `qa serve` replicas over a shared index folder (README, Beyond one machine): every
    # watch_index seconds the server checks CURRENT and swaps in a new commit; None: off.
    watch_index: float | None = Field(default=None, gt=0, le=86_400)
    # The parsing cage (README, Guarantees): each file is parsed in one of parse_workers
    # processes (0: in this process, unbounded) with parse_cpu_seconds of CPU time and
    # parse_memory_mb of address space; a file past either is skipped.
    parse_cpu_seconds: float = Field(default=DEFAULT_CPU_SECONDS, gt=0, le=86_400)
    parse_memory_mb: int = Field(default=DEFAULT_MEMORY_MB, ge=256, le=1_048_576)
    parse_workers: int = Field(default=DEFAULT_WORKERS, ge=0, le=64)

    def parse_limits(self) -> ParseLimits:
        from qa.documents import ParseLimits

        return ParseLimits(cpu_seconds=self.parse_cpu_seconds, memory_mb=self.parse_memory_mb,
                           workers=self.parse_workers)


def with_index_corpus(settings: Settings) -> Settings:
    """Settings whose corpus is the one the existing index was built from, unless a corpus
    was named (--corpus or QA_CORPUS). Never ./corpus by default for an index built from
    another folder: a re-index would silently replace its documents (issue 8)."""
    from qa.errors import IndexMismatchError
    from qa.index import index_exists, read_manifest

    if "corpus" in settings.model_fields_set or not index_exists(settings.index):
        return settings
    recorded = read_manifest(settings.index).get("corpus")
    if not recorded:
        raise IndexMismatchError(
            f"the index at {settings.index} does not record which corpus it was built from; "
            "name it with --corpus (or QA_CORPUS)"
        )
    # model_copy keeps model_fields_set: mark corpus as named, so it is checked like one.
    updated = settings.model_copy(update={"corpus": Path(recorded)})
    updated.model_fields_set.add("corpus")
    return updated
