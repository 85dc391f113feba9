"""The dashboard served on a free loopback port for browser and server tests (one server per
test module), launched as ``python -m tdw dashboard`` launches it (``server.serve``)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_dashboard(workdir: Path) -> Iterator[str]:
    """The dashboard over ``workdir`` (its results and dashboard/views folders), at the URL
    yielded; on exit it shuts down as on Ctrl-C (its runs stopped, then the server)."""
    pytest.importorskip("gradio")
    from tdw.pages.dashboard.app import build_app
    from tdw.pages.dashboard.server import close, serve

    app = build_app(workdir)
    port = free_port()
    serve(app, workdir, "127.0.0.1", port, block=False)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        close(app)
