"""Schema version 2: order intents and transitions, fills, enforcement log, P&L snapshots, reconciliation findings,
component events and the last mirrored state.

The first revision of this code base creates schema version 2 directly (the seed's ``database.schemaVersion``).
Column types are spelled out here rather than imported from ``engine.store.schema`` so that later edits of the
tables never rewrite history; a test compares the migrated database with the current metadata.

Revision ID: v2_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v2_0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    meta = op.create_table(
        "store_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(255), nullable=False),
    )
    op.create_table(
        "order_intents",
        sa.Column("intent_id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("contract_id", sa.String(64), nullable=False),
        sa.Column("side", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("order_type", sa.Integer(), nullable=False),
        sa.Column("limit_price", sa.Float(), nullable=True),
        sa.Column("stop_price", sa.Float(), nullable=True),
        sa.Column("trail_price", sa.Float(), nullable=True),
        sa.Column("custom_tag", sa.String(128), nullable=False),
        sa.Column("gateway_order_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("filled_qty", sa.Integer(), nullable=False),
        sa.Column("avg_price", sa.Float(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("account_id", "custom_tag", name="uq_order_intents_account_tag"),
    )
    op.create_index("ix_order_intents_status", "order_intents", ["status"])
    op.create_index("ix_order_intents_updated_at", "order_intents", ["updated_at"])
    op.create_index("ix_order_intents_gateway_order_id", "order_intents", ["gateway_order_id"])

    op.create_table(
        "order_transitions",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("order_ref", sa.String(64), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("from_state", sa.String(32), nullable=False),
        sa.Column("to_state", sa.String(32), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
    )
    op.create_index("ix_order_transitions_at", "order_transitions", ["at"])
    op.create_index("ix_order_transitions_order_ref", "order_transitions", ["order_ref"])

    op.create_table(
        "fills",
        sa.Column("trade_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("contract_id", sa.String(64), nullable=False),
        sa.Column("side", sa.Integer(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("fees", sa.Float(), nullable=False),
        sa.Column("commissions", sa.Float(), nullable=True),
        sa.Column("pnl", sa.Float(), nullable=True),
        sa.Column("voided", sa.Boolean(), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_fills_at", "fills", ["at"])
    op.create_index("ix_fills_order_id", "fills", ["order_id"])

    op.create_table(
        "enforcement_log",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("measured", sa.JSON(), nullable=False),
        sa.Column("limit_value", sa.Float(), nullable=True),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("triggered_at", TS, nullable=False),
        sa.Column("completed_at", TS, nullable=True),
    )
    op.create_index("ix_enforcement_log_triggered_at", "enforcement_log", ["triggered_at"])

    op.create_table(
        "daily_unrealized_pnl",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("trading_day", sa.Date(), nullable=False),
        sa.Column("unrealized_pnl", sa.Float(), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_daily_unrealized_pnl_at", "daily_unrealized_pnl", ["at"])

    op.create_table(
        "reconcile_findings",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_reconcile_findings_at", "reconcile_findings", ["at"])

    op.create_table(
        "component_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("component", sa.String(64), nullable=False),
        sa.Column("from_state", sa.String(32), nullable=False),
        sa.Column("to_state", sa.String(32), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_component_events_at", "component_events", ["at"])

    op.create_table(
        "mirrored_state",
        sa.Column("account_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("saved_at", TS, nullable=False),
    )

    op.bulk_insert(meta, [{"key": "schema_version", "value": "2"}])


def downgrade() -> None:
    for table in (
        "mirrored_state",
        "component_events",
        "reconcile_findings",
        "daily_unrealized_pnl",
        "enforcement_log",
        "fills",
        "order_transitions",
        "order_intents",
        "store_meta",
    ):
        op.drop_table(table)
