"""The console's access rules, escaping and JSON API, in process over real ASGI requests
(the browser tests in test_console_browser.py drive the same pages in Chromium)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from router import ApiKey, ConfigError, Router, load_config
from router.secrets import Secret
from router.server import create_app
from router.server.console.access import COOKIE_TTL_S, key_of_token, session_token
from router.testing import FakeProviderServer, server_error
from tests.server.console_setup import ADMIN_KEY, MARKUP_MODEL, MARKUP_RULE, console_config
from tests.server.serving import BOB_KEY, CANARY, ServerProcess

ENV = {"FAKE_KEY": CANARY, "ADMIN_KEY": ADMIN_KEY, "BOB_KEY": BOB_KEY}
SECRETS = (CANARY, ADMIN_KEY, BOB_KEY)
LOOPBACK = ("127.0.0.1", 50123)
ELSEWHERE = ("203.0.113.9", 50123)

MakeClient = Callable[..., httpx.AsyncClient]


@pytest.fixture
def make_router(tmp_path: Path, fake: FakeProviderServer) -> AsyncIterator[Callable[..., Router]]:
    made: list[Router] = []

    def make(**kwargs: bool) -> Router:
        path = tmp_path / "router.yaml"
        path.write_text(console_config(fake.base_url, **kwargs))
        r = Router.from_config(path, environ=ENV)
        made.append(r)
        return r

    yield make  # type: ignore[misc]
    for r in made:
        r.close()


def client(r: Router, peer: tuple[str, int] = LOOPBACK, **kwargs: object) -> httpx.AsyncClient:
    app = create_app(r)
    transport = httpx.ASGITransport(app=app, client=peer)
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080", **kwargs)  # type: ignore[arg-type]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


async def test_with_no_keys_only_loopback_may_look(make_router):
    r = make_router(keys=False)
    async with client(r) as c:
        page = await c.get("/ui")
        assert page.status_code == 200 and "Overview" in page.text
        assert (await c.get("/v1/router/overview")).status_code == 200
        # A name that resolves to 127.0.0.1 (DNS rebinding) is not loopback's name.
        rebound = await c.get("/ui", headers={"Host": "evil.example:8080"})
        assert rebound.status_code == 403
    async with client(r, ELSEWHERE) as c:
        page = await c.get("/ui")
        assert page.status_code == 403 and "loopback" in page.text
        api = await c.get("/v1/router/requests")
        assert api.status_code == 403
        assert api.json()["error"]["code"] == "console_loopback_only"


async def test_with_keys_only_an_admin_key_may_look(make_router):
    r = make_router()
    async with client(r) as c:
        page = await c.get("/ui/traffic")
        assert page.status_code == 303
        assert page.headers["location"] == "/ui/login?next=/ui/traffic"
        assert (await c.get("/v1/router/overview")).status_code == 401
        bob = await c.get("/v1/router/overview", headers=bearer(BOB_KEY))
        assert bob.status_code == 403 and "admin" in bob.json()["error"]["message"]
        assert (await c.get("/ui/models", headers=bearer(BOB_KEY))).status_code == 403
        wrong = await c.get("/v1/router/config", headers=bearer("sk-nope"))
        assert wrong.status_code == 401
        ok = await c.get("/v1/router/config", headers=bearer(ADMIN_KEY))
        assert ok.status_code == 200 and ok.json()["version"] == 1
    # From elsewhere too: with keys set, the key decides, not the address.
    async with client(r, ELSEWHERE) as c:
        assert (await c.get("/v1/router/models", headers=bearer(ADMIN_KEY))).status_code == 200


async def test_the_login_cookie_is_signed_holds_no_key_and_admits(make_router):
    r = make_router()
    async with client(r) as c:
        form = {"key": BOB_KEY, "next": "/ui/config"}
        refused = await c.post("/ui/login", data=form)
        assert refused.status_code == 403 and "admin" in refused.text
        assert "set-cookie" not in refused.headers
        assert (await c.post("/ui/login", data={"key": "sk-nope"})).status_code == 401
        # `next` may only lead to a console page.
        evil = await c.post("/ui/login", data={"key": ADMIN_KEY, "next": "//evil.example/"})
        assert evil.headers["location"] == "/ui"
        c.cookies.clear()
        done = await c.post("/ui/login", data={"key": ADMIN_KEY, "next": "/ui/config"})
        assert done.status_code == 303 and done.headers["location"] == "/ui/config"
        cookie = done.headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        assert_no_secrets(cookie)
        page = await c.get("/ui/config")
        assert page.status_code == 200 and "Routing tests" in page.text
        assert (await c.get("/v1/router/requests")).status_code == 200
        value = c.cookies["router_console"]
        expires, sig, name = value.split(".", 2)
        c.cookies.set("router_console", f"{expires}.{'0' * len(sig)}.{name}")
        assert (await c.get("/v1/router/requests")).status_code == 401
        out = await c.post("/ui/logout")
        assert out.status_code == 303
        assert 'router_console=""' in out.headers["set-cookie"]


async def test_markup_in_config_names_shows_as_text(make_router):
    r = make_router()
    async with client(r, headers=bearer(ADMIN_KEY)) as c:
        await r.aroute("Render me", use_case="markup")
        traffic = await c.get("/ui/traffic")
        html = traffic.text
        assert "&lt;b&gt;x&lt;/b&gt;" in html
        assert MARKUP_RULE not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
        assert MARKUP_MODEL not in html
        csp = traffic.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        rows = (await c.get("/v1/router/requests", params={"rule": MARKUP_RULE})).json()
        assert [x["model"] for x in rows["requests"]] == [MARKUP_MODEL]
        for path in ("/ui", "/ui/models", "/ui/config", "/ui/playground"):
            body = (await c.get(path)).text
            assert MARKUP_RULE not in body and MARKUP_MODEL not in body, path


async def test_text_reaches_a_page_only_when_the_request_log_keeps_it(make_router, tmp_path):
    r = make_router(log_text=False)
    async with client(r, headers=bearer(ADMIN_KEY)) as c:
        await r.aroute("the quiet prompt")
        rows = (await c.get("/v1/router/requests")).json()
        assert rows["text_kept"] is False
        assert "prompt" not in rows["requests"][0] and "answer" not in rows["requests"][0]
        assert "the quiet prompt" not in (await c.get("/ui/traffic")).text
    r2 = make_router(log_text=True)
    async with client(r2, headers=bearer(ADMIN_KEY)) as c:
        await r2.aroute("the loud prompt")
        rows = (await c.get("/v1/router/requests")).json()
        assert rows["requests"][0]["prompt"] == "the loud prompt"
        assert rows["requests"][0]["answer"] == "Hello from the fake provider."
        assert "the loud prompt" in (await c.get("/ui/traffic")).text


async def test_the_json_api_shows_traffic_spend_models_and_config(make_router, fake):
    r = make_router()
    async with client(r, headers=bearer(ADMIN_KEY)) as c:
        await r.aroute("hello")
        fake.enqueue(server_error(503))
        await r.aroute("Fix it", use_case="coding")  # fast fails, backup answers
        o = (await c.get("/v1/router/overview")).json()
        t = o["traffic"]
        assert t["requests"] == 2 and t["fallback_rate"] == pytest.approx(0.5)
        assert t["error_rate"] == 0 and sum(b["requests"] for b in t["buckets"]) == 2
        spent = {row["model"]: row for row in o["spend"]["today"]}
        assert set(spent) == {"fast", "backup"} and spent["backup"]["cost_usd"] > 0
        assert o["spend"]["month"] and o["spend"]["today_usd"] > 0
        reqs = (await c.get("/v1/router/requests", params={"rule": "coding"})).json()
        (row,) = reqs["requests"]
        assert row["fallback"] and [a["model"] for a in row["tried"]] == ["fast"]
        bad_limit = await c.get("/v1/router/requests", params={"limit": "many"})
        assert bad_limit.status_code == 400
        m = (await c.get("/v1/router/models")).json()
        assert {x["name"] for x in m["models"]} == {"fast", "tiny", "backup", MARKUP_MODEL}
        assert m["models"][0]["circuit"] == "closed"
        (budget,) = m["budgets"]
        assert budget["scope"] == "global" and 0 < budget["fraction"] < 1
        cfg = (await c.get("/v1/router/config")).json()
        assert cfg["tests_passed"] == 2 and cfg["tests_failed"] == 0
        assert cfg["files"] and cfg["sha256"] and cfg["last_reload"] is None
        page = await c.get("/ui/models")
        assert page.status_code == 200 and "<meter" in page.text
        assert_no_secrets(json.dumps([o, reqs, m, cfg]) + page.text)


async def test_the_playground_explains_and_runs(make_router):
    r = make_router()
    async with client(r, headers=bearer(ADMIN_KEY)) as c:
        body = {"prompt": "Fix this", "use_case": "coding", "tags": "a, b", "metadata": {}}
        trace = (await c.post("/v1/router/playground/explain", json=body)).json()
        assert trace["model"] == "fast" and trace["order"] == ["fast", "backup"]
        verdicts = {(row["rule"], row["model"]): row["verdict"] for row in trace["rows"]}
        assert verdicts[("coding", "fast")] == "chosen"
        assert verdicts[("coding", "backup")] == "kept #2"
        assert verdicts[("coding", "tiny")] == "dropped (context)"
        ran = await c.post("/v1/router/playground/run", json=body)
        assert ran.status_code == 200
        res = ran.json()
        assert res["text"] == "Hello from the fake provider." and res["model"] == "fast"
        assert res["cost_usd"] > 0 and res["attempts"] == []
        # Changes come as JSON from this origin only.
        form = await c.post("/v1/router/playground/run", data={"prompt": "x"})
        assert form.status_code == 415
        cross = await c.post(
            "/v1/router/playground/run", json=body, headers={"Origin": "http://evil.example"}
        )
        assert cross.status_code == 403
        empty = await c.post("/v1/router/playground/explain", json={"prompt": " "})
        assert empty.status_code == 400 and empty.json()["error"]["param"] == "prompt"
    usage = r.usage(("key",))
    assert [row["key"] for row in usage] == ["root"]  # spent under the admin key's name


async def test_a_failed_reload_shows_its_file_and_line(make_router, tmp_path):
    r = make_router()
    path = tmp_path / "router.yaml"
    good = path.read_text()
    async with client(r, headers=bearer(ADMIN_KEY)) as c:
        path.write_text(good.replace("rules:\n", "rules:\n  - {name: broken, targets: [\n", 1))
        r.reload()
        cfg = (await c.get("/v1/router/config")).json()
        assert cfg["version"] == 1
        assert re.search(r"router\.yaml:\d+", cfg["last_error"])
        assert cfg["last_reload"]["ok"] is False
        assert cfg["last_reload"]["lines"][0].startswith("reload failed, still serving version 1")
        page = (await c.get("/ui/config")).text
        assert "Last reload failed" in page and "router.yaml:" in page


def test_a_session_cookie_expires_and_ends_with_its_key():
    key = ApiKey(name="root", key=Secret(ADMIN_KEY), admin=True)
    token = session_token(key, now=1000.0)
    assert ADMIN_KEY not in token
    assert key_of_token(token, (key,), now=1060.0) is key
    assert key_of_token(token, (key,), now=1000.0 + COOKIE_TTL_S + 1) is None
    rotated = ApiKey(name="root", key=Secret("sk-router-rotated"), admin=True)
    assert key_of_token(token, (rotated,), now=1060.0) is None
    assert key_of_token("not-a-token", (key,), now=1060.0) is None


def test_admin_in_a_key_must_be_true_or_false(tmp_path, fake):
    path = tmp_path / "router.yaml"
    path.write_text(console_config(fake.base_url).replace("admin: true", "admin: 'yes'"))
    with pytest.raises(ConfigError) as err:
        load_config(path, environ=ENV)
    assert "admin" in str(err.value)
    path.write_text(console_config(fake.base_url))
    keys = load_config(path, environ=ENV).server.keys
    assert [(k.name, k.admin) for k in keys] == [("root", True), ("bob", False)]


def _own_address() -> str | None:
    """This machine's address on a network (not loopback), if it has one; no packet is sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # UDP: picks the route's source address only
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") else address


def test_a_real_server_with_no_keys_refuses_the_console_beyond_loopback(fake_server, tmp_path):
    address = _own_address()
    if address is None:
        pytest.skip("this machine has no address beyond loopback")
    config = tmp_path / "router.yaml"
    config.write_text(console_config(fake_server.base_url, keys=False))
    with ServerProcess(config, "--host", "0.0.0.0", "--allow-unauthenticated", "--no-watch") as s:
        assert httpx.get(f"http://127.0.0.1:{s.port}/ui", timeout=10).status_code == 200
        far = httpx.get(f"http://{address}:{s.port}/ui", timeout=10)
        assert far.status_code == 403 and "loopback" in far.text
        api = httpx.get(f"http://{address}:{s.port}/v1/router/overview", timeout=10)
        assert api.status_code == 403


async def test_the_playground_keeps_to_the_limits_of_the_admin_key(tmp_path, fake):
    path = tmp_path / "router.yaml"
    text = console_config(fake.base_url).replace(
        "name: root, admin: true", "name: root, admin: true, models: [backup]"
    )
    path.write_text(text)
    with Router.from_config(path, environ=ENV) as r:
        async with client(r, headers=bearer(ADMIN_KEY)) as c:
            refused = await c.post("/v1/router/playground/run", json={"prompt": "hello"})
            assert refused.status_code == 403
            assert refused.json()["error"]["code"] == "model_not_allowed"
            coding = await c.post(
                "/v1/router/playground/run", json={"prompt": "Fix it", "use_case": "coding"}
            )
            assert coding.status_code == 403  # coding chooses fast first: not backup
            assert fake.requests == []  # nothing was sent upstream
