"""The monitor's trust in its baseline: load and verify it at start (with what was already
reported), take it on a first start, notice it being replaced, and persist what was reported.

A baseline that fails verification, or a missing key, is an event (`baseline_tampered`); the
monitor then still reports changes from now on, against what the trees hold now.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from sentinel.core.clock import Clock
from sentinel.core.model import Event
from sentinel.sources.integrity.baseline import Baseline, BaselineError, BaselineFiles, tamper_event
from sentinel.sources.integrity.config import IntegrityConfig
from sentinel.sources.integrity.reference import Reference, Undo
from sentinel.sources.integrity.scanner import Scanner, ScanStats, WatchSet, release_memory
from sentinel.sources.integrity.stats import MonitorStats
from sentinel.sources.integrity.table import EntryTable

log = structlog.get_logger("sentinel.integrity")

FLUSH_INTERVAL = 5.0  # seconds between writes of observed.fim while changes keep coming

Send = Callable[[list[Event], Undo], None]


class BaselineKeeper:
    """The baseline in use, its key, whether it verifies, and the observed record beside it."""

    def __init__(
        self,
        config: IntegrityConfig,
        *,
        files: BaselineFiles,
        scanner: Scanner,
        watchset: WatchSet,
        reference: Reference,
        stats: MonitorStats,
        clock: Clock,
        send: Send,
        request_rescan: Callable[[str, float], None],
    ) -> None:
        self.config = config
        self.files = files
        self.scanner = scanner
        self.watchset = watchset
        self.ref = reference
        self.stats = stats
        self.clock = clock
        self.send = send
        self.request_rescan = request_rescan
        self.baseline: Baseline | None = None
        self.key: bytes | None = None
        self.valid = False
        self._flushed_at = 0.0

    def load_reference(self) -> bool:
        """Baseline (+ what was already reported), or a tamper event and an untrusted scan.

        True when the reference was just scanned from disk (no startup rescan needed).
        """
        first_start = not self.files.baseline.exists() and not self.files.has_key()
        if first_start and self.config.auto_init:
            self._initialise()
            return True
        if first_start:  # never taken (auto_init off): not tampering, but nothing to trust yet
            log.warning("fim_no_baseline", hint="take one with `sentinel baseline init --by NAME`")
            self._untrusted_reference()
            return True
        try:
            key = self.files.read_key()
            baseline = self.files.load("baseline", key)
        except BaselineError as exc:
            self.tampered(exc.problem, str(exc))
            self._untrusted_reference()
            return True
        self.key, self.baseline, self.valid = key, baseline, True
        reference = baseline.present()
        baseline.entries = {}  # the reference holds them; the baseline keeps its metadata
        self._apply_observed(reference, key, baseline.digest)
        with self.ref.lock:
            self.ref.table = reference.filtered(self._watched)
            self.ref.adopt_roots = set(self.watchset.roots) - {r for r, _ in baseline.roots}
        log.info("fim_baseline_loaded", entries=len(self.ref.table), digest=baseline.digest[:16])
        return False

    def _apply_observed(self, reference: EntryTable, key: bytes, digest: str) -> None:
        try:
            observed = self.files.load("observed", key)
        except BaselineError as exc:
            if exc.problem != "missing":
                self.tampered(exc.problem, f"observed record: {exc}")
            return
        if observed.base_digest != digest:  # left over from before a new baseline
            return
        for path, entry in observed.entries.items():
            if entry is None:
                reference.pop(path, None)
            else:
                reference[path] = entry
        self.ref.observed = dict(observed.entries)

    def _initialise(self) -> None:
        """First start on this terminal: take the baseline silently (like `baseline init`)."""
        key = self.files.create_key()
        stats = ScanStats()
        entries = self.scanner.scan(deep=True, stats=stats)
        baseline = Baseline(entries, self.clock.time(), roots=self._roots())
        self.files.write(baseline, key)
        baseline.entries = {}
        self.stats.scanned("deep", stats, self.clock.time())
        with self.ref.lock:
            self.key, self.baseline, self.valid, self.ref.table = key, baseline, True, entries
        release_memory()
        log.info("fim_baseline_created", entries=len(entries), digest=baseline.digest[:16])

    def _untrusted_reference(self) -> None:
        """No trustworthy baseline: still report changes from now on, against what is there now."""
        stats = ScanStats()
        entries = self.scanner.scan(deep=True, stats=stats)
        self.stats.scanned("deep", stats, self.clock.time())
        with self.ref.lock:
            self.ref.table, self.valid, self.baseline = entries, False, None

    def tampered(self, problem: str, detail: str) -> None:
        """The baseline (or its key, or the observed record) failed verification: say so."""
        with self.ref.lock:
            self.valid = False
        log.error("fim_baseline_invalid", problem=problem, detail=detail)
        self.send([tamper_event(self.files, problem, detail, self.clock.time())], Undo())

    def _watched(self, path: str) -> bool:
        """Whether the current config watches `path` (a baseline may hold paths no longer watched)."""
        return self.watchset.resolve(path) is not None

    def _roots(self) -> list[tuple[str, str]]:
        return [(str(w.path), w.policy) for w in self.config.watch]

    def file_changed(self) -> None:
        """The baseline or key changed on disk: a legitimate update verifies, anything else is tampering."""
        try:
            key = self.files.read_key()
            digest = self.files.verify("baseline", key)
            with self.ref.lock:
                if self.baseline is not None and digest == self.baseline.digest:
                    return  # our own first baseline, or the same one written again
            baseline = self.files.load("baseline", key)
        except BaselineError as exc:
            self.tampered(exc.problem, str(exc))
            return
        log.info("fim_baseline_reloaded", digest=baseline.digest[:16], entries=len(baseline.entries))
        with self.ref.lock:
            self.key, self.baseline, self.valid = key, baseline, True
            self.ref.table = baseline.present().filtered(self._watched)
            baseline.entries = {}  # the reference holds them; the baseline keeps its metadata
            self.ref.observed, self.ref.dirty = {}, False
            self.ref.adopt_roots = set()
        self.files.remove_observed()
        self.request_rescan("baseline_reload", 0.0)

    def flush_observed(self, *, force: bool = False) -> None:
        """Persist what was reported since the baseline (signed), at most every FLUSH_INTERVAL."""
        with self.ref.lock:
            if not self.ref.dirty or self.baseline is None or self.key is None:
                return
            if not force and time.monotonic() - self._flushed_at < FLUSH_INTERVAL:
                return
            record = Baseline(
                dict(self.ref.observed), self.clock.time(), kind="observed", base_digest=self.baseline.digest
            )
            key = self.key
            self.ref.dirty = False
            self._flushed_at = time.monotonic()
        try:
            self.files.write(record, key)
        except OSError as exc:
            log.error("fim_observed_write_failed", error=str(exc))
            with self.ref.lock:
                self.ref.dirty = True
