"""Edit the config while this runs: each reload (or refused reload) is printed.

.venv/bin/python examples/hot_reload.py examples/configs/dry-run.yaml
"""

from __future__ import annotations

import sys
import time

from router import Router


def main(path: str) -> None:
    r = Router.from_config(path, watch=True)

    @r.on_reload
    def show(event: object) -> None:
        print(event)

    print(f"watching {path}; edit it and save. Ctrl-C to stop.")
    try:
        while True:
            d = r.explain("Fix this function")
            print(f"v{r.status().config_version}: rule {d.rule} -> {d.model}")
            time.sleep(2)
    except KeyboardInterrupt:
        r.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "examples/configs/dry-run.yaml")
