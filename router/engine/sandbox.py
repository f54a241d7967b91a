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

import contextvars
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_STEPS = 200_000
MAX_OUTPUT = 1_000_000  # characters of one string, items of one list, the rendered text
MAX_SECONDS = 1.0
MAX_INT_BITS = 4096
_KIB = 1024
_CHECK_EVERY = 256


class RenderLimit(Exception):
    """A render went past one of its bounds; `str` says which."""


class RenderBudget:
    """What one render may still spend; lives in a context variable while it renders."""

    __slots__ = ("deadline", "max_output", "max_steps", "steps")

    def __init__(self, max_steps: int, max_output: int, max_seconds: float) -> None:
        self.max_steps = max_steps
        self.max_output = max_output
        self.steps = 0
        self.deadline = time.monotonic() + max_seconds

    def charge(self, n: int = 1) -> None:
        before = self.steps
        self.steps = before + n
        if self.steps > self.max_steps:
            raise RenderLimit(f"more than {self.max_steps:,} steps (loop iterations, calls)")
        crossed = (before // _CHECK_EVERY) != (self.steps // _CHECK_EVERY)
        if crossed and time.monotonic() > self.deadline:
            raise RenderLimit("rendering took too long")

    def size(self, n: int, what: str = "a string") -> None:
        """Refuse to build `what` of `n` characters or items; charge for building it."""
        if n > self.max_output:
            raise RenderLimit(f"{what} of {n:,} would be over the limit of {self.max_output:,}")
        if n >= _KIB:
            self.charge(n // _KIB)


_budget: contextvars.ContextVar[RenderBudget | None] = contextvars.ContextVar(
    "router_render_budget", default=None
)


def _current() -> RenderBudget:
    budget = _budget.get()
    if budget is None:  # rendered outside `render_bounded`: still bounded, by defaults
        budget = RenderBudget(MAX_STEPS, MAX_OUTPUT, MAX_SECONDS)
        _budget.set(budget)
    return budget


def _length(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, tuple)) else 0


def _check_int(value: Any) -> None:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise RenderLimit(f"an integer of more than {MAX_INT_BITS} bits")


_CONTAINERS = (list, tuple, dict, set, frozenset)
_SIZED = frozenset({list, tuple, str, range, dict, set, frozenset})


def text_size(value: Any, limit: int) -> int:
    """About how many characters `str(value)` makes, counted without making it; the
    walk stops once past `limit` (a list of a thousand references to one long string
    is small in memory and a gigabyte as text)."""
    if type(value) is str:
        return len(value)
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 4
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, _CONTAINERS):
            total += 2 + 2 * len(item)
            stack.extend(item)
        else:
            total += 24
    return total


def _check_text(value: Any, what: str) -> None:
    if type(value) is not str and isinstance(value, _CONTAINERS):
        budget = _current()
        budget.size(text_size(value, budget.max_output), what)


def _mul(left: Any, right: Any) -> Any:
    budget = _current()
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
            unit = len(seq) if type(seq) is str else text_size(seq, budget.max_output)
            budget.size(unit * max(count, 0), "a repeated string or list")
            return seq * count
    ints = isinstance(left, int) and isinstance(right, int)
    if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise RenderLimit(f"an integer of more than {MAX_INT_BITS} bits")
    return left * right


def _pow(left: Any, right: Any) -> Any:
    ints = isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0
    if ints and max(left.bit_length() - 1, 1) * right > MAX_INT_BITS:
        raise RenderLimit(f"an integer of more than {MAX_INT_BITS} bits")
    return left**right


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
        _current().size(len(left) + len(right), "a concatenation")
    result = left + right
    _check_int(result)
    return result


_BIG_NUMBER = re.compile(r"\d{6,}")  # widths below a million need no look


def _check_format(fmt: Any) -> None:
    """Refuse printf / str.format specs whose width or precision is over the limit."""
    if isinstance(fmt, str):
        if "*" in fmt and "%" in fmt:
            raise RenderLimit("a `*` width in a format string")
        budget = _current()
        for number in _BIG_NUMBER.findall(fmt):
            budget.size(int(number), "a formatted field")


def _mod(left: Any, right: Any) -> Any:
    if type(left) is str:
        if "*" in left or _BIG_NUMBER.search(left):
            _check_format(left)
        budget = _current()
        total = len(left) + text_size(right, budget.max_output)
        if total > _KIB:
            budget.size(total, "a formatted string")
    return left % right


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
    _PADDING = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})

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
            _check_str_method(budget, owner, getattr(__obj, "__name__", ""), args, kwargs)
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

    def bounded_concat(self, parts: Iterable[Any]) -> str:
        parts = tuple(parts)
        if all(type(p) is str for p in parts):
            total = sum(map(len, parts))
            if total > _KIB:
                _current().size(total, "a concatenation")
            return "".join(parts)
        budget = _current()
        budget.size(sum(text_size(p, budget.max_output) for p in parts), "a concatenation")
        return "".join([p if type(p) is str else str(p) for p in parts])


def _check_str_method(
    budget: RenderBudget, owner: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    if name in BoundedSandbox._PADDING:
        for value in (*args, *kwargs.values()):
            if isinstance(value, int):
                budget.size(value * (8 if name == "expandtabs" else 1), "a padded string")
    elif name == "replace" and len(args) >= 2:
        budget.size(_replaced_length(owner, args[0], args[1]), "a replaced string")
    elif name == "join" and args:
        items = list(args[0]) if not isinstance(args[0], (list, tuple)) else args[0]
        total = sum(len(str(x)) for x in items) + len(owner) * max(len(items) - 1, 0)
        budget.size(total, "a joined string")
    elif name in ("format", "format_map"):
        _check_format(owner)


def _replaced_length(text: Any, old: Any, new: Any) -> int:
    text, old, new = str(text), str(old), str(new)
    count = text.count(old) if old else len(text) + 1
    return len(text) + count * (len(new) - len(old))


def _finalize(value: Any) -> Any:
    """Every `{{ value }}` passes here before it becomes text: a container is measured."""
    if value.__class__ in _SIZED and value.__class__ is not str:
        _check_text(value, "an output")
    return value


def _text_filter(original: Any) -> Any:
    def bounded(*args: Any, **kwargs: Any) -> Any:
        for value in args:
            _check_text(value, "a string")
        return original(*args, **kwargs)

    for attr in ("jinja_pass_arg",):
        if hasattr(original, attr):
            setattr(bounded, attr, getattr(original, attr))
    return bounded


def _replace_filter(original: Any) -> Any:
    def replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: int | None = None) -> Any:
        if type(s) is str and type(old) is str and type(new) is str:
            if len(new) > len(old) or not old:  # only then can it grow
                _current().size(_replaced_length(s, old, new), "a replaced string")
        else:
            _current().size(_replaced_length(s, old, new), "a replaced string")
        return original(eval_ctx, s, old, new, count)

    replace.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
    return replace


def _join_filter(original: Any) -> Any:
    def join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        if attribute is None:  # measured before anything is joined
            items = [str(x) for x in value]
            total = sum(len(x) for x in items) + len(str(d)) * max(len(items) - 1, 0)
            _current().size(total, "a joined string")
            return original(eval_ctx, items, d)
        result = original(eval_ctx, value, d, attribute)
        _current().size(len(result), "a joined string")
        return result

    join.jinja_pass_arg = original.jinja_pass_arg  # type: ignore[attr-defined]
    return join


def _width_filter(original: Any, position: int) -> Any:
    def bounded(*args: Any, **kwargs: Any) -> Any:
        widths = [a for a in args[position:] if isinstance(a, int)] + [
            v for v in kwargs.values() if isinstance(v, int)
        ]
        for width in widths:
            _current().size(width, "a padded string")
        return original(*args, **kwargs)

    return bounded


def _indent_filter(original: Any) -> Any:
    def indent(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> Any:
        text = str(s)
        pad = width if isinstance(width, int) else len(str(width))
        _current().size(len(text) + pad * (text.count("\n") + 1), "an indented string")
        return original(s, width, first, blank)

    return indent


def _format_filter(original: Any) -> Any:
    def format(value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_format(value)
        result = original(value, *args, **kwargs)
        _current().size(len(result))
        return result

    return format


# Filters that cannot make their output much larger than their input, nor loop.
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


def render_bounded(
    template: jinja2.Template,
    variables: Any,
    *,
    max_steps: int = MAX_STEPS,
    max_output: int = MAX_OUTPUT,
    max_seconds: float = MAX_SECONDS,
) -> str:
    """Render under a fresh budget, stopping the output at `max_output` characters."""
    token = _budget.set(RenderBudget(max_steps, max_output, max_seconds))
    try:
        # What `Template.render` does, without `generate`'s extra generator layer, and
        # counting the output as it comes instead of joining it unseen.
        pieces = template.root_render_func(template.new_context(dict(variables)))
        out: list[str] = []
        append = out.append
        size = 0
        for piece in pieces:
            size += len(piece)
            if size > max_output:
                raise RenderLimit(f"the rendered text is longer than {max_output:,} characters")
            append(piece)
        return "".join(out)
    finally:
        _budget.reset(token)


__all__ = [
    "MAX_OUTPUT",
    "MAX_SECONDS",
    "MAX_STEPS",
    "BoundedSandbox",
    "RenderBudget",
    "RenderLimit",
    "refuse_loaders",
    "render_bounded",
]
