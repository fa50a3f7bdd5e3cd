"""The file integrity monitor as a streaming collector: baseline, realtime, rescans, no silent loss.

Threads (all stopped and joined by `stop()`):

- `fim-scan`: arms the inotify watches, loads and verifies the signed baseline (a tampered one
  or a missing key is an event, `baseline_tampered`), runs the startup rescan (changes made
  while the agent was down), then serves rescans: after an inotify overflow, after one of our
  batches was dropped by a full pipeline queue, periodically for directories inotify could not
  watch, and the scheduled deep scan. It also persists what was reported (`observed.fim`).
- `fim-realtime`: judges debounced paths against the reference and emits their changes.
- watchdog's observer, emitter and inotify reader threads.

The monitor only assembles its parts, one job each: the reference and its undo
(sentinel.sources.integrity.reference), the baseline it trusts (keeper), realtime watching and
judging (watcher), rescans (rescans), emitting (reporter), counting (stats); scanning and
hashing live in scanner and hashing.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import structlog

from sentinel.core.attribution import NO_PACKAGES, PackageOracle
from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import MetricSpec, Sample
from sentinel.sources.base import Emit, Sight
from sentinel.sources.integrity.baseline import BaselineFiles
from sentinel.sources.integrity.config import IntegrityConfig
from sentinel.sources.integrity.entry import Entry
from sentinel.sources.integrity.keeper import BaselineKeeper
from sentinel.sources.integrity.packages import PackageHolds
from sentinel.sources.integrity.realtime import Debouncer, FimObserver
from sentinel.sources.integrity.reference import Reference
from sentinel.sources.integrity.reporter import Reporter
from sentinel.sources.integrity.rescans import Rescans
from sentinel.sources.integrity.scanner import ScanAborted, Scanner, WatchSet
from sentinel.sources.integrity.stats import METRICS, MonitorStats
from sentinel.sources.integrity.watcher import RealtimeWatcher
from sentinel.sources.sight import private_copies

log = structlog.get_logger("sentinel.integrity")

NAME = "integrity"
TICK = 1.0


class IntegrityCollector:
    """Streaming collector for `[integrity]`."""

    name = NAME
    metrics: Sequence[MetricSpec] = METRICS

    def __init__(
        self,
        config: IntegrityConfig,
        *,
        state_dir: Path,
        clock: Clock = SYSTEM_CLOCK,
        observer_factory: type[FimObserver] = FimObserver,
        packages: PackageOracle = NO_PACKAGES,
    ) -> None:
        self.config = config
        self.clock = clock
        self.files = BaselineFiles(state_dir)
        self.watchset = WatchSet(config.watch, excluded=[state_dir])
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._wake = threading.Event()
        self.scanner = Scanner.for_config(config, excluded=[state_dir], throttled=True, stop=self._stop)
        self.debouncer = Debouncer(config.debounce, config.max_delay)
        self.ref = Reference()
        self.stats = MonitorStats(policies=[w.policy for w in config.watch])
        self.rescans = Rescans(
            scanner=self.scanner,
            watchset=self.watchset,
            reference=self.ref,
            debouncer=self.debouncer,
            stats=self.stats,
            clock=clock,
            report=lambda changes, undo, *, how: self.reporter.report(changes, undo, how=how),
            wake=self._wake,
        )
        self.reporter = Reporter(
            config,
            watchset=self.watchset,
            reference=self.ref,
            stats=self.stats,
            clock=clock,
            request_rescan=self.rescans.request,
        )
        self.holds = PackageHolds(config, oracle=packages, reference=self.ref, clock=clock, wake=self._wake)
        if self.holds.enabled:
            self.reporter.holds = self.holds
            self.rescans.held = self.holds.is_held
        self.keeper = BaselineKeeper(
            config,
            files=self.files,
            scanner=self.scanner,
            watchset=self.watchset,
            reference=self.ref,
            stats=self.stats,
            clock=clock,
            send=self.reporter.send,
            request_rescan=self.rescans.request,
        )
        self.watcher = RealtimeWatcher(
            config,
            files=self.files,
            watchset=self.watchset,
            debouncer=self.debouncer,
            reference=self.ref,
            stats=self.stats,
            reporter=self.reporter,
            rescans=self.rescans,
            baseline_changed=self.keeper.file_changed,
            clock=clock,
            observer_factory=observer_factory,
        )
        self._threads: list[threading.Thread] = []
        self._next_deep = self._next_fallback = 0.0
        self._last_turn: float | None = None  # wall time the scan thread last finished a turn
        self._busy = False  # in a turn now (a deep scan may take long: it is running, not stalled)
        self._blind = ""  # why it cannot see what it should watch

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, emit: Emit) -> None:
        """Start the scan and realtime threads (the baseline is loaded on the scan thread)."""
        if self.config.drill_dir is not None:
            with contextlib.suppress(OSError):  # read-only system: the installer creates it instead
                self.config.drill_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.reporter.emit = emit
        self._stop.clear()
        private = private_copies(str(w.path) for w in self.config.watch)
        if private:
            self._blind = (
                f"{', '.join(private)}: this service's private copies (PrivateTmp=yes), not the host's"
            )
            log.warning("detector_blind", detector=NAME, reason=self._blind)
        threads = (
            ("fim-scan", self._scan_loop),
            ("fim-realtime", lambda: self.watcher.run(self._ready, self._stop)),
        )
        for name, target in threads:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop watching, finish the current batch, persist what was reported, join every thread."""
        self._stop.set()
        self._wake.set()
        self.debouncer.wake()
        for thread in self._threads:
            thread.join(10)
        self._threads = []
        self.watcher.close()
        self.keeper.flush_observed(force=True)

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Block until the baseline is loaded and the startup scan is done (tests, bench)."""
        return self._ready.wait(timeout)

    # -- what others call ---------------------------------------------------------------------

    def request_rescan(self, reason: str, delay: float = 0.0) -> None:
        """Ask the scan thread for a quick rescan of every tree."""
        self.rescans.request(reason, delay)

    def current(self) -> Iterable[Sample]:
        """The monitor's own gauges and counters, read at scrape time."""
        with self.ref.lock:
            watched = len(self.ref.table)
            valid, baseline = self.keeper.valid, self.keeper.baseline
        samples = self.stats.samples(
            watched=watched,
            unwatched=len(self.watcher.unwatched),
            valid=valid,
            digest=baseline.digest if baseline is not None else None,
            pending=len(self.debouncer),
            held=self.holds.count(),
        )
        return [*samples, Sample.of("sentinel_detector_up", 1 if self.sight().up else 0, detector=NAME)]

    def sight(self) -> Sight:
        """Blind when its watched trees are private copies or a monitor thread died; when the
        scan thread last finished a turn (its last run, for /metrics and status)."""
        reason = self._blind
        if not reason and self._threads and not all(t.is_alive() for t in self._threads):
            reason = "a monitor thread stopped (see the log)"
        return Sight(not reason, reason, self.clock.time() if self._busy else self._last_turn)

    @property
    def reference(self) -> dict[str, Entry]:
        """A copy of the reference (tests)."""
        with self.ref.lock:
            return dict(self.ref.table)

    @property
    def overflows(self) -> int:
        """inotify overflows seen."""
        return self.stats.overflows

    @property
    def unwatched(self) -> dict[str, str]:
        """Directories inotify could not watch, with the error."""
        return self.watcher.unwatched

    # -- the scan thread ----------------------------------------------------------------------

    def _scan_loop(self) -> None:
        self._busy = True
        try:
            if self.config.realtime:
                self.watcher.arm()
            scanned = self.keeper.load_reference()
            if self.config.startup_scan != "off" and self.keeper.baseline is not None and not scanned:
                self.rescans.run("startup", deep=self.config.startup_scan == "deep")
        except ScanAborted:
            return
        except Exception:  # contained: a broken start must not kill the agent; say so loudly
            log.exception("fim_start_failed")
        finally:
            self._ready.set()
            self._last_turn, self._busy = self.clock.time(), False
        self._next_deep = time.monotonic() + self.config.scan.deep_interval
        self._next_fallback = time.monotonic() + self.config.scan.fallback_interval
        while not self._stop.is_set():
            self._wake.wait(TICK)
            self._wake.clear()
            if self._stop.is_set():
                break
            self._busy = True
            try:
                self._housekeeping(time.monotonic())
            except ScanAborted:
                break
            except Exception:
                log.exception("fim_scan_loop_error")
            finally:
                self._last_turn, self._busy = self.clock.time(), False

    def _housekeeping(self, now: float) -> None:
        """One turn of the scan thread: requested rescans, schedules, unsent events, persistence."""
        self.watcher.check_reader()
        for reason in self.rescans.due(now):
            self.rescans.run(reason, deep=False)
        if now >= self._next_deep:
            self._next_deep = now + self.config.scan.deep_interval
            self.rescans.run("deep", deep=True)
        fallback = self.watcher.fallback_roots()
        if fallback and now >= self._next_fallback:
            self._next_fallback = now + self.config.scan.fallback_interval
            self.rescans.run("fallback", deep=False, roots=fallback)
        released = self.holds.due()
        if released:
            self.watcher.rejudge(released)
            self.holds.released(released)
        self.reporter.send_unsent()
        self.reporter.tick()
        self.keeper.flush_observed()
