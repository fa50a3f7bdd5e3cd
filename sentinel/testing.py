"""Helpers that tests (and users writing their own collectors) can reuse.

- FakeClock: deterministic monotonic and wall time, advanced by hand.
- NotifyListener: a real AF_UNIX datagram socket standing in for systemd's notify socket, so a
  test can wait for READY=1 instead of sleeping.
- free_port(), wait_until(): loopback ports and bounded waits.
- write_config(): a minimal valid config file for a temporary state directory.
- AgentProcess, wait_for_log(): a real `sentinel run` process, its readiness, scrapes and log.
"""

from __future__ import annotations

import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start_wall: float = 1_800_000_000.0, start_mono: float = 1000.0) -> None:
        self._wall = start_wall
        self._mono = start_mono
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        """Fake monotonic seconds."""
        with self._lock:
            return self._mono

    def time(self) -> float:
        """Fake wall-clock seconds."""
        with self._lock:
            return self._wall

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        with self._lock:
            self._mono += seconds
            self._wall += seconds

    def jump_wall(self, seconds: float) -> None:
        """Move only the wall clock (an NTP step or a hand-set clock); may be negative."""
        with self._lock:
            self._wall += seconds


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `predicate` until it returns something truthy; raise TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


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


DEVICE_COLLECTORS = ("filesystems", "disks", "network", "sensors", "services", "timesync")
DETECTORS = ("auth", "usb", "listeners", "processes", "outbound", "accounts")


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

    def __init__(self, directory: Path, config: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.config = config
        self.port = port
        self.log_path = directory / "agent.log"
        self.notify = NotifyListener(directory)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, "NOTIFY_SOCKET": str(self.notify.path), **(env or {})}
        full_env.pop("WATCHDOG_PID", None)
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
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


def wait_for_log(agent: AgentProcess, event: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
    """The first log event named `event` with the given fields, waiting for it to appear."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in agent.log_events():
            if entry.get("event") == event and all(entry.get(k) == v for k, v in fields.items()):
                return entry
        time.sleep(0.05)
    raise AssertionError(f"no {event!r} log line within {timeout}s; log:\n{agent.log()}")


class WebhookReceiver:
    """A real HTTP receiver on 127.0.0.1 that checks Standard Webhooks signatures.

    `status` sets the answer (e.g. 503 to simulate an outage, 400 to reject); `stop()` then
    `start()` again simulates the receiver being down (same port). Every accepted delivery is kept
    in `received` as (webhook-id, parsed body); `bad_signatures` counts rejected ones.
    """

    def __init__(self, secret: bytes | None = None, port: int = 0) -> None:
        self.secret = secret
        self.port = port
        self.status = 200
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.bad_signatures = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where to POST."""
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> WebhookReceiver:
        """Listen (on the same port as before, if restarted)."""
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                code = receiver.handle(dict(self.headers.items()), body)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server(("127.0.0.1", self.port), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )
        self._thread.start()
        return self

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        """Verify, record, answer."""
        lower = {k.lower(): v for k, v in headers.items()}
        if self.secret is not None:
            from sentinel.tickets.sinks.webhook import sign

            expected = sign(
                self.secret, lower.get("webhook-id", ""), int(lower.get("webhook-timestamp", "0")), body
            )
            offered = lower.get("webhook-signature", "").split(" ")  # several while a secret rotates
            if not any(hmac.compare_digest(sig, expected) for sig in offered):
                with self._lock:
                    self.bad_signatures += 1
                return 401
        with self._changed:
            status = self.status
            if 200 <= status < 300:
                self.received.append((lower.get("webhook-id", ""), json.loads(body)))
                self._changed.notify_all()
        return status

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> None:
        """Block until predicate(received) is true; TimeoutError with what arrived otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.received), timeout):
                raise TimeoutError(f"receiver: condition not met in {timeout}s; got {len(self.received)}")

    def stop(self) -> None:
        """Stop listening (the port is freed)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None


def make_test_pki(directory: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with the openssl CLI.

    Files: ca.pem/ca.key, server.pem/server.key, client.pem/client.key (EC P-256: fast to make).
    """

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=60)  # noqa: S603, S607

    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *key, "-days", "1", "-subj", "/CN=test-ca", "-keyout", "ca.key", "-out", "ca.pem")
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", *key, "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr")
        (directory / f"{name}.ext").write_text(ext + "\n")
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            f"{name}.ext",
            "-out",
            f"{name}.pem",
        )
    return directory
