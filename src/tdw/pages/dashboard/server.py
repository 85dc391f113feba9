"""Serving the dashboard safely: no share link, no telemetry, no SSR or MCP side servers; a
bind outside loopback only with a login (``auth``); every request whose Host header is not
this server's refused (a web page cannot reach the dashboard through a name that resolves to
it); shutting down stops the runs it launched."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from tdw.errors import ConfigError
from tdw.pages.dashboard.runs import RUNS

WILDCARDS = ("0.0.0.0", "::")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class UnsafeBindError(ConfigError):
    """A bind the dashboard refuses before opening any socket."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is only reachable from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def read_auth_file(path: str | os.PathLike) -> list[tuple[str, str]]:
    """The logins of an auth file: one ``user:password`` per line (blank lines and ``#``
    comments skipped). Errors name the file and line, never a password."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise UnsafeBindError(f"auth file {path}: cannot read it ({err.strerror})") from None
    logins = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise UnsafeBindError(f"auth file {path}: line {n}: expected user:password (both non-empty)")
        logins.append((user, password))
    if not logins:
        raise UnsafeBindError(f"auth file {path}: no user:password line")
    return logins


def _host_form(name: str) -> str:
    return f"[{name}]" if ":" in name else name  # an IPv6 address is bracketed in a Host header


def allowed_hosts(host: str, port: int, extra: Iterable[str] = ()) -> frozenset[str]:
    """The Host headers served: ``host:port``, and for a loopback or wildcard bind the loopback
    names; for a wildcard bind also this machine's names; plus ``extra`` names (how clients
    elsewhere reach it: a DNS name, a tunnel's address)."""
    names = {host, *extra}
    if is_loopback(host) or host in WILDCARDS:
        names |= set(LOOPBACK_NAMES)
    if host in WILDCARDS:
        names |= {socket.gethostname(), socket.getfqdn()}
    return frozenset(f"{_host_form(n)}:{port}".lower() for n in names if n not in WILDCARDS)


class HostCheck:
    """ASGI middleware: a request whose Host header is not one of ``allowed`` gets 400 (a
    websocket is closed with 1008) before any route sees it."""

    def __init__(self, app, allowed: frozenset[str]):
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
            if host not in self.allowed:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                body = f"400: Host {host!r} is not served here; use one of {sorted(self.allowed)}\n".encode()
                headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 400, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def check_bind(host: str, auth: list[tuple[str, str]] | None) -> None:
    """Refuse a bind outside loopback without logins: anyone who reaches the address could
    launch runs and read results."""
    if not is_loopback(host) and not auth:
        raise UnsafeBindError(
            f"--host {host}: the dashboard binds outside loopback only with a login; "
            "pass --auth-file FILE (lines user:password), or bind 127.0.0.1"
        )


def serve(
    app: gr.Blocks,
    workdir: Path,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: list[tuple[str, str]] | None = None,
    extra_hosts: Iterable[str] = (),
    block: bool = True,
) -> str:
    """Launch ``app`` (``build_app(workdir)``) on ``host:port``, checked by ``check_bind``
    before any socket opens; the local URL. ``block``: wait until interrupted (SIGINT or
    SIGTERM), then stop the runs and the server."""
    check_bind(host, auth)
    hosts = allowed_hosts(host, port, extra_hosts)
    views = str(Path(workdir).resolve() / "dashboard" / "views")
    _, url, _ = app.launch(
        server_name=host,
        server_port=port,
        share=False,
        auth=auth,
        allowed_paths=[views],
        app_kwargs={"middleware": [Middleware(HostCheck, allowed=hosts)]},
        prevent_thread_lock=True,
        ssr_mode=False,
        mcp_server=False,
        enable_monitoring=False,
        quiet=not block,
    )
    if block:
        try:
            app.block_thread()
        finally:
            close(app)
    return url


def close(app: gr.Blocks) -> None:
    """Stop every run the dashboard launched (each process group), then the server."""
    RUNS.stop_all()
    app.close()
