"""Dashboard timing for bench_views.py: from clicking 'show' for a variant to every view
drawn in the report frame (the report rendered fresh from the artifacts, as after a
parameter change)."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

from conftest import CHROMIUM_ARGS


def time_to_views(results: Path) -> float:
    from playwright.sync_api import sync_playwright

    from tdw.pages.dashboard.app import build_app

    workdir = Path(results).parent
    shutil.rmtree(workdir / "dashboard" / "views", ignore_errors=True)
    app = build_app(workdir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, allowed_paths=[str(workdir / "dashboard" / "views")]
    )
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_role("tab", name="Views").click()
            page.locator("#variant input").click()
            page.get_by_role("option").first.click()
            page.wait_for_function("() => document.querySelector('#params textarea').value.includes('train_color')")
            t0 = time.perf_counter()
            page.click("#show")
            page.wait_for_selector("#tdw-views")
            frame = None
            while frame is None:
                frame = next((f for f in page.frames if "/dashboard/views/" in f.url), None)
                page.wait_for_timeout(20)
            frame.wait_for_function("() => window.tdwReport !== undefined")
            frame.evaluate("() => window.tdwReport.ready")
            seconds = time.perf_counter() - t0
            browser.close()
    finally:
        app.close()
    return seconds
