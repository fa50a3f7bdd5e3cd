"""Rescans: after an inotify overflow, after a dropped batch, for trees inotify cannot watch, for
a new directory, and the periodic deep scan. Each compares the trees with the reference and
reports what differs; roots new to the config are adopted silently by the first scan covering
them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import structlog

from sentinel.core.clock import Clock
from sentinel.sources.integrity.changes import Change, compare
from sentinel.sources.integrity.realtime import Debouncer
from sentinel.sources.integrity.reference import Reference, Undo
from sentinel.sources.integrity.scanner import Scanner, ScanStats, WatchSet, release_memory
from sentinel.sources.integrity.stats import MonitorStats

log = structlog.get_logger("sentinel.integrity")

Report = Callable[..., None]  # Reporter.report(changes, undo, how=...)


class Rescans:
    """The rescan schedule (what is due when) and the rescan itself."""

    def __init__(
        self,
        *,
        scanner: Scanner,
        watchset: WatchSet,
        reference: Reference,
        debouncer: Debouncer,
        stats: MonitorStats,
        clock: Clock,
        report: Report,
        wake: threading.Event,
    ) -> None:
        self.scanner = scanner
        self.watchset = watchset
        self.ref = reference
        self.debouncer = debouncer
        self.stats = stats
        self.clock = clock
        self.report = report
        self.wake = wake
        self._lock = threading.Lock()
        self._due: dict[str, float] = {}  # reason -> earliest monotonic time to run it
        self.held: Callable[[str], bool] = lambda _path: False  # set when an inventory runs

    def request(self, reason: str, delay: float = 0.0) -> None:
        """Ask the scan thread for a quick rescan of every tree."""
        with self._lock:
            due = time.monotonic() + delay
            self._due[reason] = min(self._due.get(reason, due), due)
        self.wake.set()

    def due(self, now: float) -> list[str]:
        """The reason to rescan now, if any (one quick rescan covers every reason due now)."""
        with self._lock:
            due = [r for r, t in self._due.items() if t <= now]
            for reason in due:
                del self._due[reason]
        return due[:1] if due else []

    def run(self, reason: str, *, deep: bool, roots: Sequence[str] | None = None) -> None:
        """Scan (all trees, or `roots`), compare with the reference, report the differences."""
        started = time.monotonic()
        stats = ScanStats()
        self.stats.rescan(reason)
        with self.ref.lock:
            reference = self.ref.table
        current = self.scanner.scan(roots=roots, reference=reference, deep=deep, stats=stats)
        if roots is None:

            def in_scope(path: str) -> bool:
                return True

        else:
            prefixes = tuple(roots)

            def in_scope(path: str) -> bool:
                return any(self.watchset.within(path, r) for r in prefixes)

        def skip(path: str) -> bool:
            if self.held(path):  # waits for a package operation to settle
                return True
            return self.debouncer.pending(path) or self.ref.stamps.get(path, 0.0) > started

        with self.ref.lock:
            changes = compare(self.watchset, self.ref.table, current, in_scope, skip)
            changes, undo = self._adopt(changes, reason)
            # the roots this rescan covered are adopted now; later creations there are changes
            self.ref.adopt_roots = {r for r in self.ref.adopt_roots if not in_scope(r)}
            for path in current:  # keep quick-mode stamps (mtime, ctime) current
                if path in self.ref.table and not current.same(path, self.ref.table) and not skip(path):
                    self.ref.keep(path, current[path])
            self.ref.stamps = {p: t for p, t in self.ref.stamps.items() if t > started}
        self.stats.scanned("deep" if deep else "quick", stats, self.clock.time())
        release_memory()
        if changes:
            log.info("fim_rescan_changes", reason=reason, changes=len(changes))
        self.report(changes, undo, how=f"rescan:{reason}")

    def _adopt(self, changes: list[Change], reason: str) -> tuple[list[Change], Undo]:
        """Apply changes to the reference (caller holds the lock); new roots are adopted silently."""
        undo = Undo()
        reported: list[Change] = []
        adopted = 0
        for change in changes:
            watch = self.watchset.resolve(change.path)
            if change.kind == "created" and watch is not None and str(watch.path) in self.ref.adopt_roots:
                self.ref.apply(change, Undo())  # adopted for good: a dropped batch does not undo it
                adopted += 1
                continue
            self.ref.apply(change, undo)
            reported.append(change)
        if adopted:
            log.info("fim_scope_added", paths=adopted, roots=sorted(self.ref.adopt_roots), reason=reason)
        return reported, undo
