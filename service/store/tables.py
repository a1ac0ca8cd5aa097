"""The store's tables. A change here comes with a migration in `migrations/versions/`
(`alembic revision --autogenerate`; tests/unit/store/test_migrations.py compares the two).

The ownership rule: every stored thing has an `owner` (`owner_column`), the public id of the
API key that created it, or `ANONYMOUS_OWNER` when authentication is off. Every lookup filters
by it, so another key's row is not found (404 upstream), admin keys included.

`seq` columns are the order of listing and the keyset of its pagination (`after`): an
autoincrement integer, so rows list in the order they were made.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ANONYMOUS_OWNER = "anonymous"  # the owner of everything when authentication is off
ID_LENGTH = 64  # public ids ("file-<hex>", ...)

# Named constraints and indexes, so that a later migration can name what it alters.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def owner_column() -> Mapped[str]:
    """The owner of a row: an API key's public id, or `ANONYMOUS_OWNER`."""
    return mapped_column(String(128), nullable=False)


def seq_column() -> Mapped[int]:
    """An autoincrement primary key (SQLite autoincrements only an INTEGER primary key)."""
    return mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )


def public_id_column() -> Mapped[str]:
    return mapped_column(String(ID_LENGTH), nullable=False, unique=True)


class FileRow(Base):
    """An uploaded file (or one the gateway wrote, such as a batch's output). Its content is in
    the blob store under its id (`blobs.py`); the row is written once the content is whole."""

    __tablename__ = "files"

    seq: Mapped[int] = seq_column()
    id: Mapped[str] = public_id_column()
    owner: Mapped[str] = owner_column()
    filename: Mapped[str] = mapped_column(String(1024), nullable=False)
    purpose: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)  # bytes
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)  # Unix seconds
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (Index("ix_files_owner_seq", "owner", "seq"),)


class FileChunkRow(Base):
    """A piece of a file's content, in order, when the contents live in the database
    (PostgreSQL): replicas need no shared volume. Keyed by the file's id without a foreign
    key, since the chunks are written before the file's row."""

    __tablename__ = "file_chunks"

    file_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class BatchRow(Base):
    """A batch (OpenAI's Batch API): its lines are `BatchLineRow`s, copied from the input file
    when it is validated, so the input file may be deleted while the batch runs."""

    __tablename__ = "batches"

    seq: Mapped[int] = seq_column()
    id: Mapped[str] = public_id_column()
    owner: Mapped[str] = owner_column()
    endpoint: Mapped[str] = mapped_column(String(64), nullable=False)
    input_file_id: Mapped[str] = mapped_column(String(ID_LENGTH), nullable=False)
    completion_window: Mapped[str] = mapped_column(String(16), nullable=False)
    # validating, failed, in_progress, finalizing, completed, expired, cancelling, cancelled
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    batch_metadata: Mapped[dict[str, str] | None] = mapped_column("metadata", JSON, nullable=True)
    errors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    output_file_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    error_file_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # request_counts
    completed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    failed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Unix seconds, as OpenAI's batch object has them.
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    expires_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    in_progress_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    finalizing_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    completed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failed_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    expired_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cancelling_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cancelled_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        Index("ix_batches_owner_seq", "owner", "seq"),
        Index("ix_batches_status", "status"),
    )


class BatchLineRow(Base):
    """One request of a batch, and its one result. A replica claims lines with a lease
    (`claimed_by`, `lease_until`); a line whose lease ran out (its replica died) is claimed
    again. Its result is stored once: a `custom_id` is unique in its batch."""

    __tablename__ = "batch_lines"

    batch_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # from 1
    custom_id: Mapped[str] = mapped_column(String(512), nullable=False)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    # pending, running, succeeded, failed, expired, cancelled
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    claimed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)  # a replica
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)  # Unix seconds
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)  # HTTP status
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # its body
    finished_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (
        UniqueConstraint("batch_id", "custom_id"),
        Index("ix_batch_lines_batch_id_status", "batch_id", "status"),
    )
