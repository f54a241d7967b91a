"""`router validate | explain | run | test | models | usage | watch | replay | diff | serve`.

Bad input gets a one-line error (per config issue) and exit code 2, never a
traceback; a request that fails at run time exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

import router
from router import ConfigError, Router, RouterError, RouterStatus, plain
from router import cli_json as jsondoc
from router.cli_input import InputError, config_and_prompt
from router.errors import ProviderError, unexpected


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"router: error: {message}\n")


class UsageError(Exception):
    """Bad input on the command line."""


def _fail(message: str, code: int = 2) -> int:
    for line in message.splitlines() or [message]:
        print(f"router: error: {line}", file=sys.stderr)
    return code


def _request_args(ns: argparse.Namespace) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for item in ns.meta or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--meta {item!r}: expected KEY=VALUE")
        metadata[key] = value
    args: dict[str, Any] = {
        "use_case": ns.use_case,
        "tags": ns.tag or None,
        "metadata": metadata or None,
    }
    if ns.max_tokens is not None:
        args["max_tokens"] = ns.max_tokens
    if ns.temperature is not None:
        args["temperature"] = ns.temperature
    if ns.model:
        args["model"] = ns.model
    if ns.rule:
        args["rule"] = ns.rule
    if ns.system:
        args["messages"] = [
            {"role": "system", "content": ns.system},
            {"role": "user", "content": ns.prompt},
        ]
    return args


def _open(ns: argparse.Namespace) -> Router:
    """The config and prompt of `run` / `explain` (see cli_input), and the router."""
    ns.config, ns.prompt = config_and_prompt(ns.args)
    r = Router.from_config(ns.config)
    known = known_use_cases(r)
    if ns.use_case and ns.use_case not in known:
        print(
            f"router: warning: use case {ns.use_case!r} is named by no rule or detector"
            f" (known: {', '.join(sorted(known)) or 'none'}); it matches only rules "
            "without a use_case condition",
            file=sys.stderr,
        )
    return r


def known_use_cases(r: Router) -> set[str]:
    return set(r.snapshot.ruleset.index) | set(r.config.use_cases)


def _prompt_or_messages(ns: argparse.Namespace) -> str | None:
    return None if ns.system else ns.prompt


def _money(cost: float | None) -> str:
    return "price unknown" if cost is None else f"${cost:.6f}"


def health_lines(status: RouterStatus) -> list[str]:
    """Open circuits, held models and providers disabled at run time, in words."""
    lines = []
    for name, m in status.state.models.items():
        breaker = m.breaker
        if breaker["state"] != "closed":
            lines.append(f"model {name}: circuit {breaker['state']}: {breaker['reason']}")
        if m.held:
            lines.append(f"model {name}: {m.held}")
    for name, p in status.state.providers.items():
        configured = status.providers.get(name)
        if not p.enabled and configured is not None and configured.enabled:
            lines.append(f"provider {name} disabled: {p.disabled_reason}")
    return lines


def cmd_validate(ns: argparse.Namespace) -> int:
    from router.cli_validate import validate_paths

    return validate_paths(ns.config, strict=ns.strict, as_json=ns.json, fail=_fail)


def cmd_explain(ns: argparse.Namespace) -> int:
    r = _open(ns)
    d = r.explain(_prompt_or_messages(ns), **_request_args(ns))
    print(jsondoc.dumps(jsondoc.decision_doc(d)) if ns.json else d.describe(table=True))
    return 0 if d.served else 1


def loading_status(r: Router) -> None:
    """On a terminal, say what the wait is for while the adapters' libraries load."""
    if not sys.stderr.isatty() or r.warmed.is_set():
        return
    kinds = sorted({p.type for p in r.config.providers.values() if p.enabled} - {"mock"})
    if not kinds:
        return
    sys.stderr.write(f"loading {', '.join(kinds)} ...")
    sys.stderr.flush()
    r.warmed.wait()
    raw = getattr(sys.stderr, "_stream", sys.stderr)  # past the control-character escaping
    raw.write("\r\033[K")  # the line is gone once loading is done
    raw.flush()


def cmd_run(ns: argparse.Namespace) -> int:
    r = _open(ns)
    args = _request_args(ns)
    prompt = _prompt_or_messages(ns)
    loading_status(r)
    if ns.stream and not ns.json:
        result = None
        for chunk in r.route(prompt, stream=True, **args):
            print(chunk.text, end="", flush=True)
            if chunk.result is not None:
                result = chunk.result
        print()
    else:
        result = r.route(prompt, **args)
        print(jsondoc.dumps(jsondoc.result_doc(result)) if ns.json else result.text)
    assert result is not None
    print("", file=sys.stderr)
    print(
        f"-- model {result.model} via {result.provider} (rule {result.rule}); "
        f"{result.usage.input_tokens}+{result.usage.output_tokens} tokens, "
        f"{_money(result.cost_usd)}, {result.latency_s * 1000:.0f} ms"
        f"{' (estimated)' if result.usage.estimated else ''}",
        file=sys.stderr,
    )
    for a in result.attempts:
        print(f"-- failed first: {a.model} ({a.error}): {a.message}", file=sys.stderr)
    for line in health_lines(r.status()):
        print(f"-- {line}", file=sys.stderr)
    if ns.explain:
        print(result.decision.describe(table=True), file=sys.stderr)
    r.close()
    return 0


def cmd_test(ns: argparse.Namespace) -> int:
    r = Router.from_config(ns.config, check_tests=False)
    outcomes = r.run_tests()
    failed = skipped = 0
    entries = []
    for o in outcomes:
        where = f"{o.test.where.file}:{o.test.where.line}" if o.test.where.line else ""
        status = "skip" if o.skipped else ("ok" if o.ok else "fail")
        failed += not o.ok
        skipped += o.skipped
        w = o.test.where
        entries.append(jsondoc.test_entry(w.file, w.line, o.test.prompt, status, o.message))
        if not ns.json:
            print(
                f"{status.upper() if status != 'ok' else 'ok  '} {where} {o.test.prompt!r}: "
                f"{o.message}"
            )
    passed = len(outcomes) - failed - skipped
    if ns.json:
        doc = {"ok": not failed, "passed": passed, "failed": failed, "skipped": skipped}
        print(jsondoc.dumps({**doc, "tests": entries}))
    else:
        print(f"routing tests: {passed} ok, {failed} failing, {skipped} skipped")
    return 1 if failed else 0


def cmd_models(ns: argparse.Namespace) -> int:
    with Router.from_config(ns.config) as r:
        rows = r.models(discover=ns.discover)
    if ns.json:
        print(json.dumps([row.to_dict() for row in rows], indent=2))
        return 0
    print(f"{'name':<22} {'provider':<12} {'context':>8}  {'$/1M in/out':<14} {'id':<40} note")
    for row in rows:
        ctx = str(row.context) if row.context else "-"
        cost = f"{row.cost[0]:g}/{row.cost[1]:g}" if row.cost else "unknown"
        note = row.note if row.enabled else f"disabled: {row.note}"
        print(f"{row.name:<22} {row.provider:<12} {ctx:>8}  {cost:<14} {row.id:<40} {note}")
    return 0


def cmd_usage(ns: argparse.Namespace) -> int:
    by = tuple(g.strip() for g in ns.by.split(",") if g.strip())
    since = None
    if ns.since:
        try:
            since = datetime.strptime(ns.since, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        except ValueError:
            raise UsageError(f"--since {ns.since!r}: expected YYYY-MM-DD") from None
    r = Router.from_config(ns.config, check_tests=False)
    try:
        try:
            rows = r.usage(by, since.timestamp() if since else None)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        state = r.status().state
    finally:
        r.close()
    if ns.json:
        report = {"rows": [row.to_dict() for row in rows], "budgets": plain(state.budgets)}
        print(json.dumps(report, indent=2))
        return 0
    where = state.usage_db
    if where == ":memory:":
        print("usage_db is :memory: in this config: spend is not kept between runs")
    else:
        print(f"usage store: {where} (days in UTC)")
    widths = [max([len(g), *(len(str(row.group[g])) for row in rows)]) for g in by]
    head = "  ".join(f"{g:<{w}}" for g, w in zip(by, widths, strict=True))
    print(
        f"{head}  {'requests':>8}  {'cache hits':>10}  {'in tokens':>10}  {'out tokens':>10}"
        f"  {'cost USD':>12}"
    )
    for row in rows:
        keys = "  ".join(f"{row.group[g]!s:<{w}}" for g, w in zip(by, widths, strict=True))
        print(
            f"{keys}  {row.requests:>8}  {row.cache_hits:>10}  {row.input_tokens:>10}  "
            f"{row.output_tokens:>10}  {row.cost_usd:>12.6f}"
        )
    total = sum(row.cost_usd for row in rows)
    count = sum(row.requests for row in rows)
    hits = sum(row.cache_hits for row in rows)
    print(f"{'total':<{len(head)}}  {count:>8}  {hits:>10}  {'':>10}  {'':>10}  {total:>12.6f}")
    unpriced = sum(row.unpriced_requests for row in rows)
    if unpriced:
        print(f"{unpriced} request(s) of models whose price is unknown are not in the cost")
    for b in state.budgets:
        who = "global" if b.scope == "global" else f"{b.scope} {b.name}"
        print(
            f"budget {who} {b.period}: ${b.spent_usd:.4f} of ${b.limit_usd:.2f}"
            f" spent, resets {b.resets_at}{' (SPENT)' if b.exhausted else ''}"
        )
    return 0


class WatchPrinter:
    """What `router watch` prints per reload: each failure once however often the file
    is saved, and a line when the config is good again."""

    def __init__(self) -> None:
        self.last_error: str | None = None

    def __call__(self, event: Any) -> None:
        if not event.ok:
            if str(event.error) != self.last_error:
                self.last_error = str(event.error)
                print(f"reload failed, still serving version {event.version}:", flush=True)
                for line in str(event.error).splitlines():
                    print(f"  {line}", flush=True)
            return
        if self.last_error is not None:
            self.last_error = None
            print(f"config is good again: version {event.version} serves", flush=True)
            if not (event.changes and event.changes.describe()):
                return
        print(f"reload ok: version {event.version}", flush=True)
        for line in event.changes.describe() if event.changes else []:
            print(f"  {line}", flush=True)


def cmd_watch(ns: argparse.Namespace) -> int:
    r = Router.from_config(ns.config, watch=True, debounce_ms=ns.debounce_ms)
    print(f"watching {ns.config} (version {r.snapshot.version}); Ctrl-C to stop", flush=True)

    show = WatchPrinter()
    r.on_reload(show)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait(ns.seconds if ns.seconds else None)
    r.close()
    return 0


def cmd_serve(ns: argparse.Namespace) -> int:
    try:
        from router.server.serve import ServeError, ServeOptions, serve
    except RouterError as exc:  # MissingDependency: the `server` extra is not installed
        return _fail(str(exc), 2)
    opts = ServeOptions(
        config=Path(ns.config) if ns.config else router.default_config_path(),
        host=ns.host,
        port=ns.port,
        workers=ns.workers,
        watch=not ns.no_watch,
        allow_unauthenticated=ns.allow_unauthenticated,
        graceful_timeout=ns.graceful_timeout,
        log_level=ns.log_level,
        access_log=ns.access_log,
    )
    try:
        return serve(opts)
    except ServeError as exc:
        return _fail(str(exc), 2)


def cmd_replay(ns: argparse.Namespace) -> int:
    from router import replay_log as replay

    logs = ns.log
    report = replay(
        ns.config, logs if len(logs) > 1 else logs[0], against=ns.against, examples=ns.examples
    )
    problems = report.violations(ns.max_moved, ns.max_cost_increase)
    if ns.json:
        print(json.dumps({**report.to_dict(), "violations": problems}, indent=2))
    else:
        print(report.describe())
        for p in problems:
            print(f"FAIL: {p}")
    if report.requests == 0:
        return _fail(f"no logged request could be read from {', '.join(logs)}", 2)
    checked = ns.max_moved is not None or ns.max_cost_increase is not None
    return 1 if problems and (checked or report.tests_failed) else 0


def cmd_diff(ns: argparse.Namespace) -> int:
    from router import diff_configs, load_config

    changes = diff_configs(load_config(ns.old), load_config(ns.new))
    if ns.json:
        print(json.dumps({"changed": not changes.is_empty, "changes": changes.describe()}))
    else:
        print(str(changes))
    return 1 if ns.exit_code and not changes.is_empty else 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="router", description="Route LLM requests by YAML rules.")
    p.add_argument("--version", action="version", version=f"router {router.__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    def with_request(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "args",
            nargs="*",
            metavar="[CONFIG] PROMPT",
            help="a YAML file or directory (default: $ROUTER_CONFIG, ./router.yaml, the "
            "shipped default), then the prompt ('-' or none: read from stdin)",
        )
        sp.add_argument("--json", action="store_true", help="one JSON document on stdout")
        sp.add_argument("--model", "-m", help="pin a model: a configured name or PROVIDER/ID")
        sp.add_argument("--rule", "-r", help="force this rule, whatever its `when:` says")
        sp.add_argument("--system", "-s", help="a system message before the prompt")
        sp.add_argument("--use-case", "-u")
        sp.add_argument("--tag", action="append", help="a request tag (repeatable)")
        sp.add_argument("--meta", action="append", help="metadata KEY=VALUE (repeatable)")
        sp.add_argument("--max-tokens", type=int)
        sp.add_argument("--temperature", type=float)

    sp = sub.add_parser("validate", help="check a config: schema, semantics, routing tests")
    sp.add_argument(
        "config",
        nargs="+",
        help="configs; a folder with no YAML of its own: each YAML file below it on its own",
    )
    sp.add_argument("--strict", action="store_true", help="fail when a provider is disabled")
    sp.add_argument("--json", action="store_true", help="one JSON document on stdout")
    sp.set_defaults(func=cmd_validate)

    sp = sub.add_parser("explain", help="show the routing decision; no model is called")
    with_request(sp)
    sp.set_defaults(func=cmd_explain)

    sp = sub.add_parser("run", help="route a prompt and print the answer")
    with_request(sp)
    sp.add_argument("--stream", action="store_true")
    sp.add_argument("--explain", action="store_true", help="also print the decision table")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("test", help="run the config's routing tests")
    sp.add_argument("config")
    sp.add_argument("--json", action="store_true", help="one JSON document on stdout")
    sp.set_defaults(func=cmd_test)

    sp = sub.add_parser("models", help="list models of every provider, discovered ones too")
    sp.add_argument("config")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--discover", action="store_true", help="also ask each provider what it offers")
    sp.set_defaults(func=cmd_models)

    sp = sub.add_parser("usage", help="spend per day, model and rule from the usage store")
    sp.add_argument("config")
    sp.add_argument(
        "--by", default="day,model,rule", help="columns: day,month,model,rule,provider,key"
    )
    sp.add_argument("--since", help="from this UTC day on (YYYY-MM-DD)")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_usage)

    sp = sub.add_parser("watch", help="follow edits to a config and print each reload")
    sp.add_argument("config")
    sp.add_argument("--debounce-ms", type=int)
    sp.add_argument("--seconds", type=float, help="stop after this long (default: never)")
    sp.set_defaults(func=cmd_watch)

    sp = sub.add_parser(
        "replay", help="route logged requests through a config (no model called) and compare"
    )
    sp.add_argument("config", help="the new config")
    sp.add_argument(
        "--log", action="append", required=True, help="a request log (repeatable: rotated files)"
    )
    sp.add_argument("--against", help="the old config (default: the decisions as logged)")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--examples", type=int, default=3, help="examples per change (default 3)")
    sp.add_argument("--max-moved", type=float, metavar="PCT", help="fail above this %% moved")
    sp.add_argument(
        "--max-cost-increase", type=float, metavar="PCT", help="fail above this %% cost rise"
    )
    sp.set_defaults(func=cmd_replay)

    sp = sub.add_parser("diff", help="what changed between two configs, in words")
    sp.add_argument("old")
    sp.add_argument("new")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--exit-code", action="store_true", help="exit 1 when they differ")
    sp.set_defaults(func=cmd_diff)

    sp = sub.add_parser("serve", help="serve the config as an OpenAI-compatible HTTP API")
    sp.add_argument("config", nargs="?", help="default: $ROUTER_CONFIG, ./router.yaml, rules/")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    sp.add_argument("--workers", type=int, default=1, help="worker processes")
    sp.add_argument("--no-watch", action="store_true", help="do not reload on config edits")
    sp.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="listen beyond loopback with no server.keys",
    )
    sp.add_argument("--graceful-timeout", type=float, default=30.0, help="seconds to drain")
    sp.add_argument("--log-level", default="info")
    sp.add_argument("--access-log", action="store_true")
    sp.set_defaults(func=cmd_serve)

    from router.commands import register

    register(sub)
    return p


# C0 and C1 control characters (and DEL) but newline and tab: a name in a config, an
# error quoting one, or a model's reply could otherwise move the cursor, recolour the
# terminal or retitle the window. JSON output escapes them itself.
_CONTROLS = {
    c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if c not in (0x09, 0x0A)
}


def escape_controls(text: str) -> str:
    """`text` with control characters written as `\\xNN` escapes."""
    return text.translate(_CONTROLS)


class _EscapingStream:
    """A text stream that escapes control characters in everything written to it."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return int(self._stream.write(escape_controls(text)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def _escaped_output() -> Iterator[None]:
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _EscapingStream(out), _EscapingStream(err)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.command is None:
        parser.print_help()
        return 0
    with _escaped_output():
        return _main(ns)


def _main(ns: argparse.Namespace) -> int:
    try:
        code: int = ns.func(ns)
        return code
    except (ConfigError, UsageError, InputError) as exc:
        return _fail(str(exc), 2)
    except ProviderError as exc:  # a stream cut after its first token, and the like
        print(file=sys.stdout, flush=True)
        return _fail(exc.describe(), 1)
    except RouterError as exc:
        return _fail(str(exc), 2 if ns.command in ("validate", "test") else 1)
    except FileNotFoundError as exc:
        return _fail(f"{exc.filename}: no such file", 2)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # never a traceback: a bug still gets one line of words
        return _fail(str(unexpected(exc, ns.command)), 1)
