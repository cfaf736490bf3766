"""Pure, synchronous state machines: connection, circuit breaker, token and order lifecycles.

Nothing here imports Trio or does I/O or reads a clock: time comes in as an argument. Drivers in :mod:`engine`
feed events in and act on the machine's state and the intents its callbacks record.
"""
