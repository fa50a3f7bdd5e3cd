"""The software inventory: installed packages, and every install, upgrade and removal as one
`packages.operation` event (docs/change.md).

A thread polls the package database every `poll` (the lock, three stats — nothing is read while
nothing moves). Once an operation has settled (lock free, nothing written for `settle`), it is
assembled (package_ops), its processes still on replaced executables are listed, and it is
emitted as one event whose `details` carry the packages, versions, files, who and when; the rules
make it an `it_change` record (info inside an approved change window, major outside). The
tracker also answers the integrity monitor and the process detector (sentinel.core.attribution),
so that the files and daemons an operation touched fold into its record.

Events (detector `packages`, subject the operation id): `operation` — fields `summary`, `user`,
`command`, `packages`, `files`, `restart`, `tool`, `how`, then `details` (JSON) and
`rectification` (one daemon to restart per line).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import structlog

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import Event, MetricSpec, Sample, Scalar, freeze_fields
from sentinel.core.settings import Duration, field, positive
from sentinel.core.wakeup import DirectoryWakeup
from sentinel.sources.base import Emit, Registration
from sentinel.sources.detectors.base import DETECTOR_METRICS, DetectorStats, SightFromStats
from sentinel.sources.detectors.package_ops import ACTIONS, Operation
from sentinel.sources.detectors.package_tracker import ManagedDatabase, PackageTracker
from sentinel.sources.parsers.dpkg import DpkgDatabase, DpkgPaths

log = structlog.get_logger("sentinel.packages")

NAME = "packages"
MIN_GAP = 0.05  # seconds between two polls however busy the directories are
METRICS = (
    *DETECTOR_METRICS,
    MetricSpec("sentinel_packages_installed", "gauge", "Installed packages (dpkg or rpm database)."),
    MetricSpec(
        "sentinel_package_changes_total",
        "counter",
        "Packages changed by recorded operations, by action (install, upgrade, downgrade, reinstall, "
        "remove).",
        ("action",),
    ),
    MetricSpec(
        "sentinel_package_operations_total",
        "counter",
        "Package operations recorded (one it_change record each).",
    ),
    MetricSpec(
        "sentinel_package_last_change_timestamp_seconds",
        "gauge",
        "When the last recorded package operation ended (0: none since the inventory was first taken).",
    ),
    MetricSpec(
        "sentinel_inventory_info",
        "gauge",
        "The software inventory's identity: 16 hex of SHA-256 over the sorted name, version, arch lines.",
        ("digest",),
    ),
)


@dataclass(frozen=True, slots=True)
class PackagesConfig:
    """`[collectors.packages]`."""

    enabled: bool = True
    manager: Literal["auto", "dpkg"] = "auto"
    root: Path = Path("/")  # what `dpkg --root` names; the files and the database below it
    admindir: Path | None = None  # default: root/var/lib/dpkg
    dpkg_log: Path | None = None  # default: /var/log/dpkg.log (dpkg.cfg's, not below root)
    apt_history: Path | None = None  # default: root/var/log/apt/history.log
    poll: Duration = field(Duration(1), check=positive)
    settle: Duration = field(Duration(3), check=positive)  # quiet this long ends an operation
    remember: Duration = field(Duration(7 * 86400), check=positive)  # operations kept to fold into
    files_listed: int = field(200, check=positive)  # paths a record lists (the total is always there)


def open_database(config: PackagesConfig) -> ManagedDatabase | None:
    """The configured package database, or None when there is none here."""
    dpkg = DpkgDatabase(DpkgPaths(config.root, config.admindir, config.dpkg_log, config.apt_history))
    if config.manager in ("auto", "dpkg") and dpkg.available():
        return dpkg
    return None


class PackagesCollector(SightFromStats):
    """Streaming collector of the software inventory; `oracle` is its PackageOracle."""

    name = NAME
    metrics: Sequence[MetricSpec] = METRICS

    def __init__(
        self,
        config: PackagesConfig,
        *,
        state_dir: Path,
        clock: Clock = SYSTEM_CLOCK,
        proc_root: Path = Path("/proc"),
        database: ManagedDatabase | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.stats = DetectorStats(NAME, ("operation",))
        self.db = database if database is not None else open_database(config)
        self.tracker: PackageTracker | None = None
        if self.db is not None:
            self.tracker = PackageTracker(
                self.db,
                index_path=state_dir / "detectors" / f"{NAME}.json",
                settle=float(config.settle),
                remember=float(config.remember),
                clock=clock,
                proc_root=proc_root,
            )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def oracle(self) -> PackageTracker | None:
        """What the integrity monitor and the process detector ask (None: no database here)."""
        return self.tracker

    def start(self, emit: Emit) -> None:
        """Take the first look and follow the database on a thread."""
        if self.tracker is None:
            log.info("packages_no_database", root=str(self.config.root))
            self.stats.set_up(
                False, f"no package database under {self.config.root} (manager {self.config.manager})"
            )
            return
        self._thread = threading.Thread(
            target=self._run, args=(emit,), name="collector:packages", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop following and join the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.tracker is not None:
            self.tracker.ready.set()  # nobody waits for a tracker that stopped

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Block until the first look is done (tests, bench)."""
        return self.tracker is None or self.tracker.ready.wait(timeout)

    def _run(self, emit: Emit) -> None:
        assert self.tracker is not None
        tracker = self.tracker
        try:
            self._send(emit, tracker.start_up())
            self._looked(True)
        except Exception as exc:  # contained: the source reports itself down, the agent goes on
            self._looked(False, f"first look at the package database failed: {exc}")
            tracker.ready.set()
            log.exception("packages_start_failed")
        wakeup = DirectoryWakeup(self.db.watched() if self.db is not None else [])
        try:
            self._follow(emit, tracker, wakeup)
        finally:
            wakeup.close()

    def _follow(self, emit: Emit, tracker: PackageTracker, wakeup: DirectoryWakeup) -> None:
        while not self._stop.is_set():
            wakeup.wait(float(self.config.poll), self._stop)
            if self._stop.wait(MIN_GAP):  # a burst of writes is one poll, not hundreds
                return
            try:
                self._send(emit, tracker.poll())
                for op in tracker.take_confirmed():
                    self._send(emit, op, update=True)
                self._looked(True)
            except Exception as exc:
                self._looked(False, f"reading the package database failed: {exc}")
                log.exception("packages_poll_failed")

    def _looked(self, up: bool, reason: str = "") -> None:
        """One look done: sight and last-run time for status and /metrics."""
        self.stats.set_up(up, reason)
        self.stats.ran(self.clock.time())

    def _send(self, emit: Emit, op: Operation | None, *, update: bool = False) -> None:
        if op is None:
            return
        event = self.event(op)
        if not update:
            self.stats.counted([event])
        if not emit([event]):
            log.warning("packages_event_dropped", operation=op.id)

    def event(self, op: Operation) -> Event:
        """The operation as one event (time: when it started, which the change windows judge)."""
        fields: dict[str, Scalar] = {
            "summary": op.summary,
            "user": op.user or "unknown",
            "command": op.command,
            "packages": len(op.changes),
            "files": len(op.written - op.dirs) + len(op.removed - op.written - op.dirs),
            "restart": len(op.restart),
            "tool": op.tool,
            "how": op.how,
            "details": json.dumps(op.details(self.config.files_listed), sort_keys=True),
            "rectification": "\n".join(op.restart),
        }
        return Event(NAME, "operation", op.id, op.start, freeze_fields(fields))

    def current(self) -> Iterable[Sample]:
        """The inventory's gauges and counters, read at scrape time."""
        out = list(super().current())
        if self.tracker is None or not self.tracker.ready.is_set():
            return out
        summary = self.tracker.summary()
        out.append(Sample.of("sentinel_packages_installed", summary.installed))
        out += [
            Sample.of("sentinel_package_changes_total", summary.counts.get(a, 0), action=a) for a in ACTIONS
        ]
        out.append(Sample.of("sentinel_package_operations_total", summary.operations))
        out.append(Sample.of("sentinel_package_last_change_timestamp_seconds", summary.last_change))
        out.append(Sample.of("sentinel_inventory_info", 1, digest=summary.digest))
        return out


COLLECTOR = Registration(
    NAME,
    PackagesConfig,
    build=lambda s, ctx: PackagesCollector(s, state_dir=ctx.state_dir, clock=ctx.clock),
    oracle=lambda built: built.oracle,
)
