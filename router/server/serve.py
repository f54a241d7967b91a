"""`router serve`: run the gateway under uvicorn (uvloop, httptools).

With no `server.keys` in the config anyone who can reach the port can spend the
config's money, so the server then binds only a loopback address unless told
`--allow-unauthenticated`. SIGTERM (and Ctrl-C) stop accepting connections,
let requests in flight finish (up to `--graceful-timeout` seconds), then exit.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from router.errors import MissingDependency


class ServeError(Exception):
    """A serve option that cannot work; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class ServeOptions:
    config: Path
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    watch: bool = True
    allow_unauthenticated: bool = False
    graceful_timeout: float = 30.0
    log_level: str = "info"
    access_log: bool = False


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, has_keys: bool, allow_unauthenticated: bool) -> None:
    if has_keys or allow_unauthenticated or is_loopback(host):
        return
    raise ServeError(
        f"refusing to listen on {host} with no API keys: add `server: {{keys: [...]}}` "
        "to the config, bind 127.0.0.1, or pass --allow-unauthenticated"
    )


def _uvicorn_args() -> dict[str, str]:
    args = {"http": "h11", "loop": "asyncio"}
    try:
        import httptools  # noqa: F401

        args["http"] = "httptools"
    except ImportError:
        pass
    try:
        import uvloop  # noqa: F401

        args["loop"] = "uvloop"
    except ImportError:
        pass
    return args


def serve(opts: ServeOptions) -> int:
    """Run until SIGTERM / SIGINT. Raises ServeError for options that cannot work."""
    try:
        import uvicorn
    except ImportError:
        raise MissingDependency("uvicorn", "server") from None
    from router import Router
    from router.server.app import create_app

    if opts.workers < 1:
        raise ServeError("--workers must be at least 1")
    common = dict(
        **_uvicorn_args(),
        log_level=opts.log_level,
        access_log=opts.access_log,
        timeout_graceful_shutdown=int(opts.graceful_timeout),
        server_header=False,
    )
    if opts.workers > 1:
        # Each worker process builds its own Router from the config (and watches it).
        probe = Router.from_config(opts.config)
        try:
            check_bind(opts.host, bool(probe.config.server.keys), opts.allow_unauthenticated)
        finally:
            probe.close()
        os.environ["ROUTER_CONFIG"] = str(opts.config)
        os.environ["ROUTER_NO_WATCH"] = "0" if opts.watch else "1"
        port = opts.port
        if port == 0:  # uvicorn binds in the parent; find a free port for it to take
            probe_sock = _bind(opts.host, 0)
            port = probe_sock.getsockname()[1]
            probe_sock.close()
        made = metrics_dir()
        print(
            "router serve: /metrics adds up the workers' samples in "
            f"{os.environ['PROMETHEUS_MULTIPROC_DIR']}",
            file=sys.stderr,
            flush=True,
        )
        print(
            f"router serve: {opts.config} ({opts.workers} workers, "
            f"watch {'on' if opts.watch else 'off'}) on http://{opts.host}:{port}",
            file=sys.stderr,
            flush=True,
        )
        try:
            uvicorn.run(
                "router.server:app_from_env",
                factory=True,
                host=opts.host,
                port=port,
                workers=opts.workers,
                **common,  # type: ignore[arg-type]
            )
        finally:
            if made is not None:
                shutil.rmtree(made, ignore_errors=True)
        return 0

    router = Router.from_config(opts.config, watch=opts.watch)
    try:
        check_bind(opts.host, bool(router.config.server.keys), opts.allow_unauthenticated)
        sock = _bind(opts.host, opts.port)
    except BaseException:
        router.close()
        raise
    app = create_app(router)
    host, port = sock.getsockname()[:2]
    cfg = router.config
    print(
        f"router serve: {opts.config} (version {router.snapshot.version}, "
        f"{len(cfg.models)} models, {len(cfg.rules)} rules, {len(cfg.server.keys)} keys, "
        f"watch {'on' if opts.watch else 'off'}) on http://{host}:{port}",
        file=sys.stderr,
        flush=True,
    )
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", **common))  # type: ignore[arg-type]
    # uvicorn drains on SIGTERM, then raises the signal again under the handler it found:
    # a drained shutdown is a clean exit (0), not death by signal.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
        router.close()
        sock.close()
    return 0


def metrics_dir() -> str | None:
    """Workers count requests apart: give prometheus-client's multiprocess mode an empty
    directory (before any worker imports it) unless the user set PROMETHEUS_MULTIPROC_DIR.
    Returns the directory made here, for the caller to remove at exit."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    made = tempfile.mkdtemp(prefix="router-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    return made


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
