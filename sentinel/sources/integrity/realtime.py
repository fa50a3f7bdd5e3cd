"""Realtime watching with watchdog's inotify observer, made loss-aware.

watchdog hands queue overflows (IN_Q_OVERFLOW, wd -1) to its own watch groups and logs a
warning, but an application's event handler never hears of it (watchdog#654), and a watch it
cannot add below a recursive root (ENOSPC: out of inotify watches) is silently skipped. Both
would be silent loss for an integrity monitor, so `FimObserver` runs watchdog's emitters on an
`InotifyFD` subclass that reports both: an overflow triggers a rescan, an unwatchable directory
is scanned periodically instead.

Events are coalesced per path in a `Debouncer`: a path is judged once its own events have been
quiet for `debounce` (a steady stream of changes to other paths holds nobody back), and at the
latest `max_delay` after its first event — the judge reads the path's state at that moment, so
coalescing loses nothing.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections import OrderedDict
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
    """Paths waiting to be judged, each on its own clock; renames kept as (src, dest) pairs.

    A path is due once *its* events have been quiet for `debounce`, or once it has waited
    `max_delay` since its first event (a file written without pause is still judged). Other
    paths' events do not hold it back: a steady stream of changes elsewhere delays nobody.

    A rename ties its two paths together: both are released with it, in order, when every path
    tied to it is due (or one has waited `max_delay`), so that the watcher never judges a source
    as deleted before the rename that explains it.
    """

    def __init__(self, debounce: float, max_delay: float) -> None:
        self.debounce = debounce
        self.max_delay = max_delay
        self._cond = threading.Condition()
        self._paths: dict[str, None] = {}  # to judge, in arrival order
        self._renames: list[tuple[str, str]] = []
        self._last: OrderedDict[str, float] = OrderedDict()  # every waiting path, oldest event first
        self._first: dict[str, float] = {}  # the same paths, in order of their first event
        self._in_flight: set[str] = set()

    def add(self, path: str, now: float | None = None) -> None:
        """A path had an event (at monotonic time `now`, default the present)."""
        with self._cond:
            self._touch(path, time.monotonic() if now is None else now)
            self._paths[path] = None

    def rename(self, src: str, dest: str, now: float | None = None) -> None:
        """A path was renamed within the watched trees."""
        with self._cond:
            now = time.monotonic() if now is None else now
            self._touch(src, now)
            self._touch(dest, now)
            self._renames.append((src, dest))

    def _touch(self, path: str, now: float) -> None:
        if not self._last:
            self._cond.notify()  # the taker may be idle-waiting; otherwise it wakes on its own
        if path in self._last:
            self._last.move_to_end(path)
        else:
            self._first[path] = now
        self._last[path] = now

    def pending(self, path: str) -> bool:
        """Whether `path` waits to be judged or is being judged (a rescan leaves it alone)."""
        with self._cond:
            return path in self._last or path in self._in_flight

    def take(
        self, stop: threading.Event, idle: float = 0.5
    ) -> tuple[list[str], list[tuple[str, str]]] | None:
        """Block until some paths are due (or `idle` passes: None); they stay in flight until done()."""
        with self._cond:
            deadline = time.monotonic() + idle
            while not stop.is_set():
                now = time.monotonic()
                if self._last:
                    released, due = self._due(now) if not self._renames else self._due_tied(now)
                    if released:
                        return self._release(released)
                    self._cond.wait(due - now)
                elif now >= deadline:
                    return None
                else:
                    self._cond.wait(deadline - now)
            return None

    def poll(self, now: float) -> tuple[list[str], list[tuple[str, str]]] | None:
        """What is due at monotonic time `now` (in flight until done()), without waiting; None
        when nothing is."""
        with self._cond:
            if not self._last:
                return None
            released, _due = self._due(now) if not self._renames else self._due_tied(now)
            return self._release(released) if released else None

    def _due(self, now: float) -> tuple[list[str], float]:
        """Without renames: the paths due now (the front of both orders), and when the next is."""
        released = []
        last, first = self._last, self._first
        quiet_before, waited_before = now - self.debounce, now - self.max_delay
        for path, when in last.items():
            if when > quiet_before:
                break
            released.append(path)
        for path, when in first.items():
            if when > waited_before:
                break
            if last[path] > quiet_before:  # not yet taken by the first loop
                released.append(path)
        if released:
            return released, now
        head_last = next(iter(last.values()))
        head_first = next(iter(first.values()))
        return [], min(head_last + self.debounce, head_first + self.max_delay)

    def _due_tied(self, now: float) -> tuple[list[str], float]:
        """With renames waiting: paths tied by a rename are due together (a full pass; renames
        are rare, and such passes are spaced at least a tenth of `debounce` apart)."""
        group: dict[str, str] = {}

        def root(path: str) -> str:
            while group.get(path, path) != path:
                path = group[path]
            return path

        for src, dest in self._renames:
            a, b = root(src), root(dest)
            if a != b:
                group[a] = b
        tied = {p for pair in self._renames for p in pair}
        due_of: dict[str, float] = {}  # an untied path, or the root of a tied group -> when due
        for path, when in self._last.items():
            first = self._first[path]
            if path not in tied:
                due_of[path] = min(when + self.debounce, first + self.max_delay)
                continue
            key = root(path)
            if first + self.max_delay <= now or due_of.get(key, 0.0) < 0:
                due_of[key] = -1.0  # one of the group waited long enough: all of it goes
            else:
                due_of[key] = max(due_of.get(key, 0.0), when + self.debounce)
        released = [p for p in self._last if due_of[root(p) if p in tied else p] <= now]
        later = [d for d in due_of.values() if d > now]
        return released, max(min(later, default=now), now + self.debounce / 10)

    def _release(self, released: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
        gone = set(released)
        for path in released:
            del self._last[path]
            del self._first[path]
        paths = [p for p in released if p in self._paths]
        for path in paths:
            del self._paths[path]
        renames = [pair for pair in self._renames if pair[0] in gone]
        if renames:
            self._renames = [pair for pair in self._renames if pair[0] not in gone]
        self._in_flight = gone
        return paths, renames

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
