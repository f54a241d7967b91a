"""The new config keys: read into dataclasses, and bad values named at their line."""

from __future__ import annotations

import pytest

from router.config.loader import load_config
from router.config.model import CachePolicy, CacheStore, RequestLogSettings
from router.errors import ConfigError

BASE = """\
providers:
  echo: {type: mock}
models:
  m: {provider: echo}
rules:
  - name: default
    targets: [m]
RULE_EXTRA
settings:
SETTINGS
"""


def load(tmp_path, settings: str = "  debounce_ms: 100", rule_extra: str = ""):
    path = tmp_path / "r.yaml"
    path.write_text(BASE.replace("SETTINGS", settings).replace("RULE_EXTRA", rule_extra))
    return load_config(path)


def test_cache_and_request_log_settings_are_read(tmp_path):
    cfg = load(
        tmp_path,
        "  cache: {ttl: 30, backend: sqlite, path: c.sqlite}\n"
        "  request_log: {path: r.jsonl, max_bytes: 2048, backups: 2}\n"
        "  log_text: true",
        "    cache: {ttl: 5, sampled: true}",
    )
    s = cfg.settings
    assert s.cache == CachePolicy(ttl=30.0)
    assert s.cache_store == CacheStore(backend="sqlite", path="c.sqlite")
    assert s.request_log == RequestLogSettings("r.jsonl", 2048, 2, log_text=True)
    assert cfg.rules[0].cache == CachePolicy(ttl=5.0, sampled=True)
    assert load(tmp_path, "  request_log: x.jsonl").settings.request_log == RequestLogSettings(
        "x.jsonl"
    )
    assert load(tmp_path, rule_extra="    cache: false").rules[0].cache == CachePolicy(False)


@pytest.mark.parametrize(
    ("settings", "rule_extra", "where"),
    [
        ("  cache: {ttl: -1}", "", "settings.cache.ttl"),
        ("  cache: {backend: redis}", "", "settings.cache.backend"),
        ("  request_log: {max_bytes: 4096}", "", "settings.request_log"),
        ("  request_log: 5", "", "settings.request_log"),
        ("  debounce_ms: 1", "    cache: {ttl: 10, colour: red}", "rules[0].cache"),
    ],
)
def test_bad_values_are_named_with_file_and_line(tmp_path, settings, rule_extra, where):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, settings, rule_extra)
    text = str(err.value)
    assert "r.yaml:" in text and where in text
