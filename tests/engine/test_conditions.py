from __future__ import annotations

import dataclasses

import pytest

from router.config.patterns import PatternError
from router.engine.conditions import compile_condition, indexed_use_cases
from tests.engine.builders import req


@pytest.mark.parametrize(
    ("when", "request_kw", "use_case", "expected"),
    [
        ({"use_case": "coding"}, {}, "coding", True),
        ({"use_case": ["coding", "debugging"]}, {}, "debugging", True),
        ({"use_case": "coding"}, {}, "chat", False),
        ({"use_case": "coding"}, {}, None, False),
        ({"matches": r"(?i)\bstack trace\b"}, {"prompt": "Here is a Stack Trace"}, None, True),
        ({"matches": r"^SELECT"}, {"prompt": "select * from t"}, None, False),
        ({"contains": ["rust", "golang"]}, {"prompt": "Write it in RUST please"}, None, True),
        ({"contains": "rust"}, {"prompt": "trusty old code"}, None, False),
        ({"contains": ["c++"]}, {"prompt": "port this to C++ today"}, None, True),
        ({"tags": ["prod", "eu"]}, {"tags": ["eu", "prod", "x"]}, None, True),
        ({"tags": ["prod", "eu"]}, {"tags": ["prod"]}, None, False),
        ({"metadata": {"tier": "gold"}}, {"metadata": {"tier": "gold", "a": 1}}, None, True),
        ({"metadata": {"tier": "gold"}}, {"metadata": {"tier": "free"}}, None, False),
        ({"metadata": {"tier": None}}, {"metadata": {}}, None, False),
        ({"not": {"use_case": "chat"}}, {}, "coding", True),
        ({"not": {"use_case": "chat"}}, {}, "chat", False),
        ({"any": [{"use_case": "chat"}, {"contains": "hi"}]}, {"prompt": "hi there"}, None, True),
        ({"any": [{"use_case": "chat"}, {"contains": "yo"}]}, {"prompt": "hi there"}, None, False),
        ({"all": [{"use_case": "chat"}, {"contains": "hi"}]}, {"prompt": "hi"}, "chat", True),
        ({"all": [{"use_case": "chat"}, {"contains": "hi"}]}, {"prompt": "hey"}, "chat", False),
        # several keys in one mapping must all hold
        ({"use_case": "chat", "tags": ["x"]}, {"tags": ["x"]}, "chat", True),
        ({"use_case": "chat", "tags": ["x"]}, {}, "chat", False),
    ],
)
def test_condition(when, request_kw, use_case, expected):
    prompt = request_kw.pop("prompt", "hello")
    predicate = compile_condition(when)
    assert predicate(req(prompt, **request_kw), use_case) is expected


@pytest.mark.parametrize(
    ("bounds", "tokens", "expected"),
    [
        ({"gt": 100}, 101, True),
        ({"gt": 100}, 100, False),
        ({"gte": 100}, 100, True),
        ({"lt": 100}, 99, True),
        ({"lt": 100}, 100, False),
        ({"lte": 100}, 100, True),
        ({"gt": 10, "lt": 20}, 15, True),
        ({"gt": 10, "lt": 20}, 25, False),
    ],
)
def test_tokens(bounds, tokens, expected):
    r2 = dataclasses.replace(req("x"), tokens=tokens)
    assert compile_condition({"tokens": bounds})(r2, None) is expected


def test_empty_condition_matches_everything():
    assert compile_condition(None)(req(), None) is True
    assert compile_condition({})(req(), "anything") is True


def test_unknown_condition_is_refused():
    with pytest.raises(ValueError, match="unknown condition 'colour'"):
        compile_condition({"colour": "red"})


def test_bad_regex_fails_at_compile():
    with pytest.raises(PatternError, match="invalid regular expression"):
        compile_condition({"matches": "(unclosed"})


def test_index_reads_top_level_use_case_only():
    assert indexed_use_cases({"use_case": ["a", "b"]}) == {"a", "b"}
    assert indexed_use_cases({"use_case": "a", "tags": ["t"]}) == {"a"}
    assert indexed_use_cases({"any": [{"use_case": "a"}]}) is None
    assert indexed_use_cases(None) is None
