"""Schema version 2, revision 3: ``order_intents.kind`` and ``order_intents.position_before``, so that cancel,
modify and close intents are committed before their request like places, and resumed by recovery after a crash.

Additive: existing rows are places (the server default), and ``position_before`` (the signed position a close
started from) is empty for them.

Revision ID: v2_0003
Revises: v2_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v2_0003"
down_revision = "v2_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("order_intents") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="place"))
        batch.add_column(sa.Column("position_before", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("order_intents") as batch:
        batch.drop_column("position_before")
        batch.drop_column("kind")
