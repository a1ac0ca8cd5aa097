"""What running a batch needs beside its lines: the caller its lines run as, the tokens they
used, and the lease of the replica writing its output files.

Revision ID: 0005_batch_runs
Revises: 0004_tenants
Create Date: 2026-12-06 21:31:59.981599
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_batch_runs"
down_revision = "0004_tenants"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("caller", sa.JSON(), nullable=True))
        # A server default for the batches made before this revision.
        batch_op.add_column(
            sa.Column("input_tokens", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("output_tokens", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("output_tokens")
        batch_op.drop_column("input_tokens")
        batch_op.drop_column("caller")
