"""The auth detector's journal source: `journalctl --follow -o json --all` on the auth and authpriv
facilities, resumed with `--after-cursor`, restarted from the cursor when it exits (journald
restart or rotation, wazuh#26778).

Lines arrive in chunks; `JournalLines` splits them, bounded: an entry longer than `limit` bytes
is skipped and counted once, however many chunks it spans (a 1 MiB entry is one malformed input,
not eight). `--all` keeps a field over 4096 bytes instead of journalctl's `null`.
"""

from __future__ import annotations

import os
import select
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import structlog

log = structlog.get_logger("sentinel.collectors.auth")

AUTH_FACILITIES = ("SYSLOG_FACILITY=4", "SYSLOG_FACILITY=10")  # auth, authpriv
READ_CHUNK = 1 << 16


def journal_command(journalctl: str, cursor: str | None, since: float | None = None) -> list[str]:
    """The journalctl invocation: follow, JSON with every field whole, auth facilities, from the
    cursor; before any entry was stored, from the time the detector first started (`since`)."""
    cmd = [journalctl, "--follow", "--output=json", "--all", "--no-pager", *AUTH_FACILITIES]
    if cursor:
        cmd.append(f"--after-cursor={cursor}")
    elif since is not None:
        cmd.append(f"--since=@{since:.6f}")
    else:
        cmd.append("--lines=0")  # from now on, not the whole history
    return cmd


@dataclass
class JournalLines:
    """Complete lines out of a stream of chunks, none longer than `limit` bytes."""

    limit: int
    buffer: bytes = b""
    discarding: bool = False  # inside an over-long entry: drop bytes up to its newline
    skipped: int = 0  # over-long entries dropped

    def feed(self, chunk: bytes) -> list[bytes]:
        """The complete lines that `chunk` finishes (over-long ones left out and counted)."""
        *lines, rest = (self.buffer + chunk).split(b"\n")
        if self.discarding:
            if not lines:  # still inside the entry being dropped
                self.buffer = b""
                return []
            lines, self.discarding = lines[1:], False  # its last piece ends at this newline
        out = []
        for line in lines:
            if len(line) > self.limit:
                self.skipped += 1
            elif line.strip():
                out.append(line)
        self.buffer = rest
        if len(rest) > self.limit:
            self.skipped += 1
            self.buffer, self.discarding = b"", True
        return out


class JournalProcess:
    """One journalctl child at a time; `lines()` yields what it prints until it exits or `stop`."""

    def __init__(self, journalctl: str, *, limit: int, poll_interval: float, stop: threading.Event) -> None:
        self.journalctl = journalctl
        self.limit = limit
        self.poll_interval = poll_interval
        self._stop = stop
        self._proc: subprocess.Popen[bytes] | None = None
        self.splitter = JournalLines(limit)

    def start(self, cursor: str | None, since: float | None = None) -> None:
        """Start journalctl after `cursor` (or `since`); raise OSError when it cannot run."""
        self.splitter = JournalLines(self.limit)
        self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            journal_command(self.journalctl, cursor, since), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )

    def lines(self, on_idle: Callable[[], None]) -> Iterator[list[bytes]]:
        """Batches of complete lines until journalctl exits or we are stopped; `on_idle` when quiet."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], self.poll_interval)
            if not ready:
                on_idle()
                continue
            chunk = os.read(fd, READ_CHUNK)
            if not chunk:
                return
            yield self.splitter.feed(chunk)

    def kill(self) -> int | None:
        """Stop journalctl (terminate, then kill) and return its exit code."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(3)
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode
