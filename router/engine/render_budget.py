"""What one template render may spend, and the checks that keep it to that.

`RenderBudget` counts steps (loop iterations, calls, KiB of strings built) and time;
the `_mul`, `_pow`, `_add`, `_mod` operators and the filter wrappers measure what they
would build *before* building it (`text_size` measures containers as text without
making the text). `router.engine.sandbox` wires them into jinja2.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

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


class _Current(threading.local):
    """The budget of the render running on this thread. A render never yields to other
    code on its thread (it is synchronous, even under asyncio), so one per thread holds;
    a thread-local is cheaper per render than a context variable set and reset."""

    budget: RenderBudget | None = None


_local = _Current()


def begin(max_steps: int, max_output: int, max_seconds: float) -> RenderBudget:
    """A fresh budget for the render about to start on this thread."""
    budget = _local.budget
    if budget is None:
        budget = _local.budget = RenderBudget(max_steps, max_output, max_seconds)
    else:  # reused: one object per thread, not one per render
        budget.max_steps, budget.max_output, budget.steps = max_steps, max_output, 0
        budget.deadline = time.monotonic() + max_seconds
    return budget


def _current() -> RenderBudget:
    budget = _local.budget
    if budget is None:  # rendered outside a bounded render: still bounded, by defaults
        budget = _local.budget = RenderBudget(MAX_STEPS, MAX_OUTPUT, MAX_SECONDS)
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


# Format strings seen with no `*` and no large width: nothing to check in them again
# (templates format with the same few literals on every render). Bounded in count.
_PLAIN_FORMATS: set[str] = set()
_PLAIN_FORMATS_MAX = 4096


def _mod(left: Any, right: Any) -> Any:
    if type(left) is str:
        if left not in _PLAIN_FORMATS:
            if "*" in left or _BIG_NUMBER.search(left):
                _check_format(left)
            elif len(left) <= 256 and len(_PLAIN_FORMATS) < _PLAIN_FORMATS_MAX:
                _PLAIN_FORMATS.add(left)
        budget = _current()
        total = len(left) + _args_size(right, budget.max_output)
        if total > _KIB:
            budget.size(total, "a formatted string")
    return left % right


def _args_size(value: Any, limit: int) -> int:
    """`text_size` of a `%` operand, with a quick path for a short tuple of scalars."""
    if type(value) is tuple and len(value) <= 8:
        total = 2
        for item in value:
            kind = type(item)
            if kind is str:
                total += len(item) + 4
            elif kind is int or kind is float or kind is bool or item is None:
                total += 24
            else:
                return text_size(value, limit)
        return total
    return text_size(value, limit)


PADDING = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})


def check_str_method(
    budget: RenderBudget, owner: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    if name in PADDING:
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
    cls = value.__class__
    if cls is not str and cls in _SIZED:
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
