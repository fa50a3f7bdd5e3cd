"""The agent's live status board: what every thread reports and what /metrics and status.json read.

Threads write small facts under one lock (a collector run began, ended, failed; an item was
dropped); readers take consistent snapshots. It lives in core because the pipeline, the
exposition and the agent all share it; `sentinel.agent.status` writes and reads status.json.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import Sample

SightProbe = Callable[[], tuple[bool, str, float | None]]
"""A collector's sight read now: (sees, why not, last run wall time of a streaming collector)."""


@dataclass(slots=True)
class CollectorStatus:
    """One collector's health as last observed."""

    name: str
    kind: str  # polled | streaming
    enabled: bool = True
    running_since: float | None = None  # monotonic; set while a run is in progress
    last_run_at: float | None = None  # wall time of the last finished run
    last_duration: float = 0.0
    last_error: str = ""
    errors: int = 0
    runs: int = 0
    ok: bool = True  # the last run finished without error
    sees: bool = True  # the collector can see what it watches (its sight probe says so)
    blind_reason: str = ""  # why it cannot, when it cannot


@dataclass(slots=True)
class _Counters:
    dropped: Counter[str] = field(default_factory=Counter)
    findings: int = 0
    store_write_errors: int = 0
    reloads_ok: bool = True
    last_reload_at: float = 0.0
    last_reload_success_at: float = 0.0


class AgentStatus:
    """Thread-safe status shared by the scheduler, the writer, /metrics and status.json."""

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK, hung_after: float = 60.0) -> None:
        self.clock = clock
        self.hung_after = hung_after
        self.started_at = clock.time()
        self._lock = threading.Lock()
        self._collectors: dict[str, CollectorStatus] = {}
        self._probes: dict[str, SightProbe] = {}
        self._samples: dict[str, tuple[Sample, ...]] = {}
        self._counters = _Counters()
        self.queue_depth: Callable[[], int] = lambda: 0
        self.queue_capacity = 0

    # -- collectors ---------------------------------------------------------------------------

    def register(
        self, name: str, kind: str, *, enabled: bool = True, error: str = "", sight: SightProbe | None = None
    ) -> None:
        """Add a collector (or reset it on reload); `sight` is read whenever its status is."""
        with self._lock:
            status = CollectorStatus(name, kind, enabled=enabled, last_error=error)
            if error:
                status.ok, status.errors = False, 1
            self._collectors[name] = status
            if sight is None:
                self._probes.pop(name, None)
            else:
                self._probes[name] = sight

    def unregister(self, name: str) -> None:
        """Forget a collector that a reload removed."""
        with self._lock:
            self._collectors.pop(name, None)
            self._samples.pop(name, None)
            self._probes.pop(name, None)

    def run_started(self, name: str) -> None:
        """A polled collector began a run."""
        with self._lock:
            self._collectors[name].running_since = self.clock.monotonic()

    def run_finished(
        self, name: str, duration: float, samples: tuple[Sample, ...] | None, error: str = ""
    ) -> None:
        """A run ended; `samples` replaces the collector's latest readings unless it failed."""
        with self._lock:
            status = self._collectors[name]
            status.running_since = None
            status.last_run_at = self.clock.time()
            status.last_duration = duration
            status.runs += 1
            status.ok = not error
            if error:
                status.errors += 1
                status.last_error = error
            if samples is not None:
                self._samples[name] = samples

    def streaming_error(self, name: str, error: str) -> None:
        """A streaming collector reported a problem without stopping."""
        with self._lock:
            status = self._collectors[name]
            status.errors += 1
            status.last_error = error

    def collectors(self) -> list[CollectorStatus]:
        """Copies of every collector's status, with its sight read now."""
        with self._lock:
            # replace(), not asdict(): every field is a scalar, and asdict's deep copy was a tenth
            # of a /metrics scrape (issue 23)
            rows = [replace(c) for c in self._collectors.values()]
            probes = dict(self._probes)
        for row in rows:
            probe = probes.get(row.name)
            if probe is None:
                continue
            try:
                row.sees, row.blind_reason, last_run = probe()
            except Exception as exc:  # a broken probe is a blind collector, never a broken status
                row.sees, row.blind_reason, last_run = False, f"sight probe failed: {exc}", None
            if last_run is not None and row.kind == "streaming":
                row.last_run_at = last_run
        return rows

    def is_up(self, status: CollectorStatus) -> bool:
        """Up: enabled, last run fine, and not stuck in a run for longer than `hung_after`."""
        if not status.enabled:
            return False
        if (
            status.running_since is not None
            and self.clock.monotonic() - status.running_since > self.hung_after
        ):
            return False
        return status.ok

    def latest_samples(self) -> dict[str, tuple[Sample, ...]]:
        """The latest complete batch of samples of each polled collector."""
        with self._lock:
            return dict(self._samples)

    # -- pipeline and config ------------------------------------------------------------------

    def dropped(self, collector: str) -> None:
        """An item could not be queued (the queue was full)."""
        with self._lock:
            self._counters.dropped[collector] += 1

    def findings_processed(self, n: int) -> None:
        """The writer applied n findings to the store."""
        with self._lock:
            self._counters.findings += n

    def store_write_error(self) -> None:
        """A write to the hazard store failed (disk full, read-only, locked)."""
        with self._lock:
            self._counters.store_write_errors += 1

    def reloaded(self, ok: bool) -> None:
        """A config reload was attempted."""
        with self._lock:
            now = self.clock.time()
            self._counters.reloads_ok = ok
            self._counters.last_reload_at = now
            if ok:
                self._counters.last_reload_success_at = now

    def counters(self) -> dict[str, Any]:
        """Counters as plain data."""
        with self._lock:
            c = self._counters
            return {
                "dropped": dict(c.dropped),
                "findings": c.findings,
                "store_write_errors": c.store_write_errors,
                "last_reload_successful": c.reloads_ok,
                "last_reload_success_at": c.last_reload_success_at or self.started_at,
            }

    # -- status.json --------------------------------------------------------------------------

    def snapshot(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything `sentinel status --json` shows."""
        now_m = self.clock.monotonic()
        collectors = []
        for c in self.collectors():
            collectors.append(
                {
                    "name": c.name,
                    "kind": c.kind,
                    "enabled": c.enabled,
                    "up": self.is_up(c) and c.sees,
                    "sees": c.sees,
                    "reason": c.blind_reason or (c.last_error if not self.is_up(c) else ""),
                    "last_run_at": c.last_run_at,
                    "last_duration_seconds": round(c.last_duration, 6),
                    "running_for_seconds": None
                    if c.running_since is None
                    else round(now_m - c.running_since, 3),
                    "runs": c.runs,
                    "errors": c.errors,
                    "last_error": c.last_error,
                }
            )
        return {
            "pid": os.getpid(),
            "started_at": self.started_at,
            "written_at": self.clock.time(),
            "queue": {"depth": self.queue_depth(), "capacity": self.queue_capacity},
            "collectors": collectors,
            **self.counters(),
            **(extra or {}),
        }
