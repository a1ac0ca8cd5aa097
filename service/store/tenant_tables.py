"""The tenants' tables: API keys made at runtime, usage by minute, and the budgets' ledger
(docs/tenants.md). On the shared `Base`, so migrations see them with the others.

Keys made at runtime are managed by admin keys, and any admin key sees them all; their `owner`
is the admin key that made one (kept, not used to hide it). Usage and ledger rows belong to the
key they count (`key_id`, the key's public id, or `ANONYMOUS_OWNER`): a plain key's reports
filter on it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.store.tables import Base, owner_column, seq_column

KEY_ID_LENGTH = 128  # an owner's width: a key's public id, or "anonymous"


class RuntimeKeyRow(Base):
    """An API key made by an admin key at runtime. Only its SHA-256 is kept; deleting it sets
    `revoked_at` (the row stays: usage reports still name the key)."""

    __tablename__ = "api_keys"

    seq: Mapped[int] = seq_column()
    id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH), nullable=False, unique=True)
    digest: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)  # sha256 hex
    name: Mapped[str] = mapped_column(String(256), nullable=False)
    redacted_value: Mapped[str] = mapped_column(String(64), nullable=False)
    owner: Mapped[str] = owner_column()  # the admin key that made it
    admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    weight: Mapped[float] = mapped_column(Float, nullable=False, default=1.0)
    requests_per_minute: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    tokens_per_minute: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    tokens_per_day: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    tokens_per_month: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)  # Unix seconds
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (Index("ix_api_keys_revoked_at", "revoked_at"),)


class UsageRow(Base):
    """Tokens and requests of one minute, one surface (`completions` or `embeddings`), one key,
    one model, batch or not: what `/v1/organization/usage/*` sums into buckets."""

    __tablename__ = "usage"

    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # Unix seconds, a minute
    surface: Mapped[str] = mapped_column(String(16), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH), primary_key=True)
    model: Mapped[str] = mapped_column(String(256), primary_key=True)
    batch: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    input_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)
    output_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)
    requests: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (Index("ix_usage_surface_minute", "surface", "minute"),)


class TokenLedgerRow(Base):
    """Tokens (prompt + completion) a key used in one budget window: a UTC day or month, named
    by its first second. Every replica adds to the same row, so they enforce one budget."""

    __tablename__ = "token_ledger"

    key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH), primary_key=True)
    window: Mapped[str] = mapped_column(String(8), primary_key=True)  # "day" or "month"
    starts_at: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # Unix seconds
    tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (Index("ix_token_ledger_starts_at", "starts_at"),)
