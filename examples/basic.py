"""Route a few prompts through a config and show what was decided.

.venv/bin/python examples/basic.py [CONFIG]     (default: examples/configs/dry-run.yaml)
"""

from __future__ import annotations

import sys

from router import NoRouteError, Router


def main(path: str) -> None:
    with Router.from_config(path) as r:
        for prompt, use_case in [
            ("Fix this stack trace: IndexError in parse()", None),
            ("hello, how are you?", "chat"),
            ("What is the capital of Peru?", None),
        ]:
            print(r.explain(prompt, use_case=use_case).describe())
            try:
                res = r.route(prompt, use_case=use_case, max_tokens=32)
            except NoRouteError as exc:
                print(f"no route: {exc}\n")
                continue
            fell_back = f" after {len(res.attempts)} failed attempt(s)" if res.attempts else ""
            cost = "price unknown" if res.cost_usd is None else f"${res.cost_usd:.6f}"
            print(f"-> {res.model}{fell_back}: {res.text!r} ({cost})\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "examples/configs/dry-run.yaml")
