"""The Trio runtime of the TopstepX / ProjectX Gateway resilience engine.

The pure state machines live in :mod:`machines`; this package holds their drivers (the Trio tasks that own I/O,
timers and cancel scopes), the gateway client, the realtime hubs, the state mirror and reconciler, the order
manager, risk rules, the store and the command-line interface (``python -m engine``).
"""

__version__ = "0.1.0"
