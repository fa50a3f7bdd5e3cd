"""The browser harness: the hub's pages served by uvicorn on loopback, driven in Debian's Chromium.

Playwright for Python drives /usr/bin/chromium (never `playwright install`: the network is closed)
with the flags a closed machine needs (no background networking, no component updates, no sync)
and a fresh profile directory each time. Used by test_browser.py and by screenshots.py (the
pictures in docs/hub.md).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def missing() -> str | None:
    """Why the browser tests cannot run here (None: they can)."""
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        return "chromium not found: install it with `apt-get install chromium` (install-system-deps.sh)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright for Python not installed: pip install -e '.[test]'"
    return None


@dataclass
class Served:
    """A running uvicorn with the app, and its base URL."""

    url: str
    server: Any
    thread: threading.Thread


@contextlib.contextmanager
def serve(app: Any) -> Iterator[Served]:
    """Serve `app` on 127.0.0.1:<free port> in a thread (its lifespan runs there), until the block ends."""
    import uvicorn

    from tests.support.net import free_port

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="hub-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", server, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def chromium(*, locale: str = "zh-CN", width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A fresh headless Chromium context (its own profile directory, deleted afterwards)."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="sentinel-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            locale=locale,
            viewport={"width": width, "height": height},
            timezone_id="Asia/Shanghai",
        )
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            context.close()


def log_in(page: Any, base: str, name: str, password: str) -> None:
    """Fill and send the login form as a person would."""
    page.goto(f"{base}/ledger")
    page.fill("#user", name)
    page.fill("#password", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url("**/ledger")
