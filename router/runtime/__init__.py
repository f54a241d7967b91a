"""The request path: `Router`, the `Snapshot` a request keeps, the attempt loop.

- `router.py`: the public `Router` (route, stream, explain, reload, status).
- `snapshot.py`: one immutable Config + RuleSet + providers, swapped whole on reload.
- `attempts.py`: tries, retries and fallbacks within a deadline.
- `calls.py`, `requests.py`, `retry.py`: what one try sends, how a request is built,
  and when to try again.

Two rooms sit beside it: `state/` (what serving has learned: breakers, budgets,
rate limits, spend, latency) and `reload/` (watching files and describing changes).
"""
