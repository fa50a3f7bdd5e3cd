"""Real agent processes for tests and benchmarks.

- NotifyListener: a real AF_UNIX datagram socket standing in for systemd's notify socket, so a
  test can wait for READY=1 instead of sleeping.
- write_config(): a minimal valid config file for a temporary state directory.
- AgentProcess, wait_for_log(): a real `sentinel run` process, its readiness, scrapes and log.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from sentinel.sources.registry import names
from tests.support.unit import Sandbox, credentials


class NotifyListener:
    """Receives sd_notify datagrams on a socket in `directory` (use as NOTIFY_SOCKET)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "notify.sock"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.path))
        self.messages: list[str] = []

    def wait_for(self, line: str, timeout: float = 15.0) -> list[str]:
        """Block until a datagram containing `line` arrives; return all received so far."""
        deadline = time.monotonic() + timeout
        while not any(line in m.splitlines() for m in self.messages):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {line!r} from the agent within {timeout}s; got {self.messages}")
            self._sock.settimeout(remaining)
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            self.messages.append(data.decode("utf-8", "replace"))
        return self.messages

    def wait_count(self, line: str, count: int, timeout: float = 15.0) -> int:
        """Block until `count` datagrams containing `line` have arrived; return how many did."""
        deadline = time.monotonic() + timeout
        while True:
            seen = sum(1 for m in self.messages if line in m.splitlines())
            if seen >= count:
                return seen
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"only {seen} of {count} {line!r} within {timeout}s")
            self._sock.settimeout(remaining)
            try:
                self.messages.append(self._sock.recv(65536).decode("utf-8", "replace"))
            except TimeoutError:
                continue

    def close(self) -> None:
        """Close and remove the socket."""
        self._sock.close()
        self.path.unlink(missing_ok=True)


DEVICE_COLLECTORS = tuple(n for n in names("host") if n not in ("health", "drill_probe"))
"""The device collectors a quiet test agent (health=False) switches off."""
DETECTORS = names("detectors")
"""Every event detector: a test agent runs only those its `extra` configures."""


def write_config(
    directory: Path,
    *,
    port: int = 0,
    extra: str = "",
    health: bool = True,
    name: str = "sentinel.toml",
) -> Path:
    """A small valid config in `directory` with state in `directory/state`."""
    path = directory / name
    text = f"""
[agent]
state_dir = "state"
branch = "0101-test"
terminal_id = "test-terminal"
status_interval = "1s"

[metrics]
listen = "127.0.0.1:{port}"

[hazards]
check_interval = "1s"

[collectors.health]
enabled = {"true" if health else "false"}
interval = "1s"
"""
    if not health:  # health=False means a quiet agent: none of the device collectors either
        text += "".join(f"\n[collectors.{c}]\nenabled = false\n" for c in DEVICE_COLLECTORS)
    # Event detectors watch the whole machine: a test agent runs only those its `extra` configures.
    text += "".join(
        f"\n[collectors.{d}]\nenabled = false\n" for d in DETECTORS if f"[collectors.{d}]" not in extra
    )
    path.write_text(text + extra, encoding="utf-8")
    return path


class AgentProcess:
    """A real agent process with its notify socket, log file and metrics address."""

    def __init__(
        self,
        directory: Path,
        config: Path,
        port: int,
        env: dict[str, str] | None = None,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.directory = directory
        self.config = config
        self.port = port
        self.log_path = directory / "agent.log"
        self.notify = NotifyListener(directory)
        self.sandbox = sandbox
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, "NOTIFY_SOCKET": str(self.notify.path), **(env or {})}
        full_env.pop("WATCHDOG_PID", None)
        command = [sys.executable, "-m", "sentinel", "run", "--config", str(config)]
        if sandbox is not None:  # as installed: the unit's account owns its state directory
            creds = credentials(sandbox.unit)
            os.chown(directory, creds.uid, creds.gid)
            config.chmod(0o644)
            self.notify.path.chmod(0o777)  # the unit's account sends READY=1
            command = sandbox.argv(command)
        self.proc = subprocess.Popen(
            command,
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
        if self.sandbox is not None:
            self.sandbox.cleanup()
        return self.proc.returncode


def wait_for_log(agent: AgentProcess, event: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
    """The first log event named `event` with the given fields, waiting for it to appear."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in agent.log_events():
            if entry.get("event") == event and all(entry.get(k) == v for k, v in fields.items()):
                return entry
        time.sleep(0.05)
    raise AssertionError(f"no {event!r} log line within {timeout}s; log:\n{agent.log()}")
