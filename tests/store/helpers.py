"""Record factories shared by the store tests (fixed instants: the store stores what the caller stamps)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from engine.store import OrderIntent, OrderTransition
from engine.store.connect import build_engine, normalize_url
from engine.store.migrate import MIGRATIONS_DIR

T0 = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)


def intent(n: int, *, account: int = 1001, at: datetime = T0, **changes: object) -> OrderIntent:
    fields: dict[str, object] = {
        "intent_id": f"intent-{n}",
        "account_id": account,
        "contract_id": "CON.F.US.MNQ.M25",
        "side": n % 2,
        "size": 1 + n % 3,
        "order_type": 1,
        "custom_tag": f"tag-{n}",
        "created_at": at,
        "limit_price": 21000.25 + n,
    }
    fields.update(changes)
    return OrderIntent(**fields)  # type: ignore[arg-type]


def transition(n: int, from_state: str, to_state: str, *, at: datetime = T0, cause: str = "test") -> OrderTransition:
    return OrderTransition(f"intent-{n}", from_state, to_state, cause, at, account_id=1001)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def database_at_revision(url: str, revision: str, then: Callable[[sa.Connection], None] | None = None) -> None:
    """Create the database an engine of ``revision`` left behind (migrated that far, no further); ``then(conn)``
    runs on it before the commit (e.g. to leave a row or check what is missing)."""
    engine = build_engine(normalize_url(url))
    with engine.connect() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        if then is not None:
            then(conn)
        conn.commit()
    engine.dispose()
