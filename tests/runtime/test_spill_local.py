"""Local-first spill-over with the real Gemma model under concurrent requests."""

from __future__ import annotations

import textwrap
import threading
import time
from pathlib import Path

import pytest

from router import ConfigError, Router
from router.testing import FakeProviderServer
from tests.providers.llama_fixtures import BASE_SETTINGS, MODEL_FILE, llama_cpp_module, models_dir

__all__ = ["llama_cpp_module", "models_dir"]  # fixtures, used by name

pytestmark = pytest.mark.llama


def config_text(models_dir: Path, fake: FakeProviderServer, spill: str) -> str:
    settings = ", ".join(f"{k}: {v}" for k, v in BASE_SETTINGS.items())
    return textwrap.dedent(
        f"""\
        providers:
          mine: {{type: llama_cpp, models_dir: "{models_dir}", {settings}}}
          cloud: {{type: litellm, api_key: k, api_base: "{fake.base_url}", retries: 0}}
        models:
          local: {{provider: mine, model: {MODEL_FILE}, context: 1024}}
          cloud: {{provider: cloud, model: openai/gpt-4o-mini, cost: {{input: 0.15, output: 0.6}}}}
        rules:
          - name: local-first
            targets: [local, cloud]
            spill: {spill}
        settings: {{usage_db: ":memory:"}}
        """
    )


def test_overflow_goes_to_the_cloud_and_nothing_fails(tmp_path: Path, models_dir: Path) -> None:
    with FakeProviderServer(reply="from the cloud") as fake:
        path = tmp_path / "rules.yaml"
        path.write_text(config_text(models_dir, fake, "{queue: 1}"))
        with Router.from_config(path) as r:
            r.route("Hello", max_tokens=1)  # load the model before the burst
            results: list = []
            errors: list = []

            def one(i: int) -> None:
                try:
                    results.append(r.route(f"Count to ten: {i}", max_tokens=24, temperature=0))
                except Exception as exc:  # a failure is what this test looks for
                    errors.append(exc)

            threads = []
            for i in range(8):
                t = threading.Thread(target=one, args=(i,))
                t.start()
                threads.append(t)
                # Wait (bounded) until this request has been admitted somewhere, so each
                # decision sees the queue the ones before it made.
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    models = r.status()["state"]["models"]
                    busy = sum(m["in_flight"] for m in models.values())
                    if busy + len(results) + len(errors) >= i + 1:
                        break
                    time.sleep(0.005)
            for t in threads:
                t.join(120)
    assert not errors
    assert len(results) == 8
    served = [res.model for res in results]
    assert "local" in served and "cloud" in served
    for res in results:
        note = res.decision.rules[0].note
        if res.model == "cloud":
            assert note.startswith("spilled: local queue ") and note.endswith(" > 1")
            assert int(note.split()[3]) > 1
            assert res.text == "from the cloud"
        else:
            assert note == "" and res.text


def test_spill_setting_is_checked(tmp_path: Path, models_dir: Path) -> None:
    with FakeProviderServer() as fake:
        path = tmp_path / "rules.yaml"
        path.write_text(config_text(models_dir, fake, "{queue: -1, later: 3}"))
        with pytest.raises(ConfigError) as info:
            Router.from_config(path)
    text = str(info.value)
    assert "rules[0].spill.queue: must be at least 0" in text
    assert "unknown key 'later'" in text
