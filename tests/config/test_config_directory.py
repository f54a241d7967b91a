"""A directory of YAML files: merged by section, in name order; duplicates name both places."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from router.config import load_config
from router.errors import ConfigError
from tests.config.conftest import Write, issue_at, issues_of

PROVIDERS = """
providers:
  echo: {type: mock}
  other: {type: mock}
"""

MODELS = """
models:
  small: {provider: echo}
  large: {provider: other}
use_cases:
  coding: {contains: [def]}
"""

RULES_A = """
rules:
  - {name: coding, when: {use_case: coding}, targets: [large]}
  - {name: chat, when: {use_case: chat}, targets: [small]}
"""

RULES_B = """
rules:
  - {name: default, targets: [small]}
tests:
  - {prompt: hi, expect: {rule: default}}
"""


@pytest.fixture
def confdir(write: Write, tmp_path: Path) -> Path:
    write(PROVIDERS, "conf/00-providers.yaml")
    write(MODELS, "conf/10-models.yml")
    write(RULES_A, "conf/20-rules.yaml")
    write(RULES_B, "conf/30-default.yaml")
    write("", "conf/15-empty.yaml")  # an empty file is an empty config
    write("rules: [this is not read]", "conf/.hidden.yaml")  # editors' temp files
    write("rules: [nor this]", "conf/notes.txt")
    write("rules: [nor this]", "conf/sub/nested.yaml")  # no recursion
    return tmp_path / "conf"


def test_sections_merge_and_rules_keep_file_order(confdir: Path) -> None:
    config = load_config(confdir, environ={})
    assert list(config.providers) == ["echo", "other"]
    assert list(config.models) == ["small", "large"]
    assert [r.name for r in config.rules] == ["coding", "chat", "default"]
    assert list(config.use_cases) == ["coding"]
    assert len(config.tests) == 1
    assert config.rules[2].where.file == os.path.join(str(confdir), "30-default.yaml")
    assert config.rules[2].where.line == 2
    assert config.rules[2].where.pointer == "rules[2]"


def test_files_and_sha256_follow_name_order(confdir: Path) -> None:
    config = load_config(confdir, environ={})
    names = ["00-providers.yaml", "10-models.yml", "15-empty.yaml", "20-rules.yaml",
             "30-default.yaml"]  # fmt: skip
    assert config.files == tuple(str((confdir / n).resolve()) for n in names)
    digest = hashlib.sha256()
    for n in names:
        digest.update((confdir / n).read_bytes())
    assert config.sha256 == digest.hexdigest()


def test_an_edit_changes_the_hash(confdir: Path) -> None:
    before = load_config(confdir, environ={}).sha256
    (confdir / "20-rules.yaml").write_text(RULES_A + "# a comment\n")
    assert load_config(confdir, environ={}).sha256 != before


def test_errors_in_a_later_file_use_merged_indexes_and_that_file(
    confdir: Path, write: Write
) -> None:
    write(
        """
        rules:
          - {name: extra, when: {use_case: x}, targets: [small]}
          - name: typo
            when: {use_case: y}
            targets: [smal]
        """,
        "conf/25-more.yaml",
    )
    issue = issue_at(issues_of(confdir), "rules[3].targets[0]")
    assert issue.file == os.path.join(str(confdir), "25-more.yaml")
    assert issue.line == 5
    assert issue.message == "unknown model 'smal' (did you mean 'small'?)"


def test_schema_errors_in_a_later_file_use_merged_indexes(confdir: Path, write: Write) -> None:
    write("rules:\n  - {name: x, targets: [small], strategy: fastes}\n", "conf/25-more.yaml")
    issue = issue_at(issues_of(confdir), "rules[2].strategy")
    assert issue.file == os.path.join(str(confdir), "25-more.yaml") and issue.line == 2


@pytest.mark.parametrize(
    ("text", "pointer", "line", "message"),
    [
        ("providers:\n  echo: {type: mock}\n", "providers.echo", 2,
         "duplicate provider 'echo' (first defined at {dir}/00-providers.yaml:2)"),
        ("models:\n\n  large: {provider: echo}\n", "models.large", 3,
         "duplicate model 'large' (first defined at {dir}/10-models.yml:3)"),
        ("use_cases:\n  coding: {matches: x}\n", "use_cases.coding", 2,
         "duplicate use case 'coding' (first defined at {dir}/10-models.yml:5)"),
        ("rules:\n  - {name: chat, when: {tags: [x]}, targets: [small]}\n", "rules[2].name", 2,
         "duplicate rule 'chat' (first defined at {dir}/20-rules.yaml:3)"),
    ],
)  # fmt: skip
def test_duplicates_across_files_name_both_places(
    confdir: Path, write: Write, text: str, pointer: str, line: int, message: str
) -> None:
    write(text, "conf/25-dup.yaml")
    issue = issue_at(issues_of(confdir), pointer)
    assert issue.file == os.path.join(str(confdir), "25-dup.yaml")
    assert issue.line == line
    assert issue.message == message.format(dir=str(confdir))


def test_settings_set_twice_across_files(write: Write, tmp_path: Path) -> None:
    write(PROVIDERS + MODELS + RULES_B + "settings: {debounce_ms: 50}\n", "d/a.yaml")
    write("settings:\n  deadline: 9\n  debounce_ms: 70\n", "d/b.yaml")
    issue = issue_at(issues_of(tmp_path / "d"), "settings.debounce_ms")
    assert issue.line == 3 and issue.file == os.path.join(str(tmp_path / "d"), "b.yaml")
    assert "set twice" in issue.message and "a.yaml:" in issue.message


def test_budgets_merge_across_forms(write: Write, tmp_path: Path) -> None:
    write(PROVIDERS + MODELS + RULES_B + "budgets: [{scope: global, daily: 3}]\n", "b/a.yaml")
    write("budgets:\n  models: {small: {daily: 1}}\n", "b/b.yaml")
    config = load_config(tmp_path / "b", environ={})
    assert [(b.scope, b.name, b.daily) for b in config.budgets] == [
        ("global", None, 3.0),
        ("model", "small", 1.0),
    ]


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config not found") as info:
        load_config(tmp_path / "nope.yaml", environ={})
    assert info.value.file == str(tmp_path / "nope.yaml")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no \*\.yaml or \*\.yml files"):
        load_config(tmp_path / "empty", environ={})


def test_a_broken_file_skips_cross_file_checks(confdir: Path, write: Write) -> None:
    write("models:\n  broken: {provider: echo\n", "conf/12-broken.yaml")
    issues = issues_of(confdir)
    # only the syntax error: not "unknown model" noise for what the broken file defined
    assert len(issues) == 1
    assert issues[0].file == os.path.join(str(confdir), "12-broken.yaml")
    assert issues[0].message.startswith("invalid YAML")


def test_a_budget_set_twice_across_files_points_at_the_second(write: Write, tmp_path: Path) -> None:
    # The mapping form writes the same pointer (budgets.global) in both files.
    a = write(PROVIDERS + MODELS + RULES_B + "budgets:\n  global: {daily: 5}\n", "b/a.yaml")
    write("# more\n\nbudgets:\n  global: {daily: 7}\n  models: {small: {}}\n", "b/b.yaml")
    issues = issues_of(tmp_path / "b")
    dup = issue_at(issues, "budgets.global")
    assert dup.file == os.path.join(str(tmp_path / "b"), "b.yaml") and dup.line == 4
    first = a.read_text().splitlines().index("  global: {daily: 5}") + 1
    assert dup.message == f"duplicate budget (first at {a}:{first})"
    empty = issue_at(issues, "budgets.models.small")
    assert empty.file == dup.file and empty.line == 5
