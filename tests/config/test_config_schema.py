"""The JSON Schema: valid, shipped inside the package, and the fast path agrees with it."""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from router.config import load_config
from router.config.schema import fast_check, schema
from tests.config.bigconfig import big_config_yaml
from tests.config.test_config_fields import FULL

ROOT = Path(__file__).resolve().parents[2]


def test_schema_is_valid_draft_2020_12() -> None:
    doc = json.loads((ROOT / "schemas" / "config.schema.json").read_text())
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["additionalProperties"] is False


def test_schema_ships_inside_the_package() -> None:
    link = ROOT / "router" / "schemas"
    assert link.is_symlink() and Path(link.readlink()) == Path("../schemas")
    text = resources.files("router").joinpath("schemas", "config.schema.json").read_text()
    assert json.loads(text) == schema()


def test_condition_keys_match_the_engine() -> None:
    from router.engine.conditions import CONDITIONS

    assert set(schema()["$defs"]["condition"]["properties"]) == set(CONDITIONS)


def test_fast_check_covers_the_whole_schema() -> None:
    assert fast_check() is not None  # else every load would go through jsonschema


def _documents() -> list[Any]:
    return [
        yaml.safe_load(textwrap.dedent(FULL)),
        yaml.safe_load(big_config_yaml(n_rules=6, n_models=6)),
    ]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


REPLACEMENTS: list[Any] = [
    None, True, False, 0, 1, -1, 1.5, 0.0, "", "x", "ordered", "litellm", "fallback",
    [], ["x"], [1], {}, {"x": 1}, {"gt": 1}, {"matches": "a"}, float("inf"),
]  # fmt: skip


def _mutations(doc: Any, rng: random.Random, n: int) -> list[Any]:
    paths = [p for p in _paths(doc) if p]
    out = []
    for _ in range(n):
        mutated = copy.deepcopy(doc)
        path = rng.choice(paths)
        parent = mutated
        for part in path[:-1]:
            parent = parent[part]
        if rng.random() < 0.2 and isinstance(parent, dict):
            parent[rng.choice(["extra", "x-ok", "", "use_case", "name", "type"])] = rng.choice(
                REPLACEMENTS
            )
        elif rng.random() < 0.1 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(REPLACEMENTS))
        out.append(mutated)
    return out


def test_fast_check_agrees_with_jsonschema() -> None:
    check = fast_check()
    assert check is not None
    validator = Draft202012Validator(schema())
    rng = random.Random(20260101)
    invalid = 0
    for doc in _documents():
        assert check(doc) and validator.is_valid(doc)
        for mutated in _mutations(doc, rng, 300):
            expected = validator.is_valid(mutated)
            assert check(mutated) == expected, json.dumps(mutated, default=str)[:2000]
            invalid += not expected
    assert invalid > 250  # the mutations did produce plenty of invalid documents


@pytest.mark.parametrize(
    "doc",
    [
        {"budgets": None},
        {"budgets": []},
        {"budgets": [{"scope": "global"}]},
        {"budgets": [{"scope": "team"}]},
        {"budgets": {"global": {"daily": 1}, "rules": {"a": {"weekly": 1}}}},
        {"settings": {"debounce_ms": True}},
        {"rules": [{"name": "a", "targets": ["m"], "when": None}]},
        {"rules": [{"name": "a", "targets": ["m"], "when": {"tokens": {}}}]},
        {"rules": [{"name": "a", "targets": ["m"], "when": {"use_case": []}}]},
        {"rules": [{"name": "a", "targets": ["m"], "when": {"any": [{"not": {"x": 1}}]}}]},
        {"models": {"": {"provider": "p"}}},
        {"models": {"m": {"provider": "p", "context": 4096.0}}},
        {"providers": {"p": {"type": "mock", "fail": 0}}},
        {"providers": {"p": {"type": "mock", "fail": False}}},
        {"x-whatever": [1, 2]},
    ],
)
def test_fast_check_agrees_on_edge_cases(doc: dict[str, Any]) -> None:
    check = fast_check()
    assert check is not None
    assert check(doc) == Draft202012Validator(schema()).is_valid(doc)


def test_a_valid_load_does_not_import_jsonschema(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(big_config_yaml(n_rules=50, n_models=10))
    code = (
        "import sys; from router.config import load_config; "
        f"load_config({str(path)!r}, environ={{}}); print('jsonschema' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_big_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(big_config_yaml())
    config = load_config(path, environ={})
    assert len(config.rules) == 1000 and len(config.models) == 100
    assert config.rules[999].name == "default" and config.rules[999].when is None
    assert config.rules[3].when is not None and "any" in config.rules[3].when
    assert config.rules[0].params == {"temperature": 0.2, "max_tokens": 512}
