"""Whatever the file holds, load_config returns a Config or raises ConfigError: no yaml,
jsonschema or Python error gets out."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import yaml

from router.config import Config, load_config
from router.errors import ConfigError
from tests.config.conftest import Write, issue_at, issues_of
from tests.config.test_config_fields import ENV, FULL
from tests.config.test_config_schema import _documents, _mutations

PIECES = [*":-[]{}\"'#&*!|>%@`, \n\t$\\~<=x0.", "${A}", "${", "<<: *a", "&a ", "*a", "!!int ",
          "!!binary ", "? ", "---\n", "\ufeff", "é", "!!float "]  # fmt: skip


def _load(path: Path) -> Config | ConfigError:
    try:
        return load_config(path, environ={"A": "1", **ENV})
    except ConfigError as exc:
        assert exc.issues and all(i.message for i in exc.issues)
        return exc


def test_text_mutations(tmp_path: Path) -> None:
    base = textwrap.dedent(FULL).lstrip("\n")
    rng = random.Random(7)
    path = tmp_path / "f.yaml"
    outcomes = set()
    for _ in range(200):
        text = list(base)
        for _ in range(rng.randint(1, 5)):
            pos = rng.randrange(len(text))
            op = rng.random()
            if op < 0.4:
                text.insert(pos, rng.choice(PIECES))
            elif op < 0.7:
                del text[pos]
            else:
                text[pos] = rng.choice(PIECES)
        path.write_text("".join(text), encoding="utf-8")
        outcomes.add(type(_load(path)).__name__)
    assert outcomes == {"Config", "ConfigError"}


def test_structure_mutations(tmp_path: Path) -> None:
    rng = random.Random(11)
    path = tmp_path / "f.yaml"
    errors = 0
    for doc in _documents():
        for mutated in _mutations(doc, rng, 60):
            path.write_text(yaml.safe_dump(mutated, allow_unicode=True), encoding="utf-8")
            errors += isinstance(_load(path), ConfigError)
    assert errors > 40


def test_bad_explicit_tag(write: Write) -> None:
    path = write("providers:\n  p: {type: mock, retries: !!int soon}\n")
    issue = issue_at(issues_of(path), "providers.p.retries")
    assert issue.line == 2 and issue.message == "not a valid int"


def test_nan_is_rejected_where_written(write: Write) -> None:
    # jsonschema lets NaN through every bound (NaN < 0 is false); a `.nan` max_cost
    # would filter nothing and a `.nan` weight would never be picked.
    path = write(
        """
        providers:
          p: {type: mock, timeout: .nan}
        models:
          m:
            provider: p
            weight: .NaN
            cost:
              input: ${PRICE}
        rules:
          - {name: d, targets: [m], max_cost: .nan}
        """
    )
    issues = issues_of(path, environ={"PRICE": ".nan"})
    assert [(i.pointer, i.line) for i in issues] == [
        ("providers.p.timeout", 2),
        ("models.m.weight", 6),
        ("models.m.cost.input", 8),
        ("rules[0].max_cost", 10),
    ]
    assert all(i.message == "`.nan` is not a usable number" for i in issues)
