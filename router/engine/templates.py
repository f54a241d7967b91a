"""`system:` and `prompt:` templates: jinja2, sandboxed and bounded, compiled at load.

Undefined variables are errors (`{{ x | default('y') }}` still works), so a
typo shows up instead of rendering an empty string. Every render is held to a budget
of steps, seconds and size (`router.engine.sandbox`); `{% include %}`, `{% import %}`
and `{% extends %}` are refused at load.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from router.errors import RequestError

if TYPE_CHECKING:
    import jinja2


@lru_cache(maxsize=2)
def _environment(bounded: bool = True) -> jinja2.Environment:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from router.engine.sandbox import BoundedSandbox

    cls = BoundedSandbox if bounded else ImmutableSandboxedEnvironment
    return cls(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


@lru_cache(maxsize=4096)
def _compile(source: str, bounded: bool = True) -> tuple[jinja2.Template, bool, dict[str, Any]]:
    """The compiled template, whether its renders need a budget, and its globals.

    Compiling is ~0.4 ms a template: a 1,000-rule config sharing a few prompts, or a
    reload that leaves most rules alone, compiles each distinct source once.
    Compiled templates are immutable and safe to render from many threads.

    The globals come as one flat dict: jinja2 keeps them in a ChainMap that every
    render copies key by key in Python (about half of a short render's time).
    """
    from router.engine.sandbox import needs_budget, refuse_loaders

    env = _environment(bounded)
    refuse_loaders(env, source)
    if bounded and not needs_budget(env, source):
        env, bounded = _environment(False), False
    compiled = env.from_string(source)
    return compiled, bounded, dict(compiled.globals)


class Template:
    """A compiled template; `render` raises `RequestError` naming the rule.

    `bounded=False` renders on jinja2's plain immutable sandbox, for benchmarks'
    baselines only.
    """

    __slots__ = ("_budgeted", "_compiled", "_globals", "owner", "source")

    def __init__(self, source: str, owner: str, *, bounded: bool = True) -> None:
        self.source = source
        self.owner = owner  # e.g. "rule coding: system"
        # Raises jinja2.TemplateSyntaxError; the snapshot builder turns it into ConfigError.
        self._compiled, self._budgeted, self._globals = _compile(source, bounded)

    def render(self, variables: Mapping[str, Any]) -> str:
        import jinja2

        from router.engine.sandbox import RenderLimit, new_context, render_bounded

        try:
            if not self._budgeted:  # nothing in it can grow (see `needs_budget`)
                compiled = self._compiled
                context = new_context(compiled, self._globals, variables)
                return "".join(compiled.root_render_func(context))
            return render_bounded(self._compiled, variables, self._globals)
        except jinja2.UndefinedError as exc:
            raise RequestError(f"{self.owner} template: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise RequestError(f"{self.owner} template: {exc}") from None
        except RenderLimit as exc:
            raise RequestError(f"{self.owner} template: rendering stopped: {exc}") from None
        except RecursionError:
            raise RequestError(f"{self.owner} template: recursion too deep") from None
        except MemoryError:
            raise RequestError(f"{self.owner} template: out of memory while rendering") from None
        except Exception as exc:  # TypeError, OverflowError, IndexError... from template code
            raise RequestError(f"{self.owner} template: {type(exc).__name__}: {exc}") from None


def template_error(exc: Exception) -> tuple[str, int | None]:
    """Message and line (inside the template) of a jinja2 compile error."""
    import jinja2

    if isinstance(exc, jinja2.TemplateSyntaxError):
        return exc.message or str(exc), exc.lineno
    return str(exc), None
