"""The command path to the Gateway REST API, one stage per module (import from the modules):

- :mod:`engine.gateway.client`: :class:`GatewayClient`, one typed async method per endpoint (the public API).
- :mod:`engine.gateway.errors`: the error mapping table (typed errors, ``docs/errors.md``).
- :mod:`engine.gateway.outcome`: the typed outcome of a mutation (accepted / rejected / ambiguous / denied).
- :mod:`engine.gateway.ratelimit`: two sliding windows with a priority lane.
- :mod:`engine.gateway.retry`: backoff with jitter for reads.
- :mod:`engine.gateway.breaker`: the Trio driver of the circuit breaker machine.
- :mod:`engine.gateway.testing`: a client wired to the in-process simulator (tests, benchmarks).
"""
