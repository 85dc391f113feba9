"""The dashboard served on a free local port for browser tests (one server per test module)."""

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
    """The dashboard over ``workdir`` (its results and dashboard/views folders), at the URL yielded."""
    pytest.importorskip("gradio")
    from tdw.pages.dashboard.app import build_app

    app = build_app(workdir)
    port = free_port()
    views = str(workdir / "dashboard" / "views")
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, allowed_paths=[views])
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()
