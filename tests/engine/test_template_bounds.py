"""Templates are bounded in work and size: hostile ones stop with a RequestError naming
the rule, quickly, and the router goes on serving. Each hostile render runs through a
real Router in a child process with a memory limit, so a regression fails on a
timeout or a MemoryError there instead of taking the suite down."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest

from router import Router
from router.config import load_config
from router.engine.templates import Template
from router.errors import ConfigError, RequestError

ROOT = Path(__file__).resolve().parents[2]

HOSTILE = {
    "nested ranges": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
    "{% endfor %}",
    "replace growth": "{{ ('a'*10000)|replace('a','a'*100000) }}",
    "repeat 10 GB": "{{ 'a'*10**10 }}",
    "loops over the prompt": "{% for a in prompt %}{% for b in prompt %}{% for c in prompt %}"
    "{% endfor %}{% endfor %}{% endfor %}",
    "namespace doubling": "{% set ns = namespace(x='ab') %}{% for i in range(40) %}"
    "{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x|length }}",
    "plus doubling": "{% set ns = namespace(x='ab') %}{% for i in range(40) %}"
    "{% set ns.x = ns.x + ns.x %}{% endfor %}{{ ns.x|length }}",
    "macro fan-out": "{% macro f(n) %}{% if n > 0 %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}"
    "{% endmacro %}{{ f(40) }}",
    "ljust": "{{ 'x'.ljust(10**9) }}",
    "printf width": "{{ '%0999999999d' % 1 }}",
    "format width": "{{ '{:>999999999}'.format(1) }}",
    "center filter": "{{ 'x'|center(10**9) }}",
    "indent filter": "{{ 'a\\nb'|indent(10**9) }}",
    "big power": "{{ 2**99999999 }}",
    "list repeat": "{{ (['a']*10**9)|length }}",
    "join growth": "{{ ('a'*900000 ~ ',')|list|join('x'*100) }}",
    "output size": "{% for i in range(100000) %}{{ 'x'*100 }}{% endfor %}",
    "format filter": "{{ '%999999999s'|format('x') }}",
    "list of references": "{% set x = 'a' * 900000 %}{{ [x] * 1000 }}",
    "container output": "{% set x = 'a' * 900000 %}{{ [x, x, x, x, x] }}",
    "printf of references": "{% set x = 'a' * 900000 %}{{ '%s%s%s' % (x, x, x) }}",
    "string filter": "{% set x = 'a' * 900000 %}{{ ([x, x])|string }}",
}

CHILD = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from router import Router
from router.errors import RouterError
cases = json.loads(sys.argv[1])
out = {}
for name, source in cases.items():
    config = {
        "providers": {"echo": {"type": "mock"}},
        "models": {"m": {"provider": "echo"}},
        "rules": [{"name": "hostile", "targets": ["m"], "prompt": source, "deadline": 5}],
    }
    import yaml, pathlib
    path = pathlib.Path(sys.argv[2]) / "router.yaml"
    path.write_text(yaml.safe_dump(config))
    with Router.from_config(path) as router:
        start = time.process_time()
        try:
            router.route("p" * 300)
            out[name] = ["served", ""]
        except RouterError as exc:
            out[name] = [type(exc).__name__, str(exc)]
        out[name].append(time.process_time() - start)
print(json.dumps(out))
"""


def test_hostile_templates_stop_with_words(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(HOSTILE), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)
    for name in HOSTILE:
        kind, message, _cpu = results[name]
        assert kind == "RequestError", (name, kind, message)
        assert message.startswith("rule hostile: prompt template: rendering stopped:"), (
            name,
            message,
        )


def test_a_router_serves_on_after_a_hostile_render(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(
        "providers: {echo: {type: mock, reply: '{prompt}'}}\n"
        "models: {m: {provider: echo}}\n"
        "rules:\n"
        "  - {name: loops, when: {tags: [evil]}, targets: [m],\n"
        '     prompt: "{% for i in range(10**5) %}{% for j in range(10**5) %}{% endfor %}'
        '{% endfor %}"}\n'
        "  - {name: plain, targets: [m], prompt: 'Task: {{ prompt }}'}\n"
    )
    with Router.from_config(path) as router:
        with pytest.raises(RequestError, match="more than 200,000 steps"):
            router.route("x", tags=["evil"])
        assert router.route("hello").text.endswith("Task: hello")


def test_ordinary_templates_render_as_before() -> None:
    t = Template(
        "{% for m in metadata.names|default([]) %}- {{ m|upper }}\n{% endfor %}"
        "{{ prompt|replace('a', 'b') }} {{ '%05d' % 42 }} {{ 'x' * 3 }} {{ 2 ** 10 }}"
        "{{ ', '.join(['a', 'b']) }} {{ '{:>4}'.format(7) }} {{ tags|join(',') }}",
        "rule r: prompt",
    )
    out = t.render({"metadata": {"names": ["a", "b"]}, "prompt": "banana", "tags": ["t1", "t2"]})
    assert out == "- A\n- B\nbbnbnb 00042 xxx 1024a, b    7 t1,t2"


@pytest.mark.parametrize(
    ("source", "tag"),
    [
        ("{% include 'x.txt' %}", "include"),
        ("{% import 'macros.j2' as m %}{{ m.x() }}", "import"),
        ("{% from 'macros.j2' import x %}", "from ... import"),
        ("{% extends 'base.j2' %}", "extends"),
    ],
)
def test_include_import_extends_are_refused_at_load(tmp_path: Path, source: str, tag: str) -> None:
    with pytest.raises(jinja2.TemplateSyntaxError, match=f"{{% {tag} %}} is not supported"):
        Template(source, "rule r: prompt")
    path = tmp_path / "router.yaml"
    path.write_text(
        "providers: {echo: {type: mock}}\nmodels: {m: {provider: echo}}\nrules:\n"
        f'  - name: r\n    targets: [m]\n    prompt: "{source}"\n'
    )
    with pytest.raises(ConfigError) as info:
        Router(load_config(path, environ={}))
    assert "is not supported" in str(info.value)
    assert info.value.issues[0].line == 4


@pytest.mark.parametrize(
    ("source", "budgeted"),
    [
        ("Task: {{ prompt | trim }}", False),
        ("{{ use_case|upper }}: {{ prompt }}", False),
        ("{% for t in tags %}{{ t }}{% endfor %}", True),
        ("{{ prompt * 2 }}", True),
        ("{{ prompt ~ '!' }}", True),
        ("{{ prompt|replace('a', 'b') }}", True),
        ("{{ [prompt, prompt] }}", True),
        ("{{ prompt.upper() }}", True),
    ],
)
def test_only_templates_that_can_grow_render_under_a_budget(source: str, budgeted: bool) -> None:
    assert Template(source, "rule r: prompt")._budgeted is budgeted
