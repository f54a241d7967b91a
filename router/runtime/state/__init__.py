"""Live state: what the router learns while it serves, kept across reloads.

- `live.py`: `LiveState`, the one object the request path talks to; it implements the
  engine's `RoutingState` and admits, counts and releases each try.
- `breaker.py`: a circuit breaker per model.
- `budgets.py`: spend limits per period (global, per rule, per model).
- `ratelimit.py`: token buckets for rpm/tpm.
- `usage.py`: the spend log (`UsageStore`: memory or SQLite), the seam where a shared
  store plugs in.
"""
