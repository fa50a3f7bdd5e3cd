"""Realtime watching with watchdog's inotify observer, made loss-aware.

watchdog hands queue overflows (IN_Q_OVERFLOW, wd -1) to its own watch groups and logs a
warning, but an application's event handler never hears of it (watchdog#654), and a watch it
cannot add below a recursive root (ENOSPC: out of inotify watches) is silently skipped. Both
would be silent loss for an integrity monitor, so `FimObserver` runs watchdog's emitters on an
`InotifyFD` subclass that reports both: an overflow triggers a rescan, an unwatchable directory
is scanned periodically instead.

Events are coalesced in a `Debouncer`: a path is judged once its events have been quiet for
`debounce`, and everything pending is judged at least every `max_delay` during a burst — the
judge reads the path's state at that moment, so coalescing loses nothing.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from watchdog.events import (
    DirAttribEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyFullEmitter
from watchdog.observers.inotify_c import InotifyFD

log = structlog.get_logger("sentinel.integrity.realtime")

# what the monitor needs to hear about (open and close-without-write are left out: noise)
EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    DirCreatedEvent,
    FileDeletedEvent,
    DirDeletedEvent,
    FileModifiedEvent,
    FileAttribEvent,
    DirAttribEvent,
    FileMovedEvent,
    DirMovedEvent,
    FileClosedEvent,
]
LIMIT_ERRORS = {errno.ENOSPC: "ENOSPC", errno.EMFILE: "EMFILE", errno.ENOMEM: "ENOMEM"}


class _ReportingInotifyFD(InotifyFD):
    """watchdog's inotify reader, telling us about overflows and watches it could not add."""

    def __init__(self, on_overflow: Callable[[], None], on_watch_failed: Callable[[str, str], None]) -> None:
        super().__init__()
        self._on_overflow = on_overflow
        self._on_watch_failed = on_watch_failed
        self.name = "fim-inotify"

    def handle_event(self, event: Any) -> None:
        if event.is_queue_overflow:
            self._on_overflow()
        super().handle_event(event)

    def add_callback(self, path: bytes, mask: Any, callback: Any, id_: Any) -> Any:
        try:
            return super().add_callback(path, mask, callback, id_)
        except OSError as exc:
            if exc.errno in LIMIT_ERRORS:
                self._on_watch_failed(os.fsdecode(path), LIMIT_ERRORS[exc.errno])
            raise


class FimObserver(BaseObserver):
    """An inotify observer (full move events) whose reader reports overflows and watch failures."""

    def __init__(self, on_overflow: Callable[[], None], on_watch_failed: Callable[[str, str], None]) -> None:
        self._fd = _ReportingInotifyFD(on_overflow, on_watch_failed)
        self._fd.start()
        super().__init__(InotifyFullEmitter, inotify_fd=self._fd)
        self.name = "fim-observer"

    def on_thread_stop(self) -> None:
        super().on_thread_stop()
        self._fd.stop()
        if self._fd.is_alive():
            self._fd.join(5)

    @property
    def reader_alive(self) -> bool:
        """Whether the inotify reader thread still runs (it dying would be a silent loss)."""
        return bool(self._fd.is_alive())

    def close(self) -> None:
        """Stop and join everything, started or not."""
        if self.is_alive():
            self.stop()
            self.join(5)
        else:
            self.on_thread_stop()


class Debouncer:
    """Paths waiting to be judged, coalesced; renames kept as (src, dest) pairs."""

    def __init__(self, debounce: float, max_delay: float) -> None:
        self.debounce = debounce
        self.max_delay = max_delay
        self._cond = threading.Condition()
        self._paths: dict[str, None] = {}
        self._renames: list[tuple[str, str]] = []
        self._in_flight: set[str] = set()
        self._first = 0.0
        self._last = 0.0

    def add(self, path: str) -> None:
        """A path had an event."""
        with self._cond:
            self._touch()
            self._paths[path] = None

    def rename(self, src: str, dest: str) -> None:
        """A path was renamed within the watched trees."""
        with self._cond:
            self._touch()
            self._renames.append((src, dest))

    def _touch(self) -> None:
        now = time.monotonic()
        if not self._paths and not self._renames:
            self._first = now
            self._cond.notify()
        self._last = now

    def pending(self, path: str) -> bool:
        """Whether `path` waits to be judged or is being judged (a rescan leaves it alone)."""
        with self._cond:
            return path in self._paths or path in self._in_flight

    def take(
        self, stop: threading.Event, idle: float = 0.5
    ) -> tuple[list[str], list[tuple[str, str]]] | None:
        """Block until a batch is due (or `idle` passes: None); the batch stays in flight until done()."""
        with self._cond:
            deadline = time.monotonic() + idle
            while not stop.is_set():
                now = time.monotonic()
                if self._paths or self._renames:
                    due = min(self._last + self.debounce, self._first + self.max_delay)
                    if now >= due:
                        paths, renames = list(self._paths), self._renames
                        self._paths, self._renames = {}, []
                        self._in_flight = set(paths) | {p for pair in renames for p in pair}
                        return paths, renames
                    self._cond.wait(due - now)
                elif now >= deadline:
                    return None
                else:
                    self._cond.wait(deadline - now)
            return None

    def done(self) -> None:
        """The batch returned by take() has been applied."""
        with self._cond:
            self._in_flight = set()

    def wake(self) -> None:
        """Wake a waiting take() (used at stop)."""
        with self._cond:
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._paths) + len(self._renames)


class Handler(FileSystemEventHandler):
    """Turns watchdog events into debouncer entries (on the observer thread: cheap only)."""

    def __init__(self, debouncer: Debouncer, special: Callable[[str], bool]) -> None:
        self.debouncer = debouncer
        self._special = special

    def on_any_event(self, event: FileSystemEvent) -> None:
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(getattr(event, "dest_path", "") or "")
        if event.event_type == "moved":
            if src and dest and not self._special(src) and not self._special(dest):
                self.debouncer.rename(src, dest)
                return
            for path in (src, dest):
                if path:
                    self.debouncer.add(path)
            return
        if src and not (event.is_directory and event.event_type == "modified"):  # a dir's mtime: noise
            self.debouncer.add(src)
