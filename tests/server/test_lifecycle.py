"""Starting, reloading and stopping `router serve`: bind checks, hot reload under load, drain."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest

from router.testing import slow
from tests.server.conftest import assert_no_secrets
from tests.server.serving import ServerProcess, fake_config, run_cli

openai = pytest.importorskip("openai")


def test_no_keys_refuses_a_public_bind_unless_allowed(fake, config_path):
    config_path.write_text(fake_config(fake.base_url))
    out = run_cli("serve", str(config_path), "--host", "0.0.0.0", "--port", "0")
    assert out.returncode == 2
    assert "refusing to listen on 0.0.0.0 with no API keys" in out.stderr
    assert "--allow-unauthenticated" in out.stderr


def test_a_bad_config_is_a_one_line_error(config_path):
    config_path.write_text("rules: [{name: x, targets: [nope]}]\n")
    out = run_cli("serve", str(config_path), "--port", "0")
    assert out.returncode == 2
    assert "unknown model 'nope'" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_unset_key_variable_names_the_line_not_the_key(fake, config_path):
    config_path.write_text(
        fake_config(fake.base_url)
        + "server:\n  keys:\n    - {key: '${NO_SUCH_KEY_VAR}', name: x}\n"
    )
    out = run_cli("serve", str(config_path), "--port", "0")
    assert out.returncode == 2
    assert "NO_SUCH_KEY_VAR" in out.stderr and "router.yaml:" in out.stderr


def _stream_text(base_url: str, index: int) -> tuple[str, str]:
    with openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=60) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="auto",
            messages=[{"role": "user", "content": f"client {index}"}],
            stream=True,
        )
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        return raw.headers["x-router-model"], text


def test_a_config_edit_while_8_clients_stream_changes_routing_with_no_failed_request(
    fake, config_path
):
    config_path.write_text(fake_config(fake.base_url, default_target="fast"))
    with ServerProcess(config_path) as server:
        assert _stream_text(server.base_url, 0)[0] == "fast"  # warm: the adapter is loaded
        fake.reset()
        fake.enqueue(*[slow(3.0) for _ in range(8)])
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            before = [pool.submit(_stream_text, server.base_url, i) for i in range(8)]
            deadline = time.monotonic() + 60
            while len(fake.requests) < 8 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(fake.requests) == 8, "the 8 streams did not all start"
            assert not any(f.done() for f in before)  # all 8 in flight during the edit
            config_path.write_text(fake_config(fake.base_url, default_target="backup"))
            version = 1
            for _ in range(200):  # bounded: about 10 s
                version = httpx.get(server.url + "/v1/router/status").json()["config_version"]
                if version == 2:
                    break
                time.sleep(0.05)
            assert version == 2, server.output
            after = [pool.submit(_stream_text, server.base_url, i) for i in range(8)]
            served_before = [f.result() for f in before]
            served_after = [f.result() for f in after]
    assert [m for m, _ in served_before] == ["fast"] * 8  # started on the old config
    assert [m for m, _ in served_after] == ["backup"] * 8
    assert all(text == "Hello from the fake provider." for _, text in served_before + served_after)
    assert_no_secrets(server.output)


def test_sigterm_drains_a_request_in_flight_then_exits(fake, config_path):
    config_path.write_text(fake_config(fake.base_url))
    server = ServerProcess(config_path, "--no-watch").start()
    try:
        fake.enqueue(slow(1.5, "finished after the signal"))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(
                httpx.post,
                server.base_url + "/chat/completions",
                json={"model": "auto", "messages": [{"role": "user", "content": "x"}]},
                timeout=30,
            )
            deadline = time.monotonic() + 10
            while not fake.requests and time.monotonic() < deadline:
                time.sleep(0.02)
            server.terminate()
            got = pending.result()
        assert got.status_code == 200
        assert got.json()["choices"][0]["message"]["content"] == "finished after the signal"
        assert server.wait(30) == 0
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/healthz", timeout=2)


def test_litellm_as_a_client(open_server, fake):
    import litellm

    done = litellm.completion(
        model="openai/auto",
        api_base=open_server.base_url,
        api_key="unused",
        messages=[{"role": "user", "content": "hi"}],
    )
    assert done.choices[0].message.content == "Hello from the fake provider."
    assert done.model.endswith("fast")
    parts = litellm.completion(
        model="openai/auto",
        api_base=open_server.base_url,
        api_key="unused",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
    )
    assert "".join(c.choices[0].delta.content or "" for c in parts) == (
        "Hello from the fake provider."
    )


def test_workers_serve_from_their_own_processes(fake, config_path):
    config_path.write_text(fake_config(fake.base_url))
    with ServerProcess(config_path, "--workers", "2", "--no-watch") as server:
        got = None
        for _ in range(100):  # bounded: the workers may still be importing
            try:
                got = httpx.post(
                    server.base_url + "/chat/completions",
                    json={"model": "auto", "messages": [{"role": "user", "content": "x"}]},
                    timeout=30,
                )
                break
            except httpx.ConnectError:
                time.sleep(0.2)
        assert got is not None and got.status_code == 200
        assert got.headers["x-router-model"] == "fast"
        server.terminate()
        assert server.wait(60) == 0


def test_keys_follow_a_reload(fake, config_path):
    from tests.server.serving import ALICE_KEY, BOB_KEY

    one = "  keys:\n    - {key: '${ALICE_KEY}', name: alice}\n"
    config_path.write_text(fake_config(fake.base_url, server_extra=one))
    body = {"model": "auto", "messages": [{"role": "user", "content": "x"}]}
    with ServerProcess(config_path) as server:

        def status_with(key: str) -> int:
            headers = {"Authorization": f"Bearer {key}"}
            url = server.base_url + "/chat/completions"
            return httpx.post(url, json=body, headers=headers, timeout=30).status_code

        assert (status_with(ALICE_KEY), status_with(BOB_KEY)) == (200, 401)
        other = "  keys:\n    - {key: '${BOB_KEY}', name: bob}\n"
        config_path.write_text(fake_config(fake.base_url, server_extra=other))
        codes = (0, 0)
        for _ in range(100):  # bounded: about 10 s for the watcher to reload
            codes = (status_with(ALICE_KEY), status_with(BOB_KEY))
            if codes == (401, 200):
                break
            time.sleep(0.1)
        assert codes == (401, 200)
    assert_no_secrets(server.output)


def test_the_default_config_serves_with_no_key(monkeypatch):
    from tests.server.serving import ROOT

    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENROUTER_API_KEY", "OLLAMA_HOST"):
        monkeypatch.delenv(var, raising=False)
    with ServerProcess(ROOT / "rules" / "default.yaml", "--no-watch") as server:
        body = {"model": "auto", "messages": [{"role": "user", "content": "Fix this function"}]}
        got = httpx.post(server.url + "/v1/router/explain", json=body, timeout=30).json()
        models = httpx.get(server.base_url + "/models", timeout=30).json()["data"]
    assert got["rule"] == "coding" and got["model"] == "gemma-3-270m"
    assert "OPENAI_API_KEY is not set" in got["rejected"]["gpt-4o-mini"]
    assert {"auto", "router/coding", "gemma-3-270m"} <= {m["id"] for m in models}
