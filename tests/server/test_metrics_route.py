"""`GET /metrics`: a real Prometheus scrape through uvicorn, parsed with the client's
parser, counts the requests the `openai` SDK made; with `--workers 2` every worker's
requests are counted whichever worker answers the scrape."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from router import Router
from router.testing import server_error
from tests.server.serving import (
    ALICE_KEY,
    BOB_KEY,
    CANARY,
    CAROL_KEY,
    ServerProcess,
    fake_config,
)

openai = pytest.importorskip("openai")
prom = pytest.importorskip("prometheus_client")
from prometheus_client import multiprocess  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

REQUESTS = "router_requests_total"


def parse(text: str) -> list:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def total(samples: list, name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def scrape(base: str, key: str | None = ALICE_KEY) -> list:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    got = httpx.get(base + "/metrics", headers=headers, timeout=30)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/plain")
    assert CANARY not in got.text and ALICE_KEY not in got.text
    return parse(got.text)


def test_a_scrape_counts_what_the_sdk_asked(keyed_server, fake):
    before = scrape(keyed_server.url)
    with openai.OpenAI(base_url=keyed_server.base_url, api_key=ALICE_KEY, max_retries=0) as c:
        for i in range(3):
            c.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": f"secret zebra {i}"}]
            )
        c.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "fix it"}],
            extra_body={"use_case": "coding"},
        )
        fake.enqueue(server_error(500))
        with pytest.raises(openai.APIStatusError):
            c.chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}])
    after = scrape(keyed_server.url)

    def grew(**labels: str) -> float:
        return total(after, REQUESTS, **labels) - total(before, REQUESTS, **labels)

    assert grew(rule="default", model="fast", provider="fake", outcome="ok") == 3
    assert grew(rule="coding", model="backup", provider="fake", outcome="ok") == 1
    assert grew(outcome="ok") == 4 and grew() == 5
    assert total(after, "router_request_duration_seconds_count", rule="default") >= 3
    assert not any("zebra" in str(s.labels) for s in after)  # no prompt in any label


def test_metrics_are_behind_the_keys(keyed_server):
    anonymous = httpx.get(keyed_server.url + "/metrics", timeout=30)
    assert anonymous.status_code == 401
    assert set(anonymous.json()["error"]) == {"message", "type", "param", "code"}
    assert scrape(keyed_server.url, key=BOB_KEY)  # any valid key may scrape


@contextlib.contextmanager
def uvicorn_serving(app) -> Iterator[str]:
    """The app under uvicorn in a thread of this process, on a free loopback port."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        end = time.monotonic() + 30
        while not server.started and time.monotonic() < end:
            time.sleep(0.01)
        assert server.started
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.mark.parametrize(
    ("setting", "anonymous", "keyed"),
    [
        ("  metrics: {key_required: false}\n", 200, 200),
        ("  metrics: false\n", 404, 404),
        ("", 401, 200),
    ],
)
def test_server_metrics_setting(fake, tmp_path, monkeypatch, setting, anonymous, keyed):
    from router.server import create_app

    keys = {"FAKE_KEY": CANARY, "ALICE_KEY": ALICE_KEY, "BOB_KEY": BOB_KEY, "CAROL_KEY": CAROL_KEY}
    for name, value in keys.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "router.yaml"
    path.write_text(fake_config(fake.base_url, keys=True, server_extra=setting))
    with Router.from_config(path) as router, uvicorn_serving(create_app(router)) as base:
        assert httpx.get(base + "/metrics", timeout=30).status_code == anonymous
        auth = {"Authorization": f"Bearer {ALICE_KEY}"}
        assert httpx.get(base + "/metrics", headers=auth, timeout=30).status_code == keyed


def per_worker(directory: Path) -> dict[str, float]:
    """Requests counted by each worker: each worker's counter file read on its own."""
    out: dict[str, float] = {}
    for path in directory.glob("counter_*.db"):
        alone = Path(tempfile.mkdtemp(prefix="one-worker-"))
        try:
            shutil.copy(path, alone / path.name)
            registry = prom.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=str(alone))
            out[path.stem] = total(parse(prom.generate_latest(registry).decode()), REQUESTS)
        finally:
            shutil.rmtree(alone, ignore_errors=True)
    return out


def test_with_two_workers_every_workers_requests_are_counted(fake, config_path):
    config_path.write_text(fake_config(fake.base_url, keys=True))
    with ServerProcess(config_path, "--workers", "2", "--no-watch") as server:
        # printed before the line ServerProcess waits for
        found = re.search(r"samples in (\S+)", server.output)
        assert found, server.output
        directory = Path(found.group(1))
        # A new connection per request, so the kernel hands them to either worker.
        http = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=30)
        client = openai.OpenAI(
            base_url=server.base_url, api_key=ALICE_KEY, max_retries=5, http_client=http
        )
        made = 0
        counts: dict[str, float] = {}
        with client:
            for _ in range(120):  # bounded: until both workers have served some
                client.chat.completions.create(
                    model="auto", messages=[{"role": "user", "content": f"n {made}"}]
                )
                made += 1
                counts = per_worker(directory)
                if made >= 6 and sum(1 for v in counts.values() if v > 0) >= 2:
                    break
        assert sum(1 for v in counts.values() if v > 0) >= 2, counts
        assert sum(counts.values()) == made
        for _ in range(4):  # whichever worker answers, it adds up all of them
            with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as h:
                got = h.get(
                    server.url + "/metrics",
                    headers={"Authorization": f"Bearer {ALICE_KEY}"},
                    timeout=30,
                )
            assert got.status_code == 200
            assert total(parse(got.text), REQUESTS, outcome="ok") == made
        server.terminate()
        assert server.wait(60) == 0
    assert not directory.exists()  # router serve made it, router serve removed it
