"""The packages source's memory and judgement: it follows the package database, assembles each
settled operation, and answers the integrity monitor and the process detector (PackageOracle).

Busy means a package operation may be under way: the lock is held, or the database or its log
moved since the last settled look, or the first look after start is not done. While busy, every
question about a file or an executable is answered `PENDING`; the askers hold the change and
ask again when the tracker calls back (`on_settled`), with the operation recorded.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog

from sentinel.core.attribution import (
    CONTENT_DIFFERS,
    NO_PACKAGE_OPERATION,
    NOTHING,
    WAIT,
    Attribution,
    FileState,
    Verdict,
)
from sentinel.core.clock import Clock
from sentinel.core.timefmt import iso
from sentinel.sources.detectors.package_index import Database, PackageIndex
from sentinel.sources.detectors.package_ops import (
    DirectoryResolver,
    Holder,
    Operation,
    PackageChange,
    assemble,
    process_start,
    read_holder,
    stale_processes,
)
from sentinel.sources.parsers.dpkg import strip_temp
from sentinel.sources.parsers.packages import LogCursor, LoggedAction, Transaction, read_new

log = structlog.get_logger("sentinel.packages")

BUSY_CACHE = 0.05  # seconds a live look at the lock and the stamp is reused
MAX_OPERATIONS = 20  # kept in memory (and persisted) to fold later questions into them


class ManagedDatabase(Database, Protocol):
    """A package database the tracker can follow (DpkgDatabase, RpmDatabase)."""

    def available(self) -> bool: ...

    def stamp(self) -> tuple[int, ...]: ...

    def holder(self) -> int | None: ...

    def canonical(self, path: str) -> str: ...

    def log_actions(self, text: str) -> list[LoggedAction]: ...

    def transactions(self, text: str) -> list[Transaction]: ...

    def compare(self, a: str, b: str) -> int: ...

    def watched(self) -> list[Path]: ...

    @property
    def logs(self) -> tuple[Path | None, Path | None]: ...


@dataclass(slots=True)
class _Activity:
    """What the polls saw since the database last settled."""

    pending: bool = False
    since: float | None = None  # wall clock of the first sign
    last: float = 0.0  # monotonic of the latest sign
    last_wall: float = 0.0
    holders: list[Holder] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Summary:
    """The inventory's numbers at one moment (for /metrics)."""

    installed: int
    counts: dict[str, int]
    operations: int
    last_change: float
    digest: str


def md5_of(path: str) -> str | None:
    """The MD5 of a regular file's content (what dpkg's md5sums hold), None when unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            return hashlib.file_digest(fh, "md5").hexdigest()
    except OSError:
        return None


class PackageTracker:
    """Follows one package database; thread-safe answers for the askers."""

    def __init__(
        self,
        db: ManagedDatabase,
        *,
        index_path: Path,
        settle: float,
        remember: float,
        clock: Clock,
        proc_root: Path = Path("/proc"),
    ) -> None:
        self.db = db
        self.index = PackageIndex(index_path)
        self.settle = settle
        self.remember = remember
        self.clock = clock
        self.proc_root = proc_root
        self.ready = threading.Event()
        self.operations: list[Operation] = []
        self.counts: dict[str, int] = dict.fromkeys(
            ("install", "upgrade", "downgrade", "reinstall", "remove"), 0
        )
        self.operations_total = 0
        self.last_change = 0.0
        self._lock = threading.RLock()
        self._callbacks: list[Callable[[], None]] = []
        self._roots: tuple[str, ...] = ()
        self._stamp: tuple[int, ...] = ()
        self._cursors: dict[str, LogCursor | None] = {"log": None, "history": None}
        self._activity = _Activity()
        self._live: tuple[float, bool] = (float("-inf"), False)
        self._resolve = DirectoryResolver()
        self._seq = 0
        self._confirmed: set[str] = set()
        self._digest: str | None = None

    # -- PackageOracle ------------------------------------------------------------------------

    def watch_roots(self, roots: tuple[str, ...]) -> None:
        """Index the owned paths below these (set before the tracker starts)."""
        with self._lock:
            self._roots = tuple(sorted({self.canonical_fs(r.rstrip("/") or "/") for r in roots}))

    def busy(self) -> bool:
        """Whether an operation may be running or has not settled (see the module docstring)."""
        if not self.ready.is_set():
            return True
        with self._lock:
            if self._activity.pending:
                return True
            at, was = self._live
            now = self.clock.monotonic()
            if was and now - at < BUSY_CACHE:  # only "busy" is reused: "idle" is looked at again
                return True
            live = self.db.holder() is not None or self.db.stamp() != self._stamp
            self._live = (now, live)
            return live

    def on_settled(self, callback: Callable[[], None]) -> None:
        """Call `callback` each time the database settles (on the tracker's thread)."""
        with self._lock:
            self._callbacks.append(callback)

    def file_verdict(self, path: str, state: FileState, *, observed: float) -> Attribution:
        """About one changed path under the watched roots, first seen at `observed`."""
        if self.busy():
            return WAIT
        real, temporary = strip_temp(self.canonical_fs(path))
        when = state.ctime if state.exists and state.ctime is not None else observed
        with self._lock:
            owner = self.index.owner(real)
            op = next(
                (
                    o
                    for o in reversed(self.operations)
                    if self._explains(o, real, temporary, state, owner, when)
                ),
                None,
            )
        expected = owner[1] if owner else ""
        check = state.exists and state.type == "file" and not temporary and bool(expected)
        if op is not None:
            package = op.owners.get(real, owner[0] if owner else "")
            if check and real in op.written and md5_of(real) != expected:
                return Attribution(Verdict.DIFFERS, package, op.id, note=CONTENT_DIFFERS)
            if owner is None and real not in op.written and real not in op.removed:
                return Attribution(
                    Verdict.OPERATION, "", op.id, note="written during the operation", unowned=True
                )
            return Attribution(Verdict.OPERATION, package, op.id)
        if owner is None:
            return NOTHING
        if check and md5_of(real) != expected:
            return Attribution(Verdict.DIFFERS, owner[0], note=f"{CONTENT_DIFFERS}; {NO_PACKAGE_OPERATION}")
        return Attribution(Verdict.NO_OPERATION, owner[0], note=NO_PACKAGE_OPERATION)

    def _explains(
        self,
        op: Operation,
        real: str,
        temporary: bool,
        state: FileState,
        owner: tuple[str, str] | None,
        when: float,
    ) -> bool:
        """Whether `op` explains a change of `real` at `when` (lock held)."""
        start, end = op.window(self.settle)
        if not start <= when <= end:
            return False
        if real in op.written:
            return True
        if real in op.removed:
            return temporary or not state.exists
        return owner is None  # written during the operation and no package's (generated files)

    def exe_verdict(self, pid: int, path: str) -> Attribution:
        """About process `pid` running the deleted `path`: replaced by a recorded operation?"""
        if self.busy():
            return WAIT
        real = self.canonical_fs(path)
        started = process_start(self.proc_root, pid)
        with self._lock:
            for op in reversed(self.operations):
                if (real in op.written or real in op.removed) and (started is None or started <= op.end):
                    return Attribution(Verdict.OPERATION, op.owners.get(real, ""), op.id)
        return NOTHING

    def confirm(self, operation: str, path: str, *, unowned: bool = False) -> None:
        """The integrity monitor folded `path` into `operation` (the record lists it)."""
        with self._lock:
            op = next((o for o in self.operations if o.id == operation), None)
            if op is None:
                return
            (op.unowned if unowned else op.verified).add(path)
            self._confirmed.add(operation)

    def summary(self) -> Summary:
        """The inventory's numbers now."""
        with self._lock:
            if self._digest is None:
                self._digest = self.index.digest
            return Summary(
                len(self.index.entries),
                dict(self.counts),
                self.operations_total,
                self.last_change,
                self._digest,
            )

    # -- paths --------------------------------------------------------------------------------

    def canonical_fs(self, path: str) -> str:
        """`path` with its directory resolved (as the database's paths are)."""
        return self._resolve(path)

    # -- the tracker's own thread -------------------------------------------------------------

    def start_up(self) -> Operation | None:
        """The first look: load what was remembered, catch up with what changed while the agent
        was down (an operation with how = "startup"), index the watched roots."""
        with self._lock:
            loaded = self.index.load()
            extra = self.index.extra()
            self._restore(extra)
            saved_at = float(extra.get("saved_at", 0.0)) if loaded else 0.0
            self._stamp = self.db.stamp()
            logged, transactions = self._read_logs(first=not loaded)
            self.index.set_roots(self._roots, self.db)  # first: the refresh re-indexes what changed
            diff, _ = self.index.refresh(self.db)
            self._digest = None
            op = None
            if loaded:
                op = self._operation(diff, logged, transactions, [], (saved_at, self.clock.time()), "startup")
            if not loaded or op is not None or logged or transactions:  # an unchanged index stays as it is
                self._save()
        self.ready.set()
        self._notify()
        return op

    def poll(self) -> Operation | None:
        """One look: note activity; when it has settled, the operation it was (or None)."""
        holder = self.db.holder()
        stamp = self.db.stamp()
        now = self.clock.monotonic()
        with self._lock:
            activity = self._activity
            if holder is not None:
                if holder and all(h.pid != holder for h in activity.holders):
                    activity.holders.append(read_holder(self.proc_root, holder))
                self._saw(now)
            if stamp != self._stamp:
                self._stamp = stamp
                self._saw(now)
            if not activity.pending or holder is not None or now - activity.last < self.settle:
                return None
            logged, transactions = self._read_logs(first=False)
            diff, _ = self.index.refresh(self.db)
            self._digest = None
            window = (activity.since or activity.last_wall, activity.last_wall)
            op = self._operation(diff, logged, transactions, activity.holders, window, "realtime")
            self._activity = _Activity()
            self._live = (float("-inf"), False)
            self._save()
        self._notify()
        return op

    def _saw(self, now: float) -> None:
        activity = self._activity
        activity.last, activity.last_wall, activity.pending = now, self.clock.time(), True
        if activity.since is None:
            activity.since = activity.last_wall

    def _read_logs(self, *, first: bool) -> tuple[list[LoggedAction], list[Transaction]]:
        log_path, history_path = self.db.logs
        logged: list[LoggedAction] = []
        transactions: list[Transaction] = []
        if log_path is not None:
            text, self._cursors["log"] = read_new(log_path, None if first else self._cursors["log"])
            logged = self.db.log_actions(text)
        if history_path is not None:
            text, self._cursors["history"] = read_new(
                history_path, None if first else self._cursors["history"]
            )
            transactions = self.db.transactions(text)
        return logged, transactions

    def _operation(
        self,
        diff: Any,
        logged: list[LoggedAction],
        transactions: list[Transaction],
        holders: list[Holder],
        window: tuple[float, float],
        how: str,
    ) -> Operation | None:
        op = assemble(
            op_id=self._next_id(window[0], logged),
            tool=self.db.tool,
            diff=diff,
            logged=logged,
            transactions=transactions,
            holders=holders,
            window=window,
            new_paths=self.index.paths,
            under=self.index.under,
            compare=self.db.compare,
            how=how,
        )
        if op is None:
            return None
        op.restart = tuple(stale_processes(self.proc_root, op.written | op.removed, self.canonical_fs))
        self.operations = [o for o in self.operations if o.end >= self.clock.time() - self.remember]
        self.operations = [*self.operations, op][-MAX_OPERATIONS:]
        for change in op.changes:
            self.counts[change.action] = self.counts.get(change.action, 0) + 1
        self.operations_total += 1
        self.last_change = op.end
        log.info("package_operation", operation=op.id, summary=op.summary, user=op.user, how=how)
        return op

    def _next_id(self, start: float, logged: list[LoggedAction]) -> str:
        first = min((a.time for a in logged), default=start)
        self._seq += 1
        return f"{self.db.tool}@{iso(first)}#{self._seq}"

    def take_confirmed(self) -> list[Operation]:
        """The operations the integrity monitor folded changes into since the last call."""
        with self._lock:
            ids, self._confirmed = self._confirmed, set()
            return [o for o in self.operations if o.id in ids]

    def _notify(self) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback()
            except Exception:  # one asker's failure must not stop the tracker
                log.exception("packages_callback_failed")

    # -- persistence --------------------------------------------------------------------------

    def _save(self) -> None:
        self.index.save(
            {
                "saved_at": self.clock.time(),
                "seq": self._seq,
                "cursors": {k: c.to_json() for k, c in self._cursors.items() if c is not None},
                "last_change": self.last_change,
                "operations": [_op_json(op) for op in self.operations],
            }
        )

    def _restore(self, extra: dict[str, Any]) -> None:
        self._seq, self.last_change, cursors, self.operations = restored(extra)
        self._cursors.update(cursors)


def restored(extra: dict[str, Any]) -> tuple[int, float, dict[str, LogCursor], list[Operation]]:
    """The tracker's saved state: sequence, last change, log cursors, recent operations."""
    cursors = extra.get("cursors", {})
    found = (
        {k: LogCursor.from_json(cursors[k]) for k in ("log", "history") if k in cursors}
        if isinstance(cursors, dict)
        else {}
    )
    ops = [op for op in (_op_from(o) for o in extra.get("operations", []) if isinstance(o, dict)) if op]
    return int(extra.get("seq", 0) or 0), float(extra.get("last_change", 0.0) or 0.0), found, ops


def _z(paths: frozenset[str]) -> str:
    return base64.b64encode(
        zlib.compress("\n".join(sorted(paths)).encode("utf-8", "surrogateescape"))
    ).decode()


def _unz(text: str) -> frozenset[str]:
    data = zlib.decompress(base64.b64decode(text)).decode("utf-8", "surrogateescape")
    return frozenset(data.split("\n")) if data else frozenset()


def _op_json(op: Operation) -> dict[str, Any]:
    return {
        "id": op.id,
        "tool": op.tool,
        "start": op.start,
        "end": op.end,
        "changes": [[c.key, c.action, c.old, c.new] for c in op.changes],
        "written": _z(op.written),
        "removed": _z(op.removed),
        "owners": dict(op.owners),
        "dirs": _z(op.dirs),
    }


def _op_from(data: dict[str, Any]) -> Operation | None:
    try:
        return Operation(
            str(data["id"]),
            str(data["tool"]),
            float(data["start"]),
            float(data["end"]),
            tuple(PackageChange(*c) for c in data["changes"]),
            _unz(data["written"]),
            _unz(data["removed"]),
            dict(data.get("owners", {})),
            _unz(data["dirs"]) if "dirs" in data else frozenset(),
            how="remembered",
        )
    except (KeyError, TypeError, ValueError, zlib.error):
        return None
