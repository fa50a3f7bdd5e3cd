"""The processes detector: programs that should not run on a bank terminal.

Reads /proc/<pid>/{exe,cmdline,stat,status} under `proc_root` each poll (by hand: psutil's
process_iter over the same facts took 1.6x as long, bench/psutil_readers.py, and cannot be
pointed at a tree per collector) and reports, once per process (pid + start time):

- `exec_from_temp`: the executable lives under a world-writable directory (`temp_dirs`:
  /tmp, /var/tmp, /dev/shm) — Falco's "execution from /dev/shm";
- `fileless_exec`: the executable is a memfd (`/memfd:... (deleted)`) — Falco's "fileless
  execution via memfd_create";
- `deleted_exe`: the executable was deleted after start (a dropper cleaning up; also every
  daemon after a package upgrade until it restarts, hence its own kind). When the software
  inventory recorded the operation that replaced it, the event names it (`operation`,
  `package`) and the rules fold it into that operation's record; while an operation runs the
  process is looked at again next poll;
- `known_tool`: name or command line matches a miner/attack-tool pattern (`tool_patterns`,
  from Sigma and Falco: xmrig, `stratum+tcp://`, `--donate-level`, `nc -e` ...);
- `cpu_hog`: a process not in `cpu_allow` using more than `cpu_threshold` of one core for
  `cpu_for` without a break.

Every process start is seen as it happens where the kernel's proc connector can be subscribed
(`exec_capture = "auto"`, sentinel.sources.detectors.procevents): each exec is judged at once,
so a miner, a reverse shell or a `curl | sh` that lives 2 seconds is caught. The scan every
`interval` still runs: for CPU hogs, for what started before the agent, and after the kernel
dropped events. Without the connector (`exec_capture = "poll"`, or the kernel refuses: before
6.6 it needs CAP_NET_ADMIN) the scan alone runs, and `sentinel_exec_capture_mode` says so.

Events carry pid, ppid, uid, login uid, process name, exe, argv and the command line (secrets
masked by sentinel.core.redact, cut at CMDLINE_MAX) and the parent chain. Other users'
executables can only be read with CAP_SYS_PTRACE: without it the detector is down, and says why.
"""

from __future__ import annotations

import errno
import os
import re
import select
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import structlog

from sentinel.core.attribution import NO_PACKAGES, PackageOracle, Verdict
from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import Event, MetricSpec, Sample, Scalar, clean_text, freeze_fields
from sentinel.core.redact import redact_text
from sentinel.core.settings import Duration, KeyPath, check_regexes, field, positive, ratio
from sentinel.sources.base import Emit, Item, Registration
from sentinel.sources.detectors.base import DETECTOR_METRICS, DetectorStats, SightFromStats
from sentinel.sources.detectors.procevents import Batch, ProcConnector
from sentinel.sources.detectors.procinfo import (
    Lineage,
    Stat,
    argv_fields,
    read_argv,
    read_exe,
    read_ids,
    read_stat,
)
from sentinel.sources.sight import CAP_SYS_PTRACE, missing_capabilities, other_users_visible, proc_hides

log = structlog.get_logger("sentinel.detectors.processes")

NAME = "processes"
KINDS = ("exec_from_temp", "fileless_exec", "deleted_exe", "known_tool", "cpu_hog")
DELETED = " (deleted)"
MODES = ("connector", "poll")
WAKE = 0.5  # seconds between checks of the stop flag while waiting for execs
EXEC_METRICS = (
    MetricSpec(
        "sentinel_exec_capture_mode",
        "gauge",
        "How process starts are seen, 1 for the mode in use: connector (every exec as it happens) or poll.",
        ("mode",),
    ),
    MetricSpec("sentinel_exec_events_total", "counter", "Process starts (execs) received from the kernel."),
    MetricSpec(
        "sentinel_exec_unresolved_total",
        "counter",
        "Execs whose process exited before its executable and command line could be read.",
    ),
    MetricSpec(
        "sentinel_exec_lost_total",
        "counter",
        "Times the kernel dropped process events (receive buffer full); each one triggers a rescan.",
    ),
)
TOOL_PATTERNS = (
    r"(?i)\bxmrig\b",
    r"(?i)\b(minerd|cpuminer|cgminer|bfgminer|ethminer|nbminer|t-rex|lolminer|xmr-stak)\b",
    r"stratum\+(tcp|ssl|tls)://",
    r"--donate-level",
    r"--algo[= ]rx/0",
    r"(?i)\b(nc|ncat|netcat|nc\.traditional|nc\.openbsd)\b.*\s-[a-z]*[ec]\b",
    r"(?i)\bsocat\b.*\bexec:",
    r"/dev/tcp/\d",
    r"(?i)\b(mimikatz|meterpreter|linpeas|pspy)\b",
)


@dataclass(frozen=True, slots=True)
class ProcessesConfig:
    """`[collectors.processes]`."""

    enabled: bool = True
    interval: Duration = field(Duration(10), check=positive)
    temp_dirs: tuple[str, ...] = ("/tmp", "/var/tmp", "/dev/shm")  # noqa: S108 - watched, not used
    tool_patterns: tuple[str, ...] = field(TOOL_PATTERNS, check=check_regexes)
    cpu_threshold: float = field(0.8, check=ratio)
    cpu_for: Duration = field(Duration(600), check=positive)
    cpu_allow: tuple[str, ...] = ()
    ignore_processes: tuple[str, ...] = ()
    exec_capture: Literal["auto", "poll"] = "auto"  # auto: the proc connector where the kernel allows

    def validate(self) -> list[tuple[KeyPath, str]]:
        """Temp dirs are absolute."""
        return [
            (("temp_dirs", i), f'expected an absolute directory, got "{d}"')
            for i, d in enumerate(self.temp_dirs)
            if not d.startswith("/")
        ]


@dataclass(slots=True)
class _Seen:
    cpu_ticks: int
    at: float
    hot_since: float | None = None


def redact(cmdline: str) -> str:
    """A command line with its secrets masked (sentinel.core.redact, the one place for that)."""
    return redact_text(cmdline)


class ProcessesCollector(SightFromStats):
    """Streaming collector of suspicious processes: execs as they happen, and a scan every
    `interval`. `collect()` is one scan on its own (tests, and the scan of the thread)."""

    name = NAME
    metrics: Sequence[MetricSpec] = (*DETECTOR_METRICS, *EXEC_METRICS)

    def __init__(
        self,
        config: ProcessesConfig,
        *,
        proc_root: Path = Path("/proc"),
        clock: Clock = SYSTEM_CLOCK,
        clock_ticks: int = os.sysconf("SC_CLK_TCK"),
        own_pid: Callable[[], int] = os.getpid,
        connector: Callable[[], ProcConnector] = ProcConnector.open,
        missing: Callable[[], list[str]] = lambda: missing_capabilities([CAP_SYS_PTRACE]),
        packages: PackageOracle = NO_PACKAGES,
    ) -> None:
        self.config = config
        self.interval = float(config.interval)
        self.stats = DetectorStats(NAME, KINDS)
        self._proc_root = proc_root
        self._clock = clock
        self._ticks = clock_ticks
        self._own_pid = own_pid
        self._connector_factory = connector
        self._missing = missing
        self._packages = packages  # a daemon left on a binary an upgrade replaced is that upgrade's
        self._tools = [re.compile(p) for p in config.tool_patterns]
        self._temp = tuple(d.rstrip("/") + "/" for d in config.temp_dirs)
        self._reported: set[tuple[int, int, str]] = set()  # (pid, start time, kind)
        self._cpu: dict[tuple[int, int], _Seen] = {}
        self._lineage = Lineage(proc_root)
        self._connector: ProcConnector | None = None
        self.mode = "poll"
        self.mode_reason = "not started"
        self._counts = {"events": 0, "unresolved": 0, "lost": 0}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- streaming ------------------------------------------------------------------------------

    def start(self, emit: Emit) -> None:
        """Subscribe to process events (when configured and allowed), then watch on a thread."""
        self._stop.clear()
        if self.config.exec_capture == "poll":
            self.mode, self.mode_reason = "poll", 'exec_capture = "poll"'
        else:
            try:
                self._connector = self._connector_factory()
                self.mode = "connector"
                self.mode_reason = "exec-only subscription" if self._connector.filtered else "every event"
            except OSError as exc:
                self.mode, self.mode_reason = "poll", _refused(exc)
                log.warning("exec_capture_polling", reason=self.mode_reason, interval=self.interval)
        log.info("exec_capture", mode=self.mode, detail=self.mode_reason)
        self._thread = threading.Thread(
            target=self._run, args=(emit,), name="collector:processes", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop watching, join the thread, unsubscribe."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._connector is not None:
            self._connector.close()
            self._connector = None

    def current(self) -> Iterable[Sample]:
        """The detector's counters and sight, and how execs are captured."""
        out = self.stats.samples()
        out += [Sample.of("sentinel_exec_capture_mode", 1 if m == self.mode else 0, mode=m) for m in MODES]
        out.append(Sample.of("sentinel_exec_events_total", self._counts["events"]))
        out.append(Sample.of("sentinel_exec_unresolved_total", self._counts["unresolved"]))
        out.append(Sample.of("sentinel_exec_lost_total", self._counts["lost"]))
        return out

    def _run(self, emit: Emit) -> None:
        next_scan = self._clock.monotonic()
        while not self._stop.is_set():
            if self._clock.monotonic() >= next_scan:
                self._emit(emit, [i for i in self.collect() if isinstance(i, Event)])
                self.stats.ran(self._clock.time())
                next_scan = self._clock.monotonic() + self.interval
            wait = min(WAKE, max(0.0, next_scan - self._clock.monotonic()))
            if self._connector is None:
                self._stop.wait(wait)
                continue
            try:
                if select.select([self._connector], [], [], wait)[0]:
                    batch = self._connector.read()
                    if batch.lost:
                        next_scan = self._clock.monotonic()  # the kernel dropped events: rescan now
                    self._emit(emit, self.on_execs(batch))
            except OSError as exc:  # the socket broke: fall back to the scan, say so
                self._connector.close()
                self._connector = None
                self.mode, self.mode_reason = "poll", f"proc connector failed: {exc}"
                log.error("exec_capture_failed", error=str(exc))

    def _emit(self, emit: Emit, events: list[Event]) -> None:
        if events:
            emit(self.stats.counted(events))

    def on_execs(self, batch: Batch) -> list[Event]:
        """Judge each process that just exec'd (the connector's batch) as the scan would."""
        self._counts["events"] += len(batch.pids)
        self._counts["lost"] += 1 if batch.lost else 0
        now = self._clock.monotonic()
        own = self._own_pid()
        events: list[Event] = []
        for pid in batch.pids:
            if pid != own:
                events += self._inspect(pid, now, None)
        return events

    # -- one scan ---------------------------------------------------------------------------------

    def collect(self) -> Iterable[Item]:
        """One look at every process."""
        try:
            pids = [int(e.name) for e in os.scandir(self._proc_root) if e.name.isdigit()]
        except OSError as exc:
            self.stats.set_up(False, f"cannot list {self._proc_root}: {exc.strerror}")
            return self.stats.samples()
        self._check_sight()
        now = self._clock.monotonic()
        events: list[Event] = []
        alive: set[tuple[int, int]] = set()
        own = self._own_pid()
        for pid in pids:
            if pid != own:
                events += self._inspect(pid, now, alive)
        self._reported = {r for r in self._reported if (r[0], r[1]) in alive}
        self._cpu = {k: v for k, v in self._cpu.items() if k in alive}
        return [*self.stats.counted(events), *self.stats.samples()]

    def _check_sight(self) -> None:
        missing = self._missing()
        hidden = proc_hides(self._proc_root)
        if missing:
            self.stats.set_up(
                False, f"cannot read other users' /proc/<pid>/exe: needs {' and '.join(missing)}"
            )
        elif hidden or other_users_visible(self._proc_root) is False:
            self.stats.set_up(False, f"/proc hides other users' processes ({hidden or 'none visible'})")
        else:
            self.stats.set_up(True)

    def _inspect(self, pid: int, now: float, alive: set[tuple[int, int]] | None) -> list[Event]:
        """The events one process deserves now; `alive` is None for an exec (no CPU history)."""
        base = self._proc_root / str(pid)
        try:
            stat = read_stat(base)
        except ValueError:
            self.stats.malformed()
            return []
        exe, err = read_exe(base) if stat is not None else ("", 0)
        if alive is None and (stat is None or err == errno.ENOENT):
            self._counts["unresolved"] += 1  # it exited (or is a zombie) before we could read it
            return []
        if stat is None:
            return []  # exited between listing and reading
        if alive is not None:
            alive.add((pid, stat.start))
        if exe:
            self._lineage.remember(pid, stat, exe)
        if stat.comm in self.config.ignore_processes:
            return []
        argv = read_argv(base)
        kinds = self._exe_kinds(exe) + self._tool_kinds(stat.comm, argv)
        hot = alive is not None and self._cpu_hot(pid, stat.start, stat.cpu_ticks, now)
        if hot and stat.comm not in self.config.cpu_allow:
            kinds.append("cpu_hog")
        events = []
        for kind in kinds:
            if (pid, stat.start, kind) in self._reported:
                continue
            folded = self._package_operation(pid, exe) if kind == "deleted_exe" else {}
            if folded is None:
                continue  # a package operation is running: it may explain this; ask again next poll
            self._reported.add((pid, stat.start, kind))
            via = "scan" if alive is not None else "exec"
            events.append(self._event(kind, pid, stat, exe, argv, base, via, folded))
        return events

    def _package_operation(self, pid: int, exe: str) -> dict[str, Scalar] | None:
        """`operation` and `package` when a recorded package operation replaced the executable
        (the rules fold it into that operation's record), {} when none did, None while one runs."""
        verdict = self._packages.exe_verdict(pid, exe.removesuffix(DELETED))
        if verdict.verdict is Verdict.PENDING:
            return None
        if not verdict.folded:
            return {}
        return {"operation": verdict.operation, "package": verdict.package}

    def _exe_kinds(self, exe: str) -> list[str]:
        if not exe:
            return []
        if exe.startswith("/memfd:"):
            return ["fileless_exec"]
        deleted = exe.endswith(DELETED)
        path = exe.removesuffix(DELETED)
        if path.startswith(self._temp):
            return ["exec_from_temp"]
        return ["deleted_exe"] if deleted else []

    def _tool_kinds(self, comm: str, argv: list[str]) -> list[str]:
        text = f"{comm} {' '.join(argv)}"
        return ["known_tool"] if any(p.search(text) for p in self._tools) else []

    def _cpu_hot(self, pid: int, start: int, ticks: int, now: float) -> bool:
        """Whether the process has stayed above the threshold for `cpu_for`."""
        seen = self._cpu.get((pid, start))
        self._cpu[(pid, start)] = current = _Seen(ticks, now, seen.hot_since if seen else None)
        if seen is None or now <= seen.at:
            return False
        share = (ticks - seen.cpu_ticks) / self._ticks / (now - seen.at)
        if share < self.config.cpu_threshold:
            current.hot_since = None
            return False
        if current.hot_since is None:
            current.hot_since = seen.at
        return now - current.hot_since >= self.config.cpu_for

    def _event(
        self,
        kind: str,
        pid: int,
        stat: Stat,
        exe: str,
        argv: list[str],
        base: Path,
        via: str,
        extra: dict[str, Scalar] | None = None,
    ) -> Event:
        argv_json, cmdline = argv_fields(argv)
        uid, loginuid = read_ids(base)
        fields: dict[str, Scalar] = {
            "pid": pid,
            "ppid": stat.ppid,
            "uid": uid,
            "process": clean_text(stat.comm),
            "exe": clean_text(exe),
            "argv": argv_json,
            "cmdline": cmdline,
            "parents": self._lineage.chain(stat.ppid),
            "loginuid": loginuid,
            "seen_by": via,
            **(extra or {}),
        }
        subject = (
            clean_text(exe.removesuffix(DELETED)) if kind in ("exec_from_temp", "deleted_exe") else stat.comm
        )
        return Event(NAME, kind, clean_text(subject) or str(pid), self._clock.time(), freeze_fields(fields))


def _refused(exc: OSError) -> str:
    if exc.errno == errno.EPERM:
        return f"proc connector refused ({exc.strerror}): before Linux 6.6 it needs CAP_NET_ADMIN"
    return f"proc connector unavailable: {exc}"


COLLECTOR = Registration(
    NAME,
    ProcessesConfig,
    build=lambda s, ctx: ProcessesCollector(s, clock=ctx.clock, packages=ctx.packages),
)
