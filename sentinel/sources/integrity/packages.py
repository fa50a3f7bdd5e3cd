"""The monitor's side of attribution to package operations (sentinel.core.attribution).

While the software inventory says a package operation is running (`busy`), a change under a
critical or readonly path is **held**: taken back out of the reference, not reported, skipped by
rescans. When the operation has settled the held paths are judged again, and every change then
gets a verdict before it is reported:

- part of an operation (the package's file with the content its checksums say, at the time of
  the operation, or a dpkg temporary name of it) → folded: reported with `attributed = "yes"`,
  `operation`, `package` (the rules raise nothing; the operation's record lists it), and not
  counted by the mass-modification detector;
- written during an operation and owned by no package → folded only under the policies in
  `attribute_unowned` (readonly: generated files such as byte code); otherwise reported with the
  operation named in its evidence;
- package-owned with other content → `package_check = "content differs from package"` (critical);
- package-owned, no operation → `package_check = "no package operation"` (the policy's rule).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import structlog

from sentinel.core.attribution import (
    NO_PACKAGES,
    Attribution,
    FileState,
    PackageOracle,
    Verdict,
)
from sentinel.core.clock import Clock
from sentinel.core.model import Scalar
from sentinel.sources.integrity.changes import Change
from sentinel.sources.integrity.config import IntegrityConfig
from sentinel.sources.integrity.entry import Entry
from sentinel.sources.integrity.reference import Reference, Undo

log = structlog.get_logger("sentinel.integrity")

HELD_POLICIES = ("critical", "readonly")
STILL_RUNNING = "package operation still running"


class PackageHolds:
    """Held paths, their release, and the verdict fields of reported changes."""

    def __init__(
        self,
        config: IntegrityConfig,
        *,
        oracle: PackageOracle,
        reference: Reference,
        clock: Clock,
        wake: threading.Event,
    ) -> None:
        self.config = config
        self.oracle = oracle
        self.ref = reference
        self.clock = clock
        self.wake = wake
        self.enabled = oracle is not NO_PACKAGES
        self._lock = threading.Lock()
        self._held: dict[str, tuple[float, float]] = {}  # path -> (wall time first seen, monotonic)
        self._released: dict[str, float] = {}  # released, verdict not yet made: wall time first seen
        self._drill = str(config.drill_dir).rstrip("/") + "/" if config.drill_dir else None
        if self.enabled:
            roots = tuple(str(w.path) for w in config.watch if w.policy in HELD_POLICIES)
            oracle.watch_roots(roots)
            oracle.on_settled(self._on_settled)

    # -- holding ------------------------------------------------------------------------------

    def _wanted(self, change: Change) -> bool:
        return change.policy in HELD_POLICIES and not (self._drill and change.path.startswith(self._drill))

    def hold(self, changes: list[Change], undo: Undo) -> list[Change]:
        """The changes to report now; those a running operation may explain are held (their
        paths put back in the reference as they were before this batch)."""
        if not self.enabled or not changes or not any(self._wanted(c) for c in changes):
            return changes
        if not self.oracle.busy():
            return changes
        held: set[str] = set()
        out: list[Change] = []
        for change in changes:
            if self._wanted(change):
                held.add(change.path)
                if change.to:
                    held.add(change.to)
            else:
                out.append(change)
        self._restore(undo, held)
        now, mono = self.clock.time(), time.monotonic()
        with self._lock:
            for path in held:
                self._held.setdefault(path, (now, mono))
        log.debug("fim_held", paths=len(held))
        return out

    def _restore(self, undo: Undo, paths: set[str]) -> None:
        """Put `paths` back as they were before the batch (reference and observed record)."""
        with self.ref.lock:
            first: dict[str, Entry | None] = {}
            for path, entry in undo.previous:
                if path in paths and path not in first:
                    first[path] = entry
            for path, entry in first.items():
                if entry is None:
                    self.ref.table.pop(path, None)
                else:
                    self.ref.table[path] = entry
                if path in undo.observed:
                    self.ref.observed[path] = undo.observed[path]
                elif path in undo.unobserved:
                    self.ref.observed.pop(path, None)
                self.ref.stamps.pop(path, None)
            self.ref.dirty = True

    def is_held(self, path: str) -> bool:
        """Whether `path` waits for an operation to settle (rescans leave it alone)."""
        with self._lock:
            return path in self._held

    def count(self) -> int:
        """How many paths are held."""
        with self._lock:
            return len(self._held)

    def _on_settled(self) -> None:
        """The inventory's callback (its thread): let the scan thread release what is held."""
        with self._lock:
            waiting = bool(self._held)
        if waiting:
            self.wake.set()

    def due(self) -> list[str]:
        """The held paths to judge again now: all of them once nothing runs any more (or when
        the oldest has waited `hold_max`)."""
        with self._lock:
            if not self._held:
                return []
            oldest = min(mono for _, mono in self._held.values())
        expired = time.monotonic() - oldest >= float(self.config.hold_max)
        if not expired and self.oracle.busy():
            return []
        with self._lock:
            paths = sorted(self._held, key=len, reverse=True)  # a removed directory's children first
            self._released.update({p: self._held[p][0] for p in paths})
            self._held.clear()
        if expired:
            log.warning("fim_hold_expired", paths=len(paths))
        return paths

    # -- verdicts -----------------------------------------------------------------------------

    def fields(self, change: Change, now: float) -> tuple[dict[str, Scalar], Attribution | None]:
        """The attribution fields of one change about to be reported, and the verdict (None when
        the inventory has nothing to say)."""
        if not self.enabled or not self._wanted(change):
            return {}, None
        path = change.to or change.path
        entry = change.new
        state = FileState(
            entry is not None, entry.type if entry else "", entry.ctime_ns / 1e9 if entry else None
        )
        with self._lock:
            observed = self._released.get(path, self._released.get(change.path, now))
        verdict = self.oracle.file_verdict(path, state, observed=observed)
        if verdict.verdict is Verdict.PENDING:
            return {"package_check": STILL_RUNNING}, None
        if verdict.verdict is Verdict.NONE:
            return {}, None
        out: dict[str, Scalar] = {"package": verdict.package}
        if verdict.operation:
            out["operation"] = verdict.operation
        if verdict.verdict is Verdict.OPERATION:
            if verdict.unowned and change.policy not in self.config.attribute_unowned:
                out["package_check"] = "written during a package operation"
                return out, None
            out["attributed"] = "yes"
            self.oracle.confirm(verdict.operation, path, unowned=verdict.unowned)
        else:
            out["package_check"] = verdict.note
        return out, verdict

    def released(self, paths: Iterable[str]) -> None:
        """Forget when the released paths were first seen (their verdicts are made)."""
        with self._lock:
            for path in paths:
                self._released.pop(path, None)
