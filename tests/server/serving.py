"""`router serve` as a real OS process on 127.0.0.1, and the configs the tests give it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Planted as the upstream API key and as the server's client keys: no output may show them.
CANARY = "sk-canary-upstream-XXXXXXXXXXXX"
ALICE_KEY = "sk-router-alice-CANARY-1111"
BOB_KEY = "sk-router-bob-CANARY-2222"
CAROL_KEY = "sk-router-carol-CANARY-3333"
SECRETS = (CANARY, ALICE_KEY, BOB_KEY, CAROL_KEY)

_LISTENING = re.compile(r"on http://[0-9.]+:(\d+)")  # 127.0.0.1, or 0.0.0.0 for all


def fake_config(
    base_url: str,
    *,
    keys: bool = False,
    default_target: str = "fast",
    server_extra: str = "",
    models_dir: Path | None = None,
    usage_db: str = ":memory:",
) -> str:
    """Models on the fake provider (litellm over HTTP), the local Gemma when `models_dir`."""
    local = ""
    local_model = ""
    local_rule = ""
    if models_dir is not None:
        local = (
            f"  local: {{type: llama_cpp, models_dir: '{models_dir}', n_threads: 2,"
            " max_loaded: 2}\n"
        )
        local_model = (
            "  gemma:\n"
            "    provider: local\n"
            "    model: gemma-3-270m-q4_k_m.gguf\n"
            "    context: 1024\n"
            "    n_ctx: 1024\n"
            "    cost: {input: 0, output: 0}\n"
        )
        local_rule = "  - {name: local, when: {tags: [local]}, targets: [gemma]}\n"
    server = ""
    if keys or server_extra:
        server = "server:\n" + server_extra
        if keys:
            server += (
                "  keys:\n"
                "    - {key: '${ALICE_KEY}', name: alice}\n"
                "    - {key: '${BOB_KEY}', name: bob, models: [fast], rules: [default], rpm: 2}\n"
                "    - {key: '${CAROL_KEY}', name: carol, budget: {daily: 0.000001}}\n"
            )
    return f"""\
providers:
  fake: {{type: litellm, api_base: '{base_url}', api_key: '${{FAKE_KEY}}', timeout: 10,
          retries: 0}}
{local}
models:
  fast:
    provider: fake
    model: openai/gpt-4o-mini
    context: 16000
    cost: {{input: 1.0, output: 2.0}}
    capabilities: [tools, json, vision]
  backup:
    provider: fake
    model: openai/backup-model
    context: 16000
    cost: {{input: 0.5, output: 1.0}}
    capabilities: [tools]
{local_model}
rules:
{local_rule}  - {{name: coding, when: {{use_case: coding}}, targets: [backup]}}
  - {{name: default, targets: [{default_target}]}}
settings: {{usage_db: '{usage_db}'}}
{server}"""


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT),
        FAKE_KEY=CANARY,
        ALICE_KEY=ALICE_KEY,
        BOB_KEY=BOB_KEY,
        CAROL_KEY=CAROL_KEY,
        PYTHONUNBUFFERED="1",
    )
    return env


class ServerProcess:
    """`python -m router serve CONFIG --port 0` until stopped; output kept for scans."""

    def __init__(self, config: Path, *args: str, startup_timeout: float = 60.0) -> None:
        self.config = config
        self.args: Sequence[str] = args
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self.port = 0
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def start(self) -> ServerProcess:
        cmd = [sys.executable, "-m", "router", "serve", str(self.config), "--port", "0"]
        self.proc = subprocess.Popen(
            [*cmd, *self.args],
            cwd=ROOT,
            env=server_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(self.startup_timeout) or not self.port:
            self.stop()
            raise RuntimeError(f"router serve did not start:\n{self.output}")
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            found = _LISTENING.search(line)
            if found and not self.port:
                self.port = int(found.group(1))
                self._ready.set()
        self._ready.set()

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.terminate()
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        deadline = time.monotonic() + 5
        while not self._ready.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        return code

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def serving(config: Path, *args: str) -> Iterator[ServerProcess]:
    with ServerProcess(config, *args) as server:
        yield server


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router", *args],
        cwd=ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
