"""The Engine: the nursery tree of a running engine (``python -m engine run``) and the wiring between components.

- :mod:`engine.app.engine`: :class:`Engine` (start-up sequence, nursery tree, graceful shutdown, final state).
- :mod:`engine.app.enforcement`: :class:`RiskEnforcer`, the driver of the pure risk evaluator (mirror changes ->
  decisions -> cancels / closes through the order manager with enforcement priority).
- :mod:`engine.app.journal`: machine transitions into the store's journal.
- :mod:`engine.app.truth`: mirrored state vs a Gateway's truth, duplicate orders.
- :mod:`engine.app.dashboard`: the dashboard's view model from a running engine.

API::

    engine = Engine(settings, transport=None, connector=socket_connector, wall_clock=None, token_store=None,
                    store_threads=True, status=print, save_interval_s=60.0, risk_tick_s=1.0)
    await nursery.start(engine.run)      # returns once ready (logged in, intents recovered, initial sync done)
    engine.stop()                        # graceful: hubs closed, nursery cancelled, final state saved
    engine.final_state                   # {"accounts", "positions", "orders"} after run returned
"""

from engine.app.dashboard import dashboard_model, run_stats
from engine.app.enforcement import ActionOutcome, RiskEnforcer
from engine.app.engine import Engine, first_leaf
from engine.app.journal import transition_journal
from engine.app.truth import comparable, duplicate_orders, state_differences

__all__ = [
    "ActionOutcome",
    "Engine",
    "RiskEnforcer",
    "comparable",
    "dashboard_model",
    "duplicate_orders",
    "first_leaf",
    "run_stats",
    "state_differences",
    "transition_journal",
]
