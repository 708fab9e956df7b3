"""One Settings object, read at the edges (CLI, API) only; library functions take arguments."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
