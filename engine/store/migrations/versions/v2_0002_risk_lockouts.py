"""Schema version 2, revision 2: the ``risk_lockouts`` table (one row per account), so a risk lockout survives a
restart of the engine.

Additive within schema version 2: a database at ``v2_0001`` gains the table when a newer engine opens it, and
nothing that version wrote changes. Column types are spelled out (see ``v2_0001``).

Revision ID: v2_0002
Revises: v2_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v2_0002"
down_revision = "v2_0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "risk_lockouts",
        sa.Column("account_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("locked_since", TS, nullable=False),
        sa.Column("locked_until", TS, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("risk_lockouts")
