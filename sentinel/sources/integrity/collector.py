"""The file integrity monitor as a streaming collector: baseline, realtime, rescans, no silent loss.

Threads (all stopped and joined by `stop()`):

- `fim-scan`: arms the inotify watches, loads and verifies the signed baseline (a tampered one
  or a missing key is an event, `baseline_tampered`), runs the startup rescan (changes made
  while the agent was down), then serves rescans: after an inotify overflow, after one of our
  batches was dropped by a full pipeline queue, periodically for directories inotify could not
  watch, and the scheduled deep scan. It also persists what was reported (`observed.fim`).
- `fim-realtime`: judges debounced paths against the reference and emits their changes.
- watchdog's observer, emitter and inotify reader threads.

The *reference* is the baseline plus the changes already reported. Every change is applied to
it only together with its event; if the pipeline drops the batch, the reference is rolled back
and a rescan finds the changes again — a change can be late, never lost.
"""

# ruff: noqa: PTH115, PTH120 - str paths on purpose: a Path per file costs more than the syscall

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import Event, MetricSpec, Sample, freeze_fields
from sentinel.sources.base import Emit
from sentinel.sources.integrity.baseline import Baseline, BaselineError, BaselineFiles, tamper_event
from sentinel.sources.integrity.changes import Change, MassDetector, compare
from sentinel.sources.integrity.config import IntegrityConfig, WatchConfig
from sentinel.sources.integrity.entry import Entry, judge, xattr_digest
from sentinel.sources.integrity.hashing import hash_file
from sentinel.sources.integrity.realtime import EVENT_FILTER, LIMIT_ERRORS, Debouncer, FimObserver, Handler
from sentinel.sources.integrity.scanner import SKIP_REASONS, ScanAborted, Scanner, ScanStats, WatchSet
from sentinel.sources.integrity.table import EntryTable

log = structlog.get_logger("sentinel.integrity")

NAME = "integrity"
EMIT_CHUNK = 500
FLUSH_INTERVAL = 5.0  # seconds between writes of observed.fim while changes keep coming
DROP_RETRY = 1.0  # seconds to let a full queue drain before the rescan that recovers a drop
TICK = 1.0

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


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to hand back this way
        return None
    return trim


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Give the heap a scan left behind back to the system.

    A full scan allocates and frees hundreds of thousands of small objects; glibc keeps the freed
    arenas, so the agent's RSS would stay at the scan's peak for good. malloc_trim returns them.
    """
    if _TRIM is not None:
        _TRIM(0)


@dataclass
class _Undo:
    """How to put the reference, and the record of what was reported, back if the batch carrying
    these changes is dropped: a change rolled out of the reference but left in `observed.fim`
    would be taken as reported at the next start, and never be."""

    previous: list[tuple[str, Entry | None]] = dataclasses.field(default_factory=list)
    observed: dict[str, Entry | None] = dataclasses.field(default_factory=dict)  # first value seen
    unobserved: set[str] = dataclasses.field(default_factory=set)  # paths observed had no value for

    def remember(self, path: str, reference: EntryTable, observed: dict[str, Entry | None]) -> None:
        """Note `path`'s state before it changes (call before every change to it)."""
        self.previous.append((path, reference.get(path)))
        if path in self.observed or path in self.unobserved:
            return
        if path in observed:
            self.observed[path] = observed[path]
        else:
            self.unobserved.add(path)

    def roll_back(self, reference: EntryTable, observed: dict[str, Entry | None]) -> None:
        """Put both back as they were before the first remembered change."""
        for path, entry in reversed(self.previous):
            if entry is None:
                reference.pop(path, None)
            else:
                reference[path] = entry
        observed.update(self.observed)
        for path in self.unobserved:
            observed.pop(path, None)


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
    ) -> None:
        if config.drill_dir is not None and all(w.path != config.drill_dir for w in config.watch):
            drill_watch = WatchConfig(path=config.drill_dir, policy="critical")
            config = dataclasses.replace(config, watch=(*config.watch, drill_watch))
        self._drill_prefix = str(config.drill_dir).rstrip("/") + "/" if config.drill_dir else None
        self.config = config
        self.clock = clock
        self.files = BaselineFiles(state_dir)
        self._observer_factory = observer_factory
        self.watchset = WatchSet(config.watch, excluded=[state_dir])
        self._stop = threading.Event()
        self.scanner = Scanner.for_config(config, excluded=[state_dir], throttled=True, stop=self._stop)
        self.debouncer = Debouncer(config.debounce, config.max_delay)
        self.mass = MassDetector(config.mass_modification)
        self._emit: Emit | None = None
        self._lock = threading.RLock()  # reference, observed, stamps, counters
        self._ref = EntryTable()  # the reference every change is judged against (compact)
        self._observed: dict[str, Entry | None] = {}
        self._stamps: dict[str, float] = {}
        self._adopt_roots: set[str] = set()
        self._baseline: Baseline | None = None
        self._key: bytes | None = None
        self._valid = False
        self._ready = threading.Event()
        self._wake = threading.Event()
        self._rescans: dict[str, float] = {}  # reason -> earliest monotonic time to run it
        self._observer: FimObserver | None = None
        self._unwatched: dict[str, str] = {}
        self._watch_limit_reported = False
        self._dirty = False
        self._dropped = threading.local()
        self._unsent: list[Event] = []
        self._changes: Counter[tuple[str, str]] = Counter()
        self._skipped: Counter[str] = Counter(dict.fromkeys(SKIP_REASONS, 0))
        self._rescan_counts: Counter[str] = Counter(dict.fromkeys(SCAN_REASONS, 0))
        self._overflows = 0
        self._scan_duration: dict[str, float] = {}
        self._scan_time: dict[str, float] = {}
        self._threads: list[threading.Thread] = []
        self._flushed_at = 0.0
        self._next_deep = self._next_fallback = 0.0
        # trees without inotify (realtime = false): checked on the fallback schedule
        self._scan_only = [str(w.path) for w in config.watch if not (w.realtime and config.realtime)]

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, emit: Emit) -> None:
        """Start the scan and realtime threads (the baseline is loaded on the scan thread)."""
        if self.config.drill_dir is not None:
            with contextlib.suppress(OSError):  # read-only system: the installer creates it instead
                self.config.drill_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._emit = emit
        self._stop.clear()
        for name, target in (("fim-scan", self._scan_loop), ("fim-realtime", self._realtime_loop)):
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
        if self._observer is not None:
            self._observer.close()
            self._observer = None
        self._flush_observed(force=True)

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Block until the baseline is loaded and the startup scan is done (tests, bench)."""
        return self._ready.wait(timeout)

    # -- what others call ---------------------------------------------------------------------

    def on_queue_drop(self, collector: str) -> None:
        """Pipeline callback: a batch was dropped because the queue was full (see _send)."""
        if collector == self.name:
            self._dropped.flag = True

    def request_rescan(self, reason: str, delay: float = 0.0) -> None:
        """Ask the scan thread for a quick rescan of every tree."""
        with self._lock:
            due = time.monotonic() + delay
            self._rescans[reason] = min(self._rescans.get(reason, due), due)
        self._wake.set()

    def current(self) -> Iterable[Sample]:
        """The monitor's own gauges and counters, read at scrape time."""
        with self._lock:
            out = [
                Sample.of("sentinel_fim_watched_files", len(self._ref)),
                Sample.of("sentinel_fim_overflows_total", self._overflows),
                Sample.of("sentinel_fim_unwatched_paths", len(self._unwatched)),
                Sample.of("sentinel_fim_baseline_valid", 1 if self._valid else 0),
                Sample.of("sentinel_fim_pending_paths", len(self.debouncer)),
            ]
            if self._baseline is not None:
                out.append(Sample.of("sentinel_fim_baseline_info", 1, digest=self._baseline.digest[:16]))
            out += [
                Sample.of("sentinel_fim_changes_total", n, kind=k, policy=p)
                for (k, p), n in self._changes.items()
            ]
            out += [Sample.of("sentinel_fim_skipped_total", n, reason=r) for r, n in self._skipped.items()]
            out += [
                Sample.of("sentinel_fim_rescans_total", n, reason=r) for r, n in self._rescan_counts.items()
            ]
            for mode, seconds in self._scan_duration.items():
                out.append(Sample.of("sentinel_fim_scan_duration_seconds", seconds, mode=mode))
                out.append(
                    Sample.of("sentinel_fim_last_scan_timestamp_seconds", self._scan_time[mode], mode=mode)
                )
        return out

    @property
    def reference(self) -> dict[str, Entry]:
        """A copy of the reference (tests)."""
        with self._lock:
            return dict(self._ref)

    @property
    def overflows(self) -> int:
        """inotify overflows seen."""
        with self._lock:
            return self._overflows

    @property
    def unwatched(self) -> dict[str, str]:
        """Directories inotify could not watch, with the error."""
        with self._lock:
            return dict(self._unwatched)

    # -- the scan thread ----------------------------------------------------------------------

    def _scan_loop(self) -> None:
        try:
            if self.config.realtime:
                self._arm()
            scanned = self._load_reference()
            if self.config.startup_scan != "off" and self._baseline is not None and not scanned:
                self._rescan("startup", deep=self.config.startup_scan == "deep")
        except ScanAborted:
            return
        except Exception:  # contained: a broken start must not kill the agent; say so loudly
            log.exception("fim_start_failed")
        finally:
            self._ready.set()
        self._next_deep = time.monotonic() + self.config.scan.deep_interval
        self._next_fallback = time.monotonic() + self.config.scan.fallback_interval
        while not self._stop.is_set():
            self._wake.wait(TICK)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self._housekeeping(time.monotonic())
            except ScanAborted:
                break
            except Exception:
                log.exception("fim_scan_loop_error")

    def _housekeeping(self, now: float) -> None:
        """One turn of the scan thread: requested rescans, schedules, unsent events, persistence."""
        self._check_reader()
        for reason in self._due_rescans(now):
            self._rescan(reason, deep=False)
        if now >= self._next_deep:
            self._next_deep = now + self.config.scan.deep_interval
            self._rescan("deep", deep=True)
        if (self._unwatched or self._scan_only) and now >= self._next_fallback:
            self._next_fallback = now + self.config.scan.fallback_interval
            self._rescan("fallback", deep=False, roots=sorted({*self.unwatched, *self._scan_only}))
        self._send_unsent()
        with self._lock:
            ended = self.mass.tick(self.clock.time())
        if ended is not None:
            self._send([ended], _Undo())
        self._flush_observed()

    def _due_rescans(self, now: float) -> list[str]:
        with self._lock:
            due = [r for r, t in self._rescans.items() if t <= now]
            for reason in due:
                del self._rescans[reason]
        return due[:1] if due else []  # one quick rescan covers every reason due now

    # -- baseline -----------------------------------------------------------------------------

    def _load_reference(self) -> bool:
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
            self._tampered(exc.problem, str(exc))
            self._untrusted_reference()
            return True
        self._key, self._baseline, self._valid = key, baseline, True
        reference = baseline.present()
        baseline.entries = {}  # the reference holds them; the baseline keeps its metadata
        self._apply_observed(reference, key, baseline.digest)
        with self._lock:
            self._ref = reference.filtered(self._watched)
            self._adopt_roots = set(self.watchset.roots) - {r for r, _ in baseline.roots}
        log.info("fim_baseline_loaded", entries=len(self._ref), digest=baseline.digest[:16])
        return False

    def _apply_observed(self, reference: EntryTable, key: bytes, digest: str) -> None:
        try:
            observed = self.files.load("observed", key)
        except BaselineError as exc:
            if exc.problem != "missing":
                self._tampered(exc.problem, f"observed record: {exc}")
            return
        if observed.base_digest != digest:  # left over from before a new baseline
            return
        for path, entry in observed.entries.items():
            if entry is None:
                reference.pop(path, None)
            else:
                reference[path] = entry
        self._observed = dict(observed.entries)

    def _initialise(self) -> None:
        """First start on this terminal: take the baseline silently (like `baseline init`)."""
        key = self.files.create_key()
        stats = ScanStats()
        entries = self.scanner.scan(deep=True, stats=stats)
        baseline = Baseline(entries, self.clock.time(), roots=self._roots())
        self.files.write(baseline, key)
        baseline.entries = {}
        self._count_scan("deep", stats)
        with self._lock:
            self._key, self._baseline, self._valid, self._ref = key, baseline, True, entries
        release_memory()
        log.info("fim_baseline_created", entries=len(entries), digest=baseline.digest[:16])

    def _untrusted_reference(self) -> None:
        """No trustworthy baseline: still report changes from now on, against what is there now."""
        stats = ScanStats()
        entries = self.scanner.scan(deep=True, stats=stats)
        self._count_scan("deep", stats)
        with self._lock:
            self._ref, self._valid, self._baseline = entries, False, None

    def _tampered(self, problem: str, detail: str) -> None:
        with self._lock:
            self._valid = False
        log.error("fim_baseline_invalid", problem=problem, detail=detail)
        self._send([tamper_event(self.files, problem, detail, self.clock.time())], _Undo())

    def _watched(self, path: str) -> bool:
        """Whether the current config watches `path` (a baseline may hold paths no longer watched)."""
        return self.watchset.resolve(path) is not None

    def _roots(self) -> list[tuple[str, str]]:
        return [(str(w.path), w.policy) for w in self.config.watch]

    def _baseline_file_event(self) -> None:
        """The baseline or key changed on disk: a legitimate update verifies, anything else is tampering."""
        try:
            key = self.files.read_key()
            digest = self.files.verify("baseline", key)
            with self._lock:
                if self._baseline is not None and digest == self._baseline.digest:
                    return  # our own first baseline, or the same one written again
            baseline = self.files.load("baseline", key)
        except BaselineError as exc:
            self._tampered(exc.problem, str(exc))
            return
        log.info("fim_baseline_reloaded", digest=baseline.digest[:16], entries=len(baseline.entries))
        with self._lock:
            self._key, self._baseline, self._valid = key, baseline, True
            self._ref = baseline.present().filtered(self._watched)
            baseline.entries = {}  # the reference holds them; the baseline keeps its metadata
            self._observed, self._dirty = {}, False
            self._adopt_roots = set()
        self.files.remove_observed()
        self.request_rescan("baseline_reload")

    def _flush_observed(self, *, force: bool = False) -> None:
        """Persist what was reported since the baseline (signed), at most every FLUSH_INTERVAL."""
        with self._lock:
            if not self._dirty or self._baseline is None or self._key is None:
                return
            if not force and time.monotonic() - self._flushed_at < FLUSH_INTERVAL:
                return
            record = Baseline(
                dict(self._observed), self.clock.time(), kind="observed", base_digest=self._baseline.digest
            )
            key = self._key
            self._dirty = False
            self._flushed_at = time.monotonic()
        try:
            self.files.write(record, key)
        except OSError as exc:
            log.error("fim_observed_write_failed", error=str(exc))
            with self._lock:
                self._dirty = True

    # -- rescans ------------------------------------------------------------------------------

    def _rescan(self, reason: str, *, deep: bool, roots: Sequence[str] | None = None) -> None:
        started = time.monotonic()
        stats = ScanStats()
        with self._lock:
            self._rescan_counts[reason] += 1
            reference = self._ref
        current = self.scanner.scan(roots=roots, reference=reference, deep=deep, stats=stats)
        if roots is None:

            def in_scope(path: str) -> bool:
                return True

        else:
            prefixes = tuple(roots)

            def in_scope(path: str) -> bool:
                return any(self.watchset.within(path, r) for r in prefixes)

        def skip(path: str) -> bool:
            return self.debouncer.pending(path) or self._stamps.get(path, 0.0) > started

        with self._lock:
            changes = compare(self.watchset, self._ref, current, in_scope, skip)
            changes, undo = self._adopt(changes, reason)
            # the roots this rescan covered are adopted now; later creations there are changes
            self._adopt_roots = {r for r in self._adopt_roots if not in_scope(r)}
            for path in current:  # keep quick-mode stamps (mtime, ctime) current
                if path in self._ref and not current.same(path, self._ref) and not skip(path):
                    self._ref[path] = self._observed[path] = current[path]
                    self._dirty = True
            self._stamps = {p: t for p, t in self._stamps.items() if t > started}
        self._count_scan("deep" if deep else "quick", stats)
        release_memory()
        if changes:
            log.info("fim_rescan_changes", reason=reason, changes=len(changes))
        self._report(changes, undo, how=f"rescan:{reason}")

    def _adopt(self, changes: list[Change], reason: str) -> tuple[list[Change], _Undo]:
        """Apply changes to the reference (caller holds the lock); new roots are adopted silently."""
        undo = _Undo()
        reported: list[Change] = []
        adopted = 0
        for change in changes:
            watch = self.watchset.resolve(change.path)
            if change.kind == "created" and watch is not None and str(watch.path) in self._adopt_roots:
                self._apply(change, _Undo())  # adopted for good: a dropped batch does not undo it
                adopted += 1
                continue
            self._apply(change, undo)
            reported.append(change)
        if adopted:
            log.info("fim_scope_added", paths=adopted, roots=sorted(self._adopt_roots), reason=reason)
        return reported, undo

    def _apply(self, change: Change, undo: _Undo) -> None:
        def put(path: str, entry: Entry | None) -> None:
            undo.remember(path, self._ref, self._observed)
            if entry is None:
                self._ref.pop(path, None)
            else:
                self._ref[path] = entry
            self._observed[path] = entry
            self._dirty = True

        if change.kind == "renamed":
            put(change.path, None)
            put(change.to, change.new)
        else:
            put(change.path, change.new)

    def _count_scan(self, mode: str, stats: ScanStats) -> None:
        with self._lock:
            self._scan_duration[mode] = stats.duration
            self._scan_time[mode] = self.clock.time()
            self._skipped.update(stats.skipped)

    # -- realtime -----------------------------------------------------------------------------

    def _arm(self) -> None:
        """Start the observer and watch every root (a failure is an unwatched path, not a crash)."""
        observer = self._observer_factory(self._overflowed, self._watch_failed)
        observer.start()
        self._observer = observer
        handler = Handler(self.debouncer, self._is_special)
        watched_parents: set[str] = set()
        for watch in self.config.watch:
            if not watch.realtime or watch.policy == "ignore":
                continue
            self._schedule(observer, handler, watch, watched_parents)
        try:
            observer.schedule(handler, str(self.files.directory), recursive=False, event_filter=EVENT_FILTER)
        except OSError:
            self.files.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            observer.schedule(handler, str(self.files.directory), recursive=False, event_filter=EVENT_FILTER)

    def _schedule(
        self, observer: FimObserver, handler: Handler, watch: WatchConfig, parents: set[str]
    ) -> None:
        path = str(watch.path)
        try:
            is_dir = stat.S_ISDIR(os.lstat(path).st_mode)
        except OSError:  # missing: its parent sees it appear, the fallback scans what it then holds
            is_dir = False
            with self._lock:
                self._scan_only.append(path)
        # a single file is watched through its directory, so replacing it by rename is seen too
        target, recursive = (path, watch.recursive) if is_dir else (os.path.dirname(path), False)
        if not is_dir and target in parents:
            return
        parents.add(target)
        try:
            observer.schedule(handler, target, recursive=recursive, event_filter=EVENT_FILTER)
        except OSError as exc:
            if exc.errno in LIMIT_ERRORS:
                self._watch_failed(target, LIMIT_ERRORS[exc.errno])
            else:  # missing or unreadable: checked on the fallback schedule until it appears
                log.warning("fim_watch_unavailable", path=target, error=exc.strerror or str(exc))
                with self._lock:
                    self._scan_only.append(path)

    def _overflowed(self) -> None:
        """inotify dropped events: count, and rescan everything (on the inotify reader thread)."""
        with self._lock:
            self._overflows += 1
        log.warning("fim_inotify_overflow", overflows=self._overflows)
        self.request_rescan("overflow")

    def _watch_failed(self, path: str, error: str) -> None:
        with self._lock:
            first = not self._unwatched
            self._unwatched[path] = error
        if first:
            log.error("fim_watch_limit", path=path, error=error)
            self.request_rescan("fallback", delay=0.0)
        if first and not self._watch_limit_reported:
            self._watch_limit_reported = True
            fields = freeze_fields({"error": error, "sample_path": path})
            with self._lock:  # on watchdog's thread; the scan thread swaps _unsent under the lock
                self._unsent.append(Event("fim", "watch_limit", "inotify", self.clock.time(), fields))
            self._wake.set()

    def _check_reader(self) -> None:
        """If the inotify reader died, events would stop silently: rearm and rescan."""
        observer = self._observer
        if observer is None or (observer.is_alive() and observer.reader_alive):
            return
        log.error("fim_inotify_reader_died")
        observer.close()
        self._observer = None
        self._arm()
        self.request_rescan("reader_restart")

    def _is_special(self, path: str) -> bool:
        return path.startswith(str(self.files.directory) + "/")

    def _realtime_loop(self) -> None:
        self._ready.wait()
        while not self._stop.is_set():
            batch = self.debouncer.take(self._stop)
            if batch is None:
                continue
            paths, renames = batch
            try:
                self._judge_batch(paths, renames)
            except ScanAborted:
                return
            except Exception:
                log.exception("fim_realtime_error")
                self.request_rescan("overflow")  # whatever went wrong, a rescan reconciles it
            finally:
                self.debouncer.done()

    def _judge_batch(self, paths: list[str], renames: list[tuple[str, str]]) -> None:
        if any(p in (str(self.files.baseline), str(self.files.key)) for p in paths):
            self._baseline_file_event()
        paths = [p for p in paths if not self._is_special(p)]
        changes: list[Change] = []
        undo = _Undo()
        subtrees: list[str] = []
        with self._lock:
            for src, dest in renames:
                changes += self._rename(src, dest, undo, paths)
        # deepest first: a removed directory's children are judged before the directory
        observed = [(p, self._observe(p)) for p in sorted(set(paths), key=len, reverse=True)]
        now = time.monotonic()
        with self._lock:
            for path, new in observed:
                changes += self._judge_path(path, new, undo, subtrees)
                self._stamps[path] = now
        self._report(changes, undo, how="realtime")
        for root in subtrees:  # a directory created or moved in: what it brought along
            self._rescan("new_directory", deep=False, roots=[root])

    def _observe(self, path: str) -> Entry | None:
        """The path's state now (hashed only when its stat moved), or None when gone or unwatched."""
        try:
            st = os.lstat(path)
        except OSError:
            return None
        watch = self.watchset.wants(path, is_dir=stat.S_ISDIR(st.st_mode))
        if watch is None:
            return None
        followed = Scanner.follow(path, st, watch, ScanStats())  # recorded as the scans record it
        if followed is None:
            return None
        st = followed
        target = None
        if stat.S_ISLNK(st.st_mode):
            try:
                target = os.readlink(path)
            except OSError:
                return None
        entry = Entry.from_stat(st, target)
        xattrs = xattr_digest(path) if "xattrs" in watch.checks else None
        sha = None
        if entry.type == "file" and watch.hashes:
            with self._lock:
                old = self._ref.get(path)
            if old is not None and old.sha256 and old.same_stat(entry):
                sha = old.sha256
            else:
                stamp = (entry.size, entry.mtime_ns, entry.ctime_ns, entry.inode)
                scan = self.config.scan
                content = os.path.realpath(path) if watch.follow_symlinks else path
                result = hash_file(content, buffer=scan.buffer, retries=scan.retries, expect=stamp)
                sha = result.sha256
                if result.problem:
                    with self._lock:
                        self._skipped[result.problem] += 1
        return entry.with_digests(sha, xattrs)

    def _judge_path(self, path: str, new: Entry | None, undo: _Undo, subtrees: list[str]) -> list[Change]:
        """Compare one path with the reference (lock held), apply the result, return the changes."""
        old = self._ref.get(path)
        if new is None:
            if old is None:
                return []
            out = []
            if old.type == "dir":  # moved out or removed: what was below it is gone too
                for child in [p for p in self._ref if p.startswith(path + "/")]:
                    out.append(self._deleted(child, self._ref[child]))
            out.append(self._deleted(path, old))
            for change in out:
                self._apply(change, undo)
            return [c for c in out if c.policy]
        watch = self.watchset.resolve(path)
        assert watch is not None  # _observe returns None for unwatched paths
        if old is None:
            change = Change(path, "created", watch.policy, None, new)
            self._apply(change, undo)
            if new.type == "dir" and watch.recursive:
                subtrees.append(path)
            return [change]
        verdict = judge(old, new, watch.checks, watch.policy)
        if verdict is None:
            if new != old:  # e.g. a touch, or a log that grew: remember, report nothing
                self._ref[path] = self._observed[path] = new
                self._dirty = True
            return []
        change = Change(path, verdict[0], watch.policy, old, new, tuple(verdict[1]))
        self._apply(change, undo)
        return [change]

    def _deleted(self, path: str, old: Entry) -> Change:
        watch = self.watchset.resolve(path)
        return Change(path, "deleted", watch.policy if watch is not None else "", old, None)

    def _rename(self, src: str, dest: str, undo: _Undo, paths: list[str]) -> list[Change]:
        """A rename inside the watched trees (lock held): one `renamed` change; dest judged after."""
        old = self._ref.get(src)
        watch = self.watchset.resolve(src)
        if old is None or watch is None:
            paths.append(dest)
            return []
        target_known = dest in self._ref
        change = Change(src, "renamed", watch.policy, old, old, ("path",), to=dest)
        undo.remember(src, self._ref, self._observed)
        self._ref.pop(src, None)
        self._observed[src], self._dirty = None, True
        if not target_known and self.watchset.resolve(dest) is not None:
            undo.remember(dest, self._ref, self._observed)
            self._ref[dest] = old  # dest is judged next against what was renamed onto it
        paths.append(dest)
        return [change]

    # -- emitting -----------------------------------------------------------------------------

    def _report(self, changes: list[Change], undo: _Undo, *, how: str) -> None:
        """Emit the changes' events (with the mass-modification detector in between)."""
        if not changes:
            return
        now = self.clock.time()
        events: list[Event] = []
        with self._lock:
            started = self.mass.observe(changes, now)
            burst = self.mass.active
        if started is not None:
            events.append(started)
        for change in changes:
            watch = self.watchset.resolve(change.path)
            checks = watch.checks if watch is not None else None
            in_burst = burst and change.policy in self.config.mass_modification.policies
            event = change.event(now, how=how, checks=checks, burst=in_burst)
            if self._drill_prefix and change.path.startswith(self._drill_prefix):
                event = dataclasses.replace(event, fields=(*event.fields, ("drill", True)))
            events.append(event)
        with self._lock:
            self._changes.update((c.kind, c.policy) for c in changes)
        self._send(events, undo)

    def _send(self, events: list[Event], undo: _Undo) -> None:
        """Emit in chunks; a dropped batch rolls the reference back and schedules the rescan."""
        if self._emit is None or not events:
            return
        dropped = False
        for i in range(0, len(events), EMIT_CHUNK):
            self._dropped.flag = False
            self._emit(events[i : i + EMIT_CHUNK])
            if getattr(self._dropped, "flag", False):
                dropped = True
                with self._lock:
                    self._unsent += [e for e in events[i : i + EMIT_CHUNK] if e.kind not in _PATH_KINDS]
        if dropped:
            with self._lock:
                undo.roll_back(self._ref, self._observed)
                self._dirty = True
                for path, _ in undo.previous:
                    self._stamps.pop(path, None)
            log.warning("fim_batch_dropped", events=len(events))
            self.request_rescan("queue_drop", delay=DROP_RETRY)

    def _send_unsent(self) -> None:
        with self._lock:
            unsent, self._unsent = self._unsent, []
        if unsent:
            self._send(unsent, _Undo())


_PATH_KINDS = frozenset(("created", "deleted", "modified", "attributes", "renamed", "replaced", "truncated"))
