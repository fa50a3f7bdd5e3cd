"""Fixtures that start the real `sentinel run` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel.testing import NotifyListener, free_port, write_config


class AgentProcess:
    """A real agent process with its notify socket, log file and metrics address."""

    def __init__(self, directory: Path, config: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.config = config
        self.port = port
        self.log_path = directory / "agent.log"
        self.notify = NotifyListener(directory)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, "NOTIFY_SOCKET": str(self.notify.path), **(env or {})}
        full_env.pop("WATCHDOG_PID", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sentinel", "run", "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=directory,
        )

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Block until the agent sent READY=1 (or fail with its log)."""
        try:
            self.notify.wait_for("READY=1", timeout)
        except TimeoutError:
            raise AssertionError(f"agent not ready; exit {self.proc.poll()}; log:\n{self.log()}") from None

    def scrape(self, path: str = "/metrics") -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
            return str(response.read().decode())

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait; SIGKILL if it does not stop. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        self.notify.close()
        return self.proc.returncode


@pytest.fixture
def start_agent(tmp: Path) -> Iterator[Any]:
    """Start real agents; every one is stopped at the end."""
    started: list[AgentProcess] = []

    def start(
        extra: str = "",
        *,
        health: bool = True,
        env: dict[str, str] | None = None,
        wait: bool = True,
        directory: Path | None = None,
    ) -> AgentProcess:
        where = directory or tmp
        port = free_port()
        config = write_config(where, port=port, extra=extra, health=health)
        agent = AgentProcess(where, config, port, env)
        started.append(agent)
        if wait:
            agent.wait_ready()
        return agent

    yield start
    for agent in started:
        agent.stop()


def wait_for_log(agent: AgentProcess, event: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
    """The first log event named `event` with the given fields, waiting for it to appear."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in agent.log_events():
            if entry.get("event") == event and all(entry.get(k) == v for k, v in fields.items()):
                return entry
        time.sleep(0.05)
    raise AssertionError(f"no {event!r} log line within {timeout}s; log:\n{agent.log()}")
