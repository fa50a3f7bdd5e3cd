"""Starting the real agent (on the shipped config) and real peers for benchmarks."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.net import free_port


def shipped_config(root: Path, scratch: Path, extra: str = "") -> tuple[Path, int]:
    """A copy of config/ with state in scratch and metrics on a free loopback port."""
    target = scratch / "config"
    shutil.copytree(root / "config", target, dirs_exist_ok=True)
    port = free_port()
    (target / "conf.d").mkdir(exist_ok=True)
    (target / "conf.d" / "90-bench.toml").write_text(
        f'[agent]\nstate_dir = "{scratch / "state"}"\n\n[metrics]\nlisten = "127.0.0.1:{port}"\n' + extra
    )
    return target / "sentinel.toml", port


def wait_http(url: str, timeout: float = 30.0) -> None:
    """Until the URL answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def start_agent(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """The agent as a real process; returns once /metrics answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sentinel", "run", "--config", str(config)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/metrics")
    except TimeoutError:
        stop(proc)
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"the agent did not start: {' | '.join(tail)}") from None
    return proc


def start_node_exporter(log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Debian's prometheus-node-exporter on a free loopback port."""
    binary = shutil.which("prometheus-node-exporter")
    if binary is None:
        raise RuntimeError("prometheus-node-exporter not installed (make bench installs it as root)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}"], stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    wait_http(f"http://127.0.0.1:{port}/metrics")
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if needed."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def scrape(port: int) -> bytes:
    """One scrape."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return bytes(response.read())
