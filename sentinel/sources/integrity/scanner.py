"""Walking the watched trees and hashing them in parallel.

`WatchSet` answers "which watch entry decides about this path" (the most specific one) and
which directories are left out (the agent's own state). `Scanner` walks the trees with
os.scandir (symlinks recorded, not followed unless configured; loops of followed links cut by
(device, inode)), then hashes regular files on `workers` threads — hashlib releases the GIL on
large buffers, so both cores work. Quick mode trusts a recorded hash while (size, mtime, ctime,
inode) are unchanged, as git's index does; deep mode rehashes everything.

Problems with one path are counted (`ScanStats.skipped`), never fatal.
"""

# ruff: noqa: PTH115, PTH116 - str paths on purpose: a Path per file costs more than the syscall

from __future__ import annotations

import ctypes
import os
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from sentinel.sources.integrity.config import IntegrityConfig, WatchConfig
from sentinel.sources.integrity.entry import Entry, xattr_digest
from sentinel.sources.integrity.hashing import UNLIMITED, Throttle, hash_file
from sentinel.sources.integrity.table import EntryTable

log = structlog.get_logger("sentinel.integrity.scanner")

CHUNK = 256  # files per hashing task: big enough to amortise the pool, small enough to balance
SKIP_REASONS = ("unreadable", "vanished", "special", "unstable", "loop", "outside")


class ScanAborted(Exception):
    """The scan was stopped (agent shutting down)."""


class WatchSet:
    """The watch entries of a config, resolved per path."""

    def __init__(self, watches: Iterable[WatchConfig], *, excluded: Iterable[Path] = ()) -> None:
        self.watches = tuple(watches)
        self._by_root = {str(w.path): w for w in self.watches}
        self.excluded = tuple(str(p) for p in excluded)
        self._excluded_set = frozenset(self.excluded)
        self._excluded_prefixes = tuple(e.rstrip("/") + "/" for e in self.excluded)
        self._cache: dict[str, WatchConfig | None] = {}  # directory -> entry deciding for its children
        # where followed links may lead: inside a watched tree, as the kernel resolves it
        self._real_roots = tuple(os.path.realpath(r).rstrip("/") + "/" for r in self._by_root)

    def inside(self, target: str) -> bool:
        """Whether the resolved path `target` lies in a watched tree (or is a watched root)."""
        return (target.rstrip("/") + "/").startswith(self._real_roots)

    @property
    def roots(self) -> tuple[str, ...]:
        """Every watched root path."""
        return tuple(self._by_root)

    def is_root(self, path: str) -> bool:
        """Whether `path` is itself a watch entry."""
        return path in self._by_root

    def is_excluded(self, path: str) -> bool:
        """Whether `path` is (inside) a directory the monitor never judges (its own state)."""
        return path in self._excluded_set or path.startswith(self._excluded_prefixes)

    def resolve(self, path: str) -> WatchConfig | None:
        """The watch entry that decides about `path`, or None if unwatched (or ignored)."""
        if path in self._excluded_set:
            return None
        watch = self._by_root.get(path)
        if watch is None:
            watch = self._children_of(path.rsplit("/", 1)[0] or "/")
        elif self.is_excluded(path):
            return None
        if watch is None or watch.policy == "ignore":
            return None
        return watch

    def _children_of(self, directory: str) -> WatchConfig | None:
        """The entry deciding for the entries of `directory`, cached: scans ask once per file."""
        try:
            return self._cache[directory]
        except KeyError:
            pass
        if len(self._cache) > 100_000:  # directories come and go on a long-running agent
            self._cache.clear()
        excluded = self.is_excluded(directory)
        watch = None if excluded else self._by_root.get(directory)
        current = directory
        while watch is None and not excluded and current not in ("", "/"):
            current = current.rsplit("/", 1)[0] or "/"
            found = self._by_root.get(current)
            if found is not None:
                watch = found if found.recursive else None
                break
        self._cache[directory] = watch
        return watch

    def wants(self, path: str, *, is_dir: bool) -> WatchConfig | None:
        """The deciding entry when its globs keep `path`; None otherwise."""
        watch = self.resolve(path)
        if watch is None or not (watch.include or watch.exclude):
            return watch
        if str(watch.path) != path and not watch.selects(path, is_dir=is_dir):
            return None
        return watch

    def within(self, path: str, root: str) -> bool:
        """Whether `path` is `root` or below it."""
        return path == root or path.startswith(root.rstrip("/") + "/")


@dataclass
class ScanStats:
    """What one scan saw."""

    entries: int = 0
    hashed: int = 0
    bytes: int = 0
    duration: float = 0.0
    skipped: Counter[str] = field(default_factory=Counter)
    # watched roots that do not exist here (no /etc/sudoers on this image): nothing was skipped,
    # there is nothing to read; a root that existed in the baseline is a `deleted` change instead
    absent: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "entries": self.entries,
            "hashed": self.hashed,
            "bytes": self.bytes,
            "duration_seconds": round(self.duration, 3),
            "skipped": dict(self.skipped),
            "absent_roots": sorted(self.absent),
        }


class Scanner:
    """Walks and hashes the trees of a WatchSet."""

    def __init__(
        self,
        watchset: WatchSet,
        *,
        workers: int = 2,
        buffer: int = 256 * 1024,
        retries: int = 3,
        throttle: Throttle = UNLIMITED,
        nice: int = 0,
        stop: threading.Event | None = None,
    ) -> None:
        self.watchset = watchset
        self.workers = max(1, workers)
        self.buffer = buffer
        self.retries = retries
        self.throttle = throttle
        self.nice = nice
        self._nice_refused = threading.Event()
        self.stop = stop or threading.Event()
        # a followed link is hashed through its resolved path (hash_file refuses to follow links)
        self._follows = any(w.follow_symlinks for w in watchset.watches)

    @classmethod
    def for_config(
        cls,
        config: IntegrityConfig,
        *,
        excluded: Iterable[Path] = (),
        throttled: bool = False,
        stop: threading.Event | None = None,
    ) -> Scanner:
        """A scanner with the config's workers; agent scans are throttled and niced."""
        stop = stop or threading.Event()
        s = config.scan
        throttle = Throttle(s.cpu_share, s.io_rate, stop) if throttled else UNLIMITED
        return cls(
            WatchSet(config.watch, excluded=excluded),
            workers=s.workers,
            buffer=s.buffer,
            retries=s.retries,
            throttle=throttle,
            nice=s.nice if throttled else 0,
            stop=stop,
        )

    # -- walking ------------------------------------------------------------------------------

    def walk(
        self, roots: Sequence[str] | None = None, stats: ScanStats | None = None
    ) -> Iterator[tuple[str, Entry, WatchConfig]]:
        """(path, entry without digests, deciding entry) for every watched path under `roots`."""
        stats = stats if stats is not None else ScanStats()
        for root in roots if roots is not None else self.watchset.roots:
            yield from self._walk_root(root, stats)

    def _walk_root(self, root: str, stats: ScanStats) -> Iterator[tuple[str, Entry, WatchConfig]]:
        watch = self.watchset.wants(root, is_dir=True)
        if watch is None:
            return
        try:
            st = self.follow(root, os.lstat(root), watch, stats, self.watchset)
        except FileNotFoundError:
            stats.absent.append(root)
            return
        except OSError:
            stats.skipped["unreadable"] += 1
            return
        if st is None:
            return
        yield root, self._entry(root, st, stats), watch
        if not stat.S_ISDIR(st.st_mode):
            return
        seen = {(st.st_dev, st.st_ino)}
        stack = [root]
        while stack:
            if self.stop.is_set():
                raise ScanAborted
            for path, listed in self._list(stack.pop(), stats):
                if self.watchset.is_root(path) or self.watchset.is_excluded(path):
                    continue  # another entry (or nobody) decides below here
                here = self.watchset.wants(path, is_dir=stat.S_ISDIR(listed.st_mode))
                item = self.follow(path, listed, here, stats, self.watchset) if here is not None else None
                if here is None or item is None:
                    continue
                yield path, self._entry(path, item, stats), here
                if stat.S_ISDIR(item.st_mode) and here.recursive:
                    if (item.st_dev, item.st_ino) in seen:  # a followed link back up the tree
                        stats.skipped["loop"] += 1
                        continue
                    seen.add((item.st_dev, item.st_ino))
                    stack.append(path)

    @staticmethod
    def follow(
        path: str, st: os.stat_result, watch: WatchConfig, stats: ScanStats, watchset: WatchSet
    ) -> os.stat_result | None:
        """The stat to record: the link's own, or its target's when the entry follows links.

        A followed link leads only into the watched trees (`/etc` linked under a watched root
        is not walked and hashed whole) unless the entry says `follow_outside = true`; a link
        pointing out is recorded as a link and counted (`skipped{reason="outside"}`).
        """
        if not (stat.S_ISLNK(st.st_mode) and watch.follow_symlinks):
            return st
        if not watch.follow_outside and not watchset.inside(os.path.realpath(path)):
            stats.skipped["outside"] += 1
            return st
        try:
            return os.stat(path)
        except OSError:  # dangling, or a loop of links (ELOOP)
            stats.skipped["loop"] += 1
            return None

    def _list(self, directory: str, stats: ScanStats) -> list[tuple[str, os.stat_result]]:
        out = []
        try:
            with os.scandir(directory) as it:
                for item in it:
                    try:
                        out.append((item.path, item.stat(follow_symlinks=False)))
                    except FileNotFoundError:
                        stats.skipped["vanished"] += 1
                    except OSError:
                        stats.skipped["unreadable"] += 1
        except FileNotFoundError:
            stats.skipped["vanished"] += 1
        except OSError:
            stats.skipped["unreadable"] += 1
        return out

    def _entry(self, path: str, st: os.stat_result, stats: ScanStats) -> Entry:
        target = None
        if stat.S_ISLNK(st.st_mode):
            try:
                target = os.readlink(path)
            except OSError:
                stats.skipped["vanished"] += 1
        elif not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
            stats.skipped["special"] += 1  # devices, FIFOs, sockets: recorded, never opened
        return Entry.from_stat(st, target)

    # -- scanning -----------------------------------------------------------------------------

    def scan(
        self,
        *,
        roots: Sequence[str] | None = None,
        reference: Mapping[str, Entry] | None = None,
        deep: bool = True,
        stats: ScanStats | None = None,
    ) -> EntryTable:
        """Walk `roots` and hash what needs it; quick mode reuses `reference` hashes it can trust.

        The walk finishes before hashing starts: a walking thread holding the GIL would make the
        hashing threads queue for it on every syscall (the convoy effect), slower than in turn.
        """
        stats = stats if stats is not None else ScanStats()
        started = time.monotonic()
        result = EntryTable()  # packed as it is built: the scan's peak stays near the table's size
        reference = reference or {}
        packed = reference if isinstance(reference, EntryTable) else None
        pending: list[str] = []  # paths only: their stat is in `result` (54k tuples would fragment the heap)
        for path, walked, watch in self.walk(roots, stats):
            entry = walked.with_digests(None, xattr_digest(path)) if "xattrs" in watch.checks else walked
            hashed = entry.type == "file" and watch.hashes
            if (
                packed is not None
                and not (hashed and deep)
                and result.reuse(path, entry, packed, hashed=hashed)
            ):
                continue  # unchanged: the reference's record, shared
            if hashed:
                old = reference.get(path)
                if not deep and old is not None and old.sha256 and old.same_stat(entry):
                    entry = entry.with_digests(old.sha256, entry.xattrs)
                else:
                    pending.append(path)
            result[path] = entry
        if pending:
            lock = threading.Lock()
            chunks = [pending[i : i + CHUNK] for i in range(0, len(pending), CHUNK)]
            with ThreadPoolExecutor(self.workers, "fim-hash", initializer=self._lower_priority) as pool:
                for done in pool.map(lambda c: self._hash_chunk(c, result, stats, lock), chunks):
                    for path, digest in done:
                        result.set_sha256(path, digest)
        if self.stop.is_set():
            raise ScanAborted
        stats.entries += len(result)
        stats.duration = time.monotonic() - started
        return result

    def _hash_chunk(
        self, chunk: Sequence[str], walked: EntryTable, stats: ScanStats, lock: threading.Lock
    ) -> list[tuple[str, str | None]]:
        """Hash some files on a worker thread; count what could not be read; pace.

        `walked` has each path's stat from the walk: a file whose stat differs after hashing
        changed while being read and is read again. The main thread only writes paths of
        finished chunks, so reading it here is safe.
        """
        if self.stop.is_set():
            return []
        began = time.monotonic()
        out: list[tuple[str, str | None]] = []
        read = 0
        problems: Counter[str] = Counter()
        for path in chunk:
            expect = walked.stat_key(path)
            content = os.path.realpath(path) if self._follows else path
            result = hash_file(content, buffer=self.buffer, retries=self.retries, expect=expect)
            read += result.read
            if result.problem:
                problems[result.problem] += 1
            out.append((path, result.sha256))
        with lock:
            stats.hashed += len(chunk)
            stats.bytes += read
            stats.skipped.update(problems)
        self.throttle.pace(time.monotonic() - began, read)
        return out

    def _lower_priority(self) -> None:
        """Renice the calling thread (Linux schedules threads individually)."""
        if self.nice <= 0 or threading.current_thread() is threading.main_thread():
            return
        try:
            current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), max(current, self.nice))
        except OSError as exc:  # not allowed (a seccomp filter): normal priority, still paced
            if not self._nice_refused.is_set():  # said once, not once per hashing thread
                self._nice_refused.set()
                log.warning("scan_nice_refused", nice=self.nice, error=str(exc))


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
