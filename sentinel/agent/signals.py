"""Waking the agent's main loop from a signal handler without taking a lock.

A Python signal handler runs in the main thread between two bytecodes, possibly while that thread
holds a lock: the log writer's, or the one inside a `threading.Event`. A handler that logs or calls
`Event.set()` then waits for a lock its own thread holds, and every other thread that logs queues
behind it. The agent froze exactly so under 100 SIGHUPs in 10 s (tests/faults/test_reload_storm.py,
the py-spy dump showed `on_hup` re-entered inside structlog's `PrintLogger.msg`). So a handler only
appends the signal to a deque (atomic in CPython) and sends one byte on a non-blocking socket pair;
the main loop waits on it and does the logging, reloading and stopping outside the handler.
"""

from __future__ import annotations

import contextlib
import select
import socket
from collections import deque


class Wakeup:
    """A self-pipe (a socket pair): `set()` is safe from signal handlers and threads; one loop waits."""

    def __init__(self) -> None:
        # a socket pair rather than os.pipe(): a closed socket object refuses to send, where a
        # closed pipe's number could be reused by another file and written to (asyncio does the same)
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self._signals: deque[int] = deque()

    def set(self) -> None:
        """Wake the waiting loop (a full buffer means it is woken already)."""
        with contextlib.suppress(OSError):  # full (BlockingIOError), or closed at teardown
            self._write.send(b"\0")

    def note_signal(self, signum: int) -> None:
        """What a signal handler calls: remember the signal, wake the loop. No lock, no I/O but one byte."""
        self._signals.append(signum)
        self.set()

    def wait(self, timeout: float) -> None:
        """Sleep until woken or `timeout` seconds pass, then forget the wake-ups seen so far."""
        readable, _, _ = select.select([self._read], [], [], max(0.0, timeout))
        if readable:
            self._drain()

    def signals(self) -> list[int]:
        """The signals received since the last call, oldest first."""
        out: list[int] = []
        while self._signals:
            out.append(self._signals.popleft())
        return out

    def close(self) -> None:
        self._write.close()
        self._read.close()

    def _drain(self) -> None:
        while True:
            try:
                if not self._read.recv(4096):
                    return
            except BlockingIOError:
                return
