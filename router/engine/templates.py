"""`system:` and `prompt:` templates: jinja2, sandboxed and bounded, compiled at load.

Undefined variables are errors (`{{ x | default('y') }}` still works), so a
typo shows up instead of rendering an empty string. Every render is held to a budget
of steps, seconds and size (`router.engine.sandbox`); `{% include %}`, `{% import %}`
and `{% extends %}` are refused at load.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from router.errors import RequestError

if TYPE_CHECKING:
    import jinja2

Render = Callable[[Mapping[str, Any]], str]


@lru_cache(maxsize=2)
def _environment(bounded: bool = True) -> jinja2.Environment:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from router.engine.sandbox import BoundedSandbox

    cls = BoundedSandbox if bounded else ImmutableSandboxedEnvironment
    return cls(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


@lru_cache(maxsize=4096)
def _compile(source: str, bounded: bool = True) -> tuple[Render, bool]:
    """The template's render function, and whether its renders run under a budget.

    Compiling is ~0.4 ms a template: a 1,000-rule config sharing a few prompts, or a
    reload that leaves most rules alone, compiles each distinct source once.
    Compiled templates are immutable and safe to render from many threads.
    """
    from router.engine.sandbox import needs_budget, refuse_loaders, renderer

    env = _environment(bounded)
    refuse_loaders(env, source)
    if bounded and not needs_budget(env, source):
        env, bounded = _environment(False), False
    return renderer(env.from_string(source), bounded), bounded


class Template:
    """A compiled template; `render` raises `RequestError` naming the rule.

    `bounded=False` renders on jinja2's plain immutable sandbox, for benchmarks'
    baselines only.
    """

    __slots__ = ("_budgeted", "_render", "owner", "source")

    def __init__(self, source: str, owner: str, *, bounded: bool = True) -> None:
        self.source = source
        self.owner = owner  # e.g. "rule coding: system"
        # Raises jinja2.TemplateSyntaxError; the snapshot builder turns it into ConfigError.
        self._render, self._budgeted = _compile(source, bounded)

    def render(self, variables: Mapping[str, Any]) -> str:
        try:
            return self._render(variables)
        except Exception as exc:  # jinja2's, a bound's, or Python's from template code
            raise RequestError(f"{self.owner} template: {_words(exc)}") from None


def _words(exc: Exception) -> str:
    """What went wrong in a render, in words (imports only when one fails)."""
    import jinja2

    from router.engine.sandbox import RenderLimit

    if isinstance(exc, jinja2.UndefinedError):
        return str(exc.message)
    if isinstance(exc, jinja2.TemplateError):
        return str(exc)
    if isinstance(exc, RenderLimit):
        return f"rendering stopped: {exc}"
    if isinstance(exc, RecursionError):
        return "recursion too deep"
    if isinstance(exc, MemoryError):
        return "out of memory while rendering"
    return f"{type(exc).__name__}: {exc}"  # TypeError, OverflowError, IndexError...


def template_error(exc: Exception) -> tuple[str, int | None]:
    """Message and line (inside the template) of a jinja2 compile error."""
    import jinja2

    if isinstance(exc, jinja2.TemplateSyntaxError):
        return exc.message or str(exc), exc.lineno
    return str(exc), None
