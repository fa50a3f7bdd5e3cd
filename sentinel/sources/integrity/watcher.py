"""The monitor in real time: inotify watches on every tree (through watchdog), and the judging of
each debounced path against the reference.

A tree inotify cannot watch (a missing root, the watch limit) is scanned on the fallback schedule
instead; an inotify overflow or a dead reader thread means a rescan, since events were lost.
"""

# ruff: noqa: PTH115, PTH120 - str paths on purpose: a Path per file costs more than the syscall

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable

import structlog

from sentinel.core.clock import Clock
from sentinel.core.model import Event, freeze_fields
from sentinel.sources.integrity.baseline import BaselineFiles
from sentinel.sources.integrity.changes import Change
from sentinel.sources.integrity.config import IntegrityConfig, WatchConfig
from sentinel.sources.integrity.entry import Entry, judge, xattr_digest
from sentinel.sources.integrity.hashing import hash_file
from sentinel.sources.integrity.realtime import EVENT_FILTER, LIMIT_ERRORS, Debouncer, FimObserver, Handler
from sentinel.sources.integrity.reference import Reference, Undo
from sentinel.sources.integrity.reporter import Reporter
from sentinel.sources.integrity.rescans import Rescans
from sentinel.sources.integrity.scanner import ScanAborted, Scanner, ScanStats, WatchSet
from sentinel.sources.integrity.stats import MonitorStats

log = structlog.get_logger("sentinel.integrity")


class RealtimeWatcher:
    """Arms the watches, and judges what they report (its own thread, `run`)."""

    def __init__(
        self,
        config: IntegrityConfig,
        *,
        files: BaselineFiles,
        watchset: WatchSet,
        debouncer: Debouncer,
        reference: Reference,
        stats: MonitorStats,
        reporter: Reporter,
        rescans: Rescans,
        baseline_changed: Callable[[], None],
        clock: Clock,
        observer_factory: type[FimObserver],
    ) -> None:
        self.config = config
        self.files = files
        self.watchset = watchset
        self.debouncer = debouncer
        self.ref = reference
        self.stats = stats
        self.reporter = reporter
        self.rescans = rescans
        self.baseline_changed = baseline_changed
        self.clock = clock
        self._observer_factory = observer_factory
        self.observer: FimObserver | None = None
        self._lock = threading.Lock()  # unwatched and scan_only (watchdog's thread writes them too)
        self._unwatched: dict[str, str] = {}
        self._watch_limit_reported = False
        # trees without inotify (realtime = false): checked on the fallback schedule
        self._scan_only = [str(w.path) for w in config.watch if not (w.realtime and config.realtime)]

    @property
    def unwatched(self) -> dict[str, str]:
        """Directories inotify could not watch, with the error."""
        with self._lock:
            return dict(self._unwatched)

    def fallback_roots(self) -> list[str]:
        """What the fallback schedule scans: unwatchable directories and scan-only trees."""
        with self._lock:
            return sorted({*self._unwatched, *self._scan_only})

    # -- the watches --------------------------------------------------------------------------

    def arm(self) -> None:
        """Start the observer and watch every root (a failure is an unwatched path, not a crash)."""
        observer = self._observer_factory(self._overflowed, self._watch_failed)
        observer.start()
        self.observer = observer
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

    def close(self) -> None:
        """Stop watching."""
        if self.observer is not None:
            self.observer.close()
            self.observer = None

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
        overflows = self.stats.overflowed()
        log.warning("fim_inotify_overflow", overflows=overflows)
        self.rescans.request("overflow")

    def _watch_failed(self, path: str, error: str) -> None:
        with self._lock:
            first = not self._unwatched
            self._unwatched[path] = error
        if first:
            log.error("fim_watch_limit", path=path, error=error)
            self.rescans.request("fallback", 0.0)
        if first and not self._watch_limit_reported:
            self._watch_limit_reported = True
            fields = freeze_fields({"error": error, "sample_path": path})
            self.reporter.keep(Event("fim", "watch_limit", "inotify", self.clock.time(), fields))
            self.rescans.wake.set()

    def check_reader(self) -> None:
        """If the inotify reader died, events would stop silently: rearm and rescan."""
        observer = self.observer
        if observer is None or (observer.is_alive() and observer.reader_alive):
            return
        log.error("fim_inotify_reader_died")
        observer.close()
        self.observer = None
        self.arm()
        self.rescans.request("reader_restart")

    def _is_special(self, path: str) -> bool:
        return path.startswith(str(self.files.directory) + "/")

    # -- judging ------------------------------------------------------------------------------

    def run(self, ready: threading.Event, stop: threading.Event) -> None:
        """The realtime thread: once the reference is ready, judge every debounced batch."""
        ready.wait()
        while not stop.is_set():
            batch = self.debouncer.take(stop)
            if batch is None:
                continue
            paths, renames = batch
            try:
                self._judge_batch(paths, renames)
            except ScanAborted:
                return
            except Exception:
                log.exception("fim_realtime_error")
                self.rescans.request("overflow")  # whatever went wrong, a rescan reconciles it
            finally:
                self.debouncer.done()

    def _judge_batch(self, paths: list[str], renames: list[tuple[str, str]], how: str = "realtime") -> None:
        if any(p in (str(self.files.baseline), str(self.files.key)) for p in paths):
            self.baseline_changed()
        paths = [p for p in paths if not self._is_special(p)]
        holds = self.reporter.holds
        if holds is not None and how == "realtime":  # held paths stay held until released
            paths = [p for p in paths if not holds.is_held(p)]
            renames = [(s, d) for s, d in renames if not holds.is_held(s) and not holds.is_held(d)]
        changes: list[Change] = []
        undo = Undo()
        subtrees: list[str] = []
        with self.ref.lock:
            for src, dest in renames:
                changes += self._rename(src, dest, undo, paths)
        # deepest first: a removed directory's children are judged before the directory
        observed = [(p, self._observe(p)) for p in sorted(set(paths), key=len, reverse=True)]
        now = time.monotonic()
        with self.ref.lock:
            for path, new in observed:
                changes += self._judge_path(path, new, undo, subtrees)
                self.ref.stamps[path] = now
        self.reporter.report(changes, undo, how=how)
        for root in subtrees:  # a directory created or moved in: what it brought along
            self.rescans.run("new_directory", deep=False, roots=[root])

    def rejudge(self, paths: list[str]) -> None:
        """Judge paths again now (held ones, once their package operation settled)."""
        self._judge_batch(paths, [], how="package")

    def _observe(self, path: str) -> Entry | None:
        """The path's state now (hashed only when its stat moved), or None when gone or unwatched."""
        try:
            st = os.lstat(path)
        except OSError:
            return None
        watch = self.watchset.wants(path, is_dir=stat.S_ISDIR(st.st_mode))
        if watch is None:
            return None
        followed = Scanner.follow(path, st, watch, ScanStats(), self.watchset)  # as the scans record it
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
            with self.ref.lock:
                old = self.ref.table.get(path)
            if old is not None and old.sha256 and old.same_stat(entry):
                sha = old.sha256
            else:
                stamp = (entry.size, entry.mtime_ns, entry.ctime_ns, entry.inode)
                scan = self.config.scan
                content = os.path.realpath(path) if watch.follow_symlinks else path
                result = hash_file(content, buffer=scan.buffer, retries=scan.retries, expect=stamp)
                sha = result.sha256
                if result.problem:
                    self.stats.skip(result.problem)
        return entry.with_digests(sha, xattrs)

    def _judge_path(self, path: str, new: Entry | None, undo: Undo, subtrees: list[str]) -> list[Change]:
        """Compare one path with the reference (lock held), apply the result, return the changes."""
        table = self.ref.table
        old = table.get(path)
        if new is None:
            if old is None:
                return []
            out = []
            if old.type == "dir":  # moved out or removed: what was below it is gone too
                for child in [p for p in table if p.startswith(path + "/")]:
                    out.append(self._deleted(child, table[child]))
            out.append(self._deleted(path, old))
            for change in out:
                self.ref.apply(change, undo)
            return [c for c in out if c.policy]
        watch = self.watchset.resolve(path)
        assert watch is not None  # _observe returns None for unwatched paths
        if old is None:
            change = Change(path, "created", watch.policy, None, new)
            self.ref.apply(change, undo)
            if new.type == "dir" and watch.recursive:
                subtrees.append(path)
            return [change]
        verdict = judge(old, new, watch.checks, watch.policy)
        if verdict is None:
            if new != old:  # e.g. a touch, or a log that grew: remember, report nothing
                self.ref.keep(path, new)
            return []
        change = Change(path, verdict[0], watch.policy, old, new, tuple(verdict[1]))
        self.ref.apply(change, undo)
        return [change]

    def _deleted(self, path: str, old: Entry) -> Change:
        watch = self.watchset.resolve(path)
        return Change(path, "deleted", watch.policy if watch is not None else "", old, None)

    def _rename(self, src: str, dest: str, undo: Undo, paths: list[str]) -> list[Change]:
        """A rename inside the watched trees (lock held): one `renamed` change; dest judged after."""
        table = self.ref.table
        old = table.get(src)
        watch = self.watchset.resolve(src)
        if old is None or watch is None:
            paths.append(dest)
            return []
        target_known = dest in table
        change = Change(src, "renamed", watch.policy, old, old, ("path",), to=dest)
        undo.remember(src, table, self.ref.observed)
        table.pop(src, None)
        self.ref.observed[src], self.ref.dirty = None, True
        if not target_known and self.watchset.resolve(dest) is not None:
            undo.remember(dest, table, self.ref.observed)
            table[dest] = old  # dest is judged next against what was renamed onto it
        paths.append(dest)
        return [change]
