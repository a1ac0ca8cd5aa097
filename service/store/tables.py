"""The store's tables. A change here comes with a migration in `migrations/versions/`
(`alembic revision --autogenerate`; tests/unit/store/test_migrations.py compares the two).

The ownership rule: every stored thing has an `owner` (`owner_column`), the public id of the
API key that created it, or `ANONYMOUS_OWNER` when authentication is off. Every lookup filters
by it, so another key's row is not found (404 upstream), admin keys included.

`seq` columns are the order of listing and the keyset of its pagination (`after`): an
autoincrement integer, so rows list in the order they were made.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ANONYMOUS_OWNER = "anonymous"  # the owner of everything when authentication is off
ID_LENGTH = 64  # public ids ("file-<hex>", ...)

# Named constraints and indexes, so that a later migration can name what it alters.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
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
