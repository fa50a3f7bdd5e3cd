"""Emitting the monitor's changes: events in chunks, the mass-modification detector in between,
and a dropped batch taken back (the reference rolled back, a rescan scheduled)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

import structlog

from sentinel.core.clock import Clock
from sentinel.core.model import Event
from sentinel.sources.base import Emit
from sentinel.sources.integrity.changes import PATH_KINDS, Change, MassDetector
from sentinel.sources.integrity.config import IntegrityConfig
from sentinel.sources.integrity.packages import PackageHolds
from sentinel.sources.integrity.reference import Reference, Undo
from sentinel.sources.integrity.scanner import WatchSet
from sentinel.sources.integrity.stats import MonitorStats

log = structlog.get_logger("sentinel.integrity")

EMIT_CHUNK = 500
DROP_RETRY = 1.0  # seconds to let a full queue drain before the rescan that recovers a drop


class Reporter:
    """Turns changes into events and hands them to the pipeline; no change is lost on a drop."""

    def __init__(
        self,
        config: IntegrityConfig,
        *,
        watchset: WatchSet,
        reference: Reference,
        stats: MonitorStats,
        clock: Clock,
        request_rescan: Callable[[str, float], None],
    ) -> None:
        self.config = config
        self.watchset = watchset
        self.ref = reference
        self.stats = stats
        self.clock = clock
        self.request_rescan = request_rescan
        self.mass = MassDetector(config.mass_modification)
        self.holds: PackageHolds | None = None  # set by the monitor when an inventory runs
        self.emit: Emit | None = None
        self._drill_prefix = str(config.drill_dir).rstrip("/") + "/" if config.drill_dir else None
        self._lock = threading.Lock()  # the unsent events (appended from watchdog's thread too)
        self._unsent: list[Event] = []

    def report(self, changes: list[Change], undo: Undo, *, how: str) -> None:
        """Emit the changes' events (with the mass-modification detector in between); changes a
        running package operation may explain are held instead (sentinel.sources.integrity.packages)."""
        changes = self.holds.hold(changes, undo) if self.holds is not None else changes
        if not changes:
            return
        now = self.clock.time()
        events: list[Event] = []
        holds = self.holds
        attribution = [holds.fields(c, now) if holds is not None else ({}, None) for c in changes]
        own = [c for c, (_, v) in zip(changes, attribution, strict=True) if v is None or not v.folded]
        with self.ref.lock:
            started = self.mass.observe(own, now)  # a package's files are not a ransomware burst
            burst = self.mass.active
        if started is not None:
            events.append(started)
        for change, (package, verdict) in zip(changes, attribution, strict=True):
            watch = self.watchset.resolve(change.path)
            checks = watch.checks if watch is not None else None
            folded = verdict is not None and verdict.folded
            in_burst = burst and not folded and change.policy in self.config.mass_modification.policies
            event = change.event(now, how=how, checks=checks, burst=in_burst, package=package)
            if self._drill_prefix and change.path.startswith(self._drill_prefix):
                event = dataclasses.replace(event, fields=(*event.fields, ("drill", True)))
            events.append(event)
        self.stats.reported(changes)
        self.stats.folded(len(changes) - len(own))
        self.send(events, undo)

    def send(self, events: list[Event], undo: Undo) -> None:
        """Emit in chunks; a dropped batch rolls the reference back and schedules the rescan."""
        if self.emit is None or not events:
            return
        dropped = False
        for i in range(0, len(events), EMIT_CHUNK):
            chunk = events[i : i + EMIT_CHUNK]
            if not self.emit(chunk):  # the queue stayed full: the pipeline counted the drop
                dropped = True
                with self._lock:  # path events come back with the rescan; the others are kept
                    self._unsent += [e for e in chunk if e.kind not in PATH_KINDS]
        if dropped:
            self.ref.roll_back(undo)
            log.warning("fim_batch_dropped", events=len(events))
            self.request_rescan("queue_drop", DROP_RETRY)

    def keep(self, event: Event) -> None:
        """Send `event` on the scan thread's next turn (from any thread)."""
        with self._lock:
            self._unsent.append(event)

    def send_unsent(self) -> None:
        """Send what was kept back (dropped non-path events, events from other threads)."""
        with self._lock:
            unsent, self._unsent = self._unsent, []
        if unsent:
            self.send(unsent, Undo())

    def tick(self) -> None:
        """Let the mass-modification detector end an episode that went quiet."""
        with self.ref.lock:
            ended = self.mass.tick(self.clock.time())
        if ended is not None:
            self.send([ended], Undo())
