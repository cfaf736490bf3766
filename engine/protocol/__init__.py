"""Pure wire-level definitions shared by the engine and the simulator.

Gateway enums, request/response models, error-code tables and the SignalR JSON record codec. No I/O, no Trio,
no clock: both sides import this package, and the simulator imports nothing else of :mod:`engine`.
"""
