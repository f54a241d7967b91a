"""Live state: what the router learns while it serves, kept across reloads.

- `live.py`: `LiveState`, the one object the request path talks to; it implements the
  engine's `RoutingState` and admits, counts and releases each try.
- `breaker.py`: a circuit breaker per model.
- `budgets.py`: spend limits per period (global, per rule, per model).
- `ratelimit.py`: token buckets for rpm/tpm.
- `usage.py`: the spend log (`UsageStore`: memory or SQLite).
- `stores.py`: one Protocol per store and the backend that makes them for a config
  (`settings.state`): in process, or shared through Redis (`redis_*.py`, imported
  only then).
- `redis_cache.py`: the response cache's Redis backend (`settings.cache.backend: redis`),
  handed to the cache package by the runtime.
"""
