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

    @field_validator("database_url")
    @classmethod
    def _postgres_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(POSTGRES_SCHEMES):
            raise ValueError("must start with postgresql:// (SQLite needs no URL: data_dir)")
        return value
