"""Tenants: API keys made at runtime, usage by minute, the budgets' ledger.

Revision ID: 0004_tenants
Revises: 0003_sessions
Create Date: 2026-12-06 21:50:37.050782
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_tenants"
down_revision = "0003_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("redacted_value", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("requests_per_minute", sa.BigInteger(), nullable=True),
        sa.Column("tokens_per_minute", sa.BigInteger(), nullable=True),
        sa.Column("tokens_per_day", sa.BigInteger(), nullable=True),
        sa.Column("tokens_per_month", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("digest", name=op.f("uq_api_keys_digest")),
        sa.UniqueConstraint("id", name=op.f("uq_api_keys_id")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index("ix_api_keys_revoked_at", ["revoked_at"], unique=False)

    op.create_table(
        "token_ledger",
        sa.Column("key_id", sa.String(length=128), nullable=False),
        sa.Column("window", sa.String(length=8), nullable=False),
        sa.Column("starts_at", sa.BigInteger(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "window", "starts_at", name=op.f("pk_token_ledger")),
    )
    with op.batch_alter_table("token_ledger", schema=None) as batch_op:
        batch_op.create_index("ix_token_ledger_starts_at", ["starts_at"], unique=False)

    op.create_table(
        "usage",
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("surface", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("batch", sa.Boolean(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "minute", "surface", "key_id", "model", "batch", name=op.f("pk_usage")
        ),
    )
    with op.batch_alter_table("usage", schema=None) as batch_op:
        batch_op.create_index("ix_usage_surface_minute", ["surface", "minute"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("usage", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_surface_minute")

    op.drop_table("usage")
    with op.batch_alter_table("token_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_token_ledger_starts_at")

    op.drop_table("token_ledger")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_api_keys_revoked_at")

    op.drop_table("api_keys")
