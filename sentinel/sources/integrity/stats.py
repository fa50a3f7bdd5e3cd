"""What the file integrity monitor counts, and the series it exports at scrape time."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable

import structlog

from sentinel.core.model import MetricSpec, Sample
from sentinel.sources.base import SIGHT_METRIC
from sentinel.sources.integrity.changes import PATH_KINDS, Change
from sentinel.sources.integrity.scanner import SKIP_REASONS, ScanStats

log = structlog.get_logger("sentinel.integrity")

METRICS = (
    MetricSpec("sentinel_fim_watched_files", "gauge", "Paths the file integrity monitor tracks."),
    MetricSpec(
        "sentinel_fim_changes_total",
        "counter",
        "File changes reported, by kind and policy.",
        ("kind", "policy"),
    ),
    MetricSpec(
        "sentinel_fim_scan_duration_seconds", "gauge", "Duration of the last scan, by mode.", ("mode",)
    ),
    MetricSpec(
        "sentinel_fim_last_scan_timestamp_seconds",
        "gauge",
        "When the last scan finished, by mode.",
        ("mode",),
    ),
    MetricSpec(
        "sentinel_fim_overflows_total", "counter", "inotify queue overflows (each one triggers a rescan)."
    ),
    MetricSpec("sentinel_fim_rescans_total", "counter", "Rescans run, by reason.", ("reason",)),
    MetricSpec(
        "sentinel_fim_unwatched_paths", "gauge", "Directories inotify could not watch (scanned periodically)."
    ),
    MetricSpec("sentinel_fim_baseline_valid", "gauge", "1 while the baseline's signature verifies."),
    MetricSpec(
        "sentinel_fim_baseline_info", "gauge", "The baseline in use (digest of its content).", ("digest",)
    ),
    MetricSpec(
        "sentinel_fim_skipped_total",
        "counter",
        "Paths a scan could not fully read, by reason (unreadable, vanished, special, unstable, loop).",
        ("reason",),
    ),
    MetricSpec("sentinel_fim_pending_paths", "gauge", "Paths with events waiting to be judged."),
    MetricSpec(
        "sentinel_fim_held_paths", "gauge", "Changed paths waiting for a package operation to settle."
    ),
    MetricSpec(
        "sentinel_fim_attributed_total",
        "counter",
        "Changes folded into a package operation's record instead of a hazard of their own.",
    ),
    SIGHT_METRIC,
)
SCAN_REASONS = (
    "startup",
    "overflow",
    "queue_drop",
    "fallback",
    "deep",
    "new_directory",
    "reader_restart",
    "baseline_reload",
)


class MonitorStats:
    """Counters and last-scan times (own lock: counting never waits on the reference)."""

    def __init__(self, policies: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        # every (kind, policy) the config can report starts at 0: `increase()` sees the first
        # change after a start (Prometheus' instrumentation guide)
        self.changes: Counter[tuple[str, str]] = Counter(
            dict.fromkeys(((k, p) for p in dict.fromkeys(policies) if p != "ignore" for k in PATH_KINDS), 0)
        )
        self.skipped: Counter[str] = Counter(dict.fromkeys(SKIP_REASONS, 0))
        self.rescans: Counter[str] = Counter(dict.fromkeys(SCAN_REASONS, 0))
        self.overflows = 0
        self.attributed = 0
        self.scan_duration: dict[str, float] = {}
        self.scan_time: dict[str, float] = {}
        self.absent: frozenset[str] = frozenset()

    def scanned(self, mode: str, stats: ScanStats, now: float) -> None:
        """A scan ("quick" or "deep") finished; watched roots missing here are logged once (each
        root once per run), never counted as skipped paths."""
        with self._lock:
            self.scan_duration[mode] = stats.duration
            self.scan_time[mode] = now
            self.skipped.update(stats.skipped)
            new = frozenset(stats.absent) - self.absent
            self.absent |= new
        if new:
            log.info("fim_roots_absent", roots=sorted(new))

    def rescan(self, reason: str) -> None:
        """A rescan started."""
        with self._lock:
            self.rescans[reason] += 1

    def reported(self, changes: Iterable[Change]) -> None:
        """Changes were reported."""
        with self._lock:
            self.changes.update((c.kind, c.policy) for c in changes)

    def folded(self, n: int) -> None:
        """Changes were folded into package operations."""
        with self._lock:
            self.attributed += n

    def skip(self, reason: str) -> None:
        """A path could not be fully read outside a scan (realtime hashing)."""
        with self._lock:
            self.skipped[reason] += 1

    def overflowed(self) -> int:
        """inotify dropped events; the count so far."""
        with self._lock:
            self.overflows += 1
            return self.overflows

    def samples(
        self, *, watched: int, unwatched: int, valid: bool, digest: str | None, pending: int, held: int = 0
    ) -> list[Sample]:
        """The monitor's series, with the gauges the other parts report."""
        with self._lock:
            out = [
                Sample.of("sentinel_fim_watched_files", watched),
                Sample.of("sentinel_fim_overflows_total", self.overflows),
                Sample.of("sentinel_fim_unwatched_paths", unwatched),
                Sample.of("sentinel_fim_baseline_valid", 1 if valid else 0),
                Sample.of("sentinel_fim_pending_paths", pending),
                Sample.of("sentinel_fim_held_paths", held),
                Sample.of("sentinel_fim_attributed_total", self.attributed),
            ]
            if digest is not None:
                out.append(Sample.of("sentinel_fim_baseline_info", 1, digest=digest[:16]))
            out += [
                Sample.of("sentinel_fim_changes_total", n, kind=k, policy=p)
                for (k, p), n in self.changes.items()
            ]
            out += [Sample.of("sentinel_fim_skipped_total", n, reason=r) for r, n in self.skipped.items()]
            out += [Sample.of("sentinel_fim_rescans_total", n, reason=r) for r, n in self.rescans.items()]
            for mode, seconds in self.scan_duration.items():
                out.append(Sample.of("sentinel_fim_scan_duration_seconds", seconds, mode=mode))
                out.append(
                    Sample.of("sentinel_fim_last_scan_timestamp_seconds", self.scan_time[mode], mode=mode)
                )
        return out
