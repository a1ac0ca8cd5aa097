"""Settings of the store: where the gateway keeps files, batches and what later features keep
(a base of `Settings`: only its fields live here)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+asyncpg://")


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/llm-gateway`, else `~/.local/share/llm-gateway`."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "llm-gateway"


class StoreSettings(BaseSettings):
    # --- Store (files, batches: SQLite by default, PostgreSQL for several replicas)
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Folder of the embedded store: its SQLite database (`gateway.db`) and the "
        "contents of uploaded files (`files/`). Unused when `database_url` is set.",
    )
    database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL database shared by several replicas "
        "(`postgresql://user:password@host:5432/db`; driver asyncpg): rows and file contents "
        "live in it, so replicas need no shared volume. Unset: SQLite under `data_dir`.",
    )
    database_timeout_seconds: float = Field(
        5.0,
        gt=0.0,
        description="How long a store operation waits to connect or for a lock before it "
        "answers 503 `store_unavailable`.",
    )

    # --- Files and batches (docs/batch.md)
    max_file_bytes: int = Field(
        100 * 1024 * 1024,
        ge=1024,
        description="Largest file `POST /v1/files` accepts (larger: 413, judged from "
        "Content-Length or as the upload streams in). That path is exempt from "
        "`max_body_bytes`.",
    )
    batch_max_lines: int = Field(
        50_000, ge=1, description="Most requests in one batch's input file (OpenAI's limit)."
    )
    batch_drain: bool = Field(
        True,
        description="Run batch lines on this replica (a drainer in the background, one per "
        "replica). Off: this replica serves the Files and Batch APIs but runs no line.",
    )
    batch_max_inflight_fraction: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="Share of the engine's running slots (`max_num_seqs`) batch lines may take "
        "at once, on each replica; lines start only while no interactive request waits for "
        "admission and the engine has a free slot.",
    )
    batch_lease_seconds: float = Field(
        30.0,
        gt=0.0,
        description="A running line's lease, renewed every third of it while it runs: a "
        "replica that dies leaves its lines to be claimed again after this long.",
    )
    batch_poll_seconds: float = Field(
        1.0,
        gt=0.0,
        description="How often an idle drainer looks for lines, expired batches and batches "
        "to finalize (lines of a batch created on this replica start at once).",
    )
    batch_max_attempts: int = Field(
        5,
        ge=1,
        description="Claims of one line before it fails with `too_many_attempts`: a line "
        "that keeps ending its replica (or timing out) cannot hold its batch forever.",
    )

    @field_validator("database_url")
    @classmethod
    def _postgres_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(POSTGRES_SCHEMES):
            raise ValueError("must start with postgresql:// (SQLite needs no URL: data_dir)")
        return value
