"""The command path to the Gateway REST API: rate limiter, retry policy for reads, and (from colleagues) the typed
client, breaker driver and outcome classification. Each stage is its own module; import from the module."""
