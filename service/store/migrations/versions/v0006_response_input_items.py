"""A stored response's own input items, with ids, for `GET /v1/responses/{id}/input_items`.

Revision ID: 0006_response_input_items
Revises: 0005_batch_runs
Create Date: 2026-12-07 03:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_response_input_items"
down_revision = "0005_batch_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("responses", schema=None) as batch_op:
        # Responses stored before this revision list no input items.
        batch_op.add_column(
            sa.Column("input_items", sa.JSON(), nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.drop_column("input_items")
