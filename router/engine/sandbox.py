"""A jinja2 sandbox that bounds what one render may cost, in work and in size.

jinja2's sandbox keeps templates away from Python internals, but not from the CPU or
memory: nested `range` loops ran for minutes, `'a'*10**10` asked for 10 GB and
`('a'*10000)|replace('a','a'*100000)` built 1 GB. Templates come from config files
and see request data, so each render gets a `RenderBudget`:

- **steps**: every loop iteration (any `{% for %}`, over anything) and every call
  (macros, methods) costs one step, and building a string costs one step per KiB;
  past `max_steps` the render stops. So does a render past `max_seconds` (checked
  every 256 steps), so a render ends even when each step is slow;
- **size**: `*`, `+`, `~`, `%`, `**`, `replace`, `join`, `center`, `indent`,
  `format` and str methods that pad (`ljust`, `zfill`, ...) are checked *before*
  they build their result: no string or list beyond `max_output` characters or
  items, no integer beyond `MAX_INT_BITS`; `range` is capped at `max_output` too;
- **output**: the rendered text stops at `max_output` characters.

Past a bound `RenderLimit` is raised; the template wrapper turns it into a BadRequest
naming the rule. `{% include %}`, `{% import %}` and `{% extends %}` have no loader
to read from, so templates using them are refused at load (`refuse_loaders`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import islice
from typing import Any, ClassVar

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from router.engine.render_budget import (
    _KIB,
    _SIZED,
    MAX_OUTPUT,
    MAX_SECONDS,
    MAX_STEPS,
    RenderBudget,
    RenderLimit,
    _add,
    _check_format,
    _check_int,
    _current,
    _finalize,
    _format_filter,
    _indent_filter,
    _join_filter,
    _length,
    _mod,
    _mul,
    _pow,
    _replace_filter,
    _text_filter,
    _width_filter,
    begin,
    check_str_method,
    text_size,
)

_BATCH = 64  # pieces of output counted at a time


class _BoundedCodeGenerator(CodeGenerator):
    """Routes `{% for %}` iterables and `~` concatenation through the budget."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        # jinja2 allows no custom node types: the iterable is wrapped in a node kind that
        # cannot occur there otherwise, marked, and written as `environment.bounded_iter(...)`.
        if not getattr(node.iter, "_bounded_iter", False):
            wrapper = nodes.MarkSafeIfAutoescape(node.iter, lineno=node.lineno)
            wrapper._bounded_iter = True  # type: ignore[attr-defined]
            node.iter = wrapper
        super().visit_For(node, frame)

    def visit_MarkSafeIfAutoescape(self, node: nodes.MarkSafeIfAutoescape, frame: Frame) -> None:
        if not getattr(node, "_bounded_iter", False):
            super().visit_MarkSafeIfAutoescape(node, frame)
            return
        self.write("environment.bounded_iter(")
        self.visit(node.expr, frame)
        self.write(")")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _bounded_range(*args: int) -> range:
    rng = range(*args)
    _current().size(len(rng), "a range")
    return rng


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable jinja2 sandbox with every render held to a `RenderBudget`."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    _BINOPS: ClassVar[dict[str, Any]] = {"*": _mul, "**": _pow, "+": _add, "%": _mod}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, finalize=_finalize, **kwargs)
        self.globals["range"] = _bounded_range
        for name in ("string", "pprint", "tojson", "list"):
            self.filters[name] = _text_filter(self.filters[name])
        self.filters["replace"] = _replace_filter(self.filters["replace"])
        self.filters["join"] = _join_filter(self.filters["join"])
        self.filters["center"] = _width_filter(self.filters["center"], 1)
        self.filters["indent"] = _indent_filter(self.filters["indent"])
        self.filters["format"] = _format_filter(self.filters["format"])

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        op = self._BINOPS.get(operator_name)
        if op is None:
            return super().call_binop(context, operator_name, left, right)
        return op(left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _current()
        budget.charge()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            check_str_method(budget, owner, getattr(__obj, "__name__", ""), args, kwargs)
        elif getattr(__obj, "__name__", "") == "format" and args:  # the sandbox's str.format
            for value in (*args, *kwargs.values()):
                _check_int(value)
        result = ImmutableSandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs)
        budget.size(_length(result), "a result")
        return result

    def getattr(self, obj: Any, attribute: str) -> Any:
        value = super().getattr(obj, attribute)
        if isinstance(obj, str) and attribute in ("format", "format_map"):
            _check_format(obj)
        return value

    def bounded_iter(self, iterable: Any) -> Iterable[Any]:
        """The loop's iterable, its iterations charged: all at once when its length is
        known (no generator in the way of a short loop), else one by one."""
        budget = _current()
        if type(iterable) in _SIZED:
            budget.charge(len(iterable) or 1)
            return iterable  # type: ignore[no-any-return]
        return self._charged(iterable, budget)

    @staticmethod
    def _charged(iterable: Any, budget: RenderBudget) -> Iterator[Any]:
        for item in iterable:
            budget.charge()
            yield item

    def bounded_concat(self, parts: tuple[Any, ...]) -> str:
        total = 0
        for p in parts:
            if type(p) is not str:
                break
            total += len(p)
        else:  # all text: the common case
            if total > _KIB:
                _current().size(total, "a concatenation")
            return "".join(parts)
        budget = _current()
        budget.size(sum(text_size(p, budget.max_output) for p in parts), "a concatenation")
        return "".join([p if type(p) is str else str(p) for p in parts])


_PLAIN_FILTERS = frozenset(
    {"default", "d", "upper", "lower", "title", "capitalize", "trim", "length", "count",
     "first", "last", "escape", "e", "safe", "int", "float", "abs", "round", "striptags"}
)  # fmt: skip
_AMPLIFIERS = (
    nodes.For, nodes.Macro, nodes.CallBlock, nodes.Call, nodes.Mul, nodes.Pow, nodes.Add,
    nodes.Mod, nodes.Concat, nodes.List, nodes.Tuple, nodes.Dict, nodes.FilterBlock,
)  # fmt: skip


def needs_budget(env: jinja2.Environment, source: str) -> bool:
    """Whether the template can do more work or make more text than its input holds.

    `Task: {{ prompt | trim }}` cannot (no loop, call, operator, literal container or
    growing filter): it renders on the plain sandbox, its cost bounded by its input.
    """
    tree = env.parse(source)
    if any(True for _ in tree.find_all(_AMPLIFIERS)):
        return True
    return any(f.name not in _PLAIN_FILTERS for f in tree.find_all(nodes.Filter))


def refuse_loaders(env: jinja2.Environment, source: str) -> None:
    """jinja2.TemplateSyntaxError at the first include / import / extends: there is no
    loader to read another template from, so they could only fail at every request."""
    tree = env.parse(source)
    for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        tag = {
            nodes.Include: "include",
            nodes.Import: "import",
            nodes.FromImport: "from ... import",
            nodes.Extends: "extends",
        }[type(node)]
        raise jinja2.TemplateSyntaxError(
            f"{{% {tag} %}} is not supported: a template cannot read other templates",
            node.lineno,
        )


def renderer(template: jinja2.Template, budgeted: bool) -> Callable[[Mapping[str, Any]], str]:
    """`template`'s render function, bound once: under a fresh budget when `budgeted`.

    What `Template.render` does, minus per-render work that is the same every time:
    the context starts from a flat copy of the globals (jinja2 copies its ChainMap of
    them key by key, twice, in every render), and lookups are made once here.
    """
    env = template.environment
    make_context = env.context_class
    root, name, blocks = template.root_render_func, template.name, template.blocks
    flat = dict(template.globals)

    if not budgeted:

        def render_plain(variables: Mapping[str, Any]) -> str:
            return "".join(root(make_context(env, {**flat, **variables}, name, blocks, flat)))

        return render_plain

    def render(variables: Mapping[str, Any]) -> str:
        return _render_bounded(root, make_context(env, {**flat, **variables}, name, blocks, flat))

    return render


def _render_bounded(
    root: Callable[[Context], Iterator[str]],
    context: Context,
    max_steps: int = MAX_STEPS,
    max_output: int = MAX_OUTPUT,
    max_seconds: float = MAX_SECONDS,
) -> str:
    begin(max_steps, max_output, max_seconds)
    # Without `generate`'s extra generator layer, and counting the output as it comes,
    # a batch of pieces at a time (each piece is a literal of the template or a value
    # already held to the budget), instead of joining it unseen.
    pieces = root(context)
    out = list(islice(pieces, _BATCH))
    size = sum(map(len, out))
    if len(out) < _BATCH and size <= max_output:  # a short template: all in one batch
        return "".join(out)
    while True:
        if size > max_output:
            raise RenderLimit(f"the rendered text is longer than {max_output:,} characters")
        batch = list(islice(pieces, _BATCH))
        if not batch:
            return "".join(out)
        size += sum(map(len, batch))
        out += batch


def render_bounded(
    template: jinja2.Template,
    variables: Any,
    *,
    max_steps: int = MAX_STEPS,
    max_output: int = MAX_OUTPUT,
    max_seconds: float = MAX_SECONDS,
) -> str:
    """Render under a fresh budget, stopping the output at `max_output` characters."""
    context = template.new_context(dict(variables))
    return _render_bounded(template.root_render_func, context, max_steps, max_output, max_seconds)


__all__ = [
    "MAX_OUTPUT",
    "MAX_SECONDS",
    "MAX_STEPS",
    "BoundedSandbox",
    "RenderBudget",
    "RenderLimit",
    "refuse_loaders",
    "render_bounded",
    "renderer",
]
