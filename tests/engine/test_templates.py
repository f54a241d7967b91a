from __future__ import annotations

import pytest

from router.engine.templates import Template
from router.errors import RequestError


def test_renders_with_defaults_and_variables():
    t = Template("You are a careful {{ language | default('Python') }} engineer.", "rule r")
    assert t.render({}) == "You are a careful Python engineer."
    assert t.render({"language": "Rust"}) == "You are a careful Rust engineer."


def test_undefined_variable_is_an_error_naming_the_owner():
    t = Template("Hello {{ name }}", "rule greet: system")
    with pytest.raises(RequestError, match="rule greet: system template: 'name' is undefined"):
        t.render({})


def test_syntax_error_raises_at_compile():
    with pytest.raises(Exception, match="unexpected"):
        Template("{{ oops }", "rule r")


def test_sandbox_blocks_unsafe_attribute_access():
    t = Template("{{ x.__class__.__mro__ }}", "rule r")
    with pytest.raises(Exception):  # noqa: B017 - jinja2's SecurityError or our RequestError
        t.render({"x": 1})
