"""The processes detector: programs that should not run on a bank terminal.

Reads /proc/<pid>/{exe,cmdline,stat,status} under `proc_root` each poll (by hand: psutil's
process_iter over the same facts took 1.6x as long, bench/psutil_readers.py, and cannot be
pointed at a tree per collector) and reports, once per process (pid + start time):

- `exec_from_temp`: the executable lives under a world-writable directory (`temp_dirs`:
  /tmp, /var/tmp, /dev/shm) — Falco's "execution from /dev/shm";
- `fileless_exec`: the executable is a memfd (`/memfd:... (deleted)`) — Falco's "fileless
  execution via memfd_create";
- `deleted_exe`: the executable was deleted after start (a dropper cleaning up; also every
  daemon after a package upgrade until it restarts, hence its own kind);
- `known_tool`: name or command line matches a miner/attack-tool pattern (`tool_patterns`,
  from Sigma and Falco: xmrig, `stratum+tcp://`, `--donate-level`, `nc -e` ...);
- `cpu_hog`: a process not in `cpu_allow` using more than `cpu_threshold` of one core for
  `cpu_for` without a break.

Command lines go into events (and so into tickets): values of password-like options are masked
first, and the line is cut at CMDLINE_MAX characters.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import Event, MetricSpec, Sample, Scalar, clean_text, freeze_fields
from sentinel.core.settings import Duration, KeyPath, check_regexes, field, positive, ratio
from sentinel.sources.base import Registration
from sentinel.sources.detectors.base import DETECTOR_METRICS, DetectorStats

NAME = "processes"
KINDS = ("exec_from_temp", "fileless_exec", "deleted_exe", "known_tool", "cpu_hog")
CMDLINE_MAX = 512
DELETED = " (deleted)"
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
_SECRET = re.compile(r"(?i)((?:--?|\b)(?:pass(?:word|wd)?|pwd|token|secret|api[-_]?key|auth)(?:=|\s+))(\S+)")
_MYSQL_P = re.compile(r"(\s-p)(\S+)")


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
    """Mask the values of password-like options (`--password=x`, `token x`, mysql's `-px`)."""
    masked = _SECRET.sub(lambda m: m.group(1) + "***", cmdline)
    return _MYSQL_P.sub(lambda m: m.group(1) + "***", masked)


class ProcessesCollector:
    """Polled collector of suspicious processes."""

    name = NAME
    metrics: Sequence[MetricSpec] = DETECTOR_METRICS

    def __init__(
        self,
        config: ProcessesConfig,
        *,
        proc_root: Path = Path("/proc"),
        clock: Clock = SYSTEM_CLOCK,
        clock_ticks: int = os.sysconf("SC_CLK_TCK"),
        own_pid: Callable[[], int] = os.getpid,
    ) -> None:
        self.config = config
        self.interval = float(config.interval)
        self.stats = DetectorStats(NAME, KINDS)
        self._proc_root = proc_root
        self._clock = clock
        self._ticks = clock_ticks
        self._own_pid = own_pid
        self._tools = [re.compile(p) for p in config.tool_patterns]
        self._temp = tuple(d.rstrip("/") + "/" for d in config.temp_dirs)
        self._reported: set[tuple[int, int, str]] = set()  # (pid, start time, kind)
        self._cpu: dict[tuple[int, int], _Seen] = {}

    def collect(self) -> Iterable[Sample | Event]:
        """One look at every process."""
        try:
            pids = [int(e.name) for e in os.scandir(self._proc_root) if e.name.isdigit()]
        except OSError:
            self.stats.set_up(False)
            return self.stats.samples()
        self.stats.set_up(True)
        now = self._clock.monotonic()
        events: list[Event] = []
        alive: set[tuple[int, int]] = set()
        for pid in pids:
            if pid == self._own_pid():
                continue
            events += self._inspect(pid, now, alive)
        self._reported = {r for r in self._reported if (r[0], r[1]) in alive}
        self._cpu = {k: v for k, v in self._cpu.items() if k in alive}
        return [*self.stats.counted(events), *self.stats.samples()]

    def _inspect(self, pid: int, now: float, alive: set[tuple[int, int]]) -> list[Event]:
        base = self._proc_root / str(pid)
        stat = self._stat(base)
        if stat is None:
            return []  # exited between listing and reading
        comm, start, ticks = stat
        alive.add((pid, start))
        if comm in self.config.ignore_processes:
            return []
        try:
            exe = str((base / "exe").readlink())
        except OSError:
            exe = ""  # kernel thread, or another user's process without root
        kinds = self._exe_kinds(exe) + self._tool_kinds(comm, base)
        if self._cpu_hot(pid, start, ticks, now) and comm not in self.config.cpu_allow:
            kinds.append("cpu_hog")
        events = []
        for kind in kinds:
            if (pid, start, kind) in self._reported:
                continue
            self._reported.add((pid, start, kind))
            events.append(self._event(kind, pid, comm, exe, base))
        return events

    def _stat(self, base: Path) -> tuple[str, int, int] | None:
        """(comm, start time in ticks, utime+stime ticks) from /proc/<pid>/stat."""
        try:
            text = (base / "stat").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        head, _, tail = text.rpartition(")")  # comm may itself contain spaces and parentheses
        comm = head.partition("(")[2]
        fields = tail.split()
        try:
            return comm, int(fields[19]), int(fields[11]) + int(fields[12])
        except (IndexError, ValueError):
            self.stats.malformed()
            return None

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

    def _tool_kinds(self, comm: str, base: Path) -> list[str]:
        text = f"{comm} {self._cmdline(base)}"
        return ["known_tool"] if any(p.search(text) for p in self._tools) else []

    def _cmdline(self, base: Path) -> str:
        try:
            raw = (base / "cmdline").read_bytes()[: 4 * CMDLINE_MAX]
        except OSError:
            return ""
        return raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "surrogateescape")

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

    def _event(self, kind: str, pid: int, comm: str, exe: str, base: Path) -> Event:
        cmdline = redact(self._cmdline(base))[:CMDLINE_MAX]
        fields: dict[str, Scalar] = {
            "pid": pid,
            "process": clean_text(comm),
            "exe": clean_text(exe),
            "cmdline": clean_text(cmdline),
            "uid": _uid(base),
        }
        subject = clean_text(exe.removesuffix(DELETED)) if kind in ("exec_from_temp", "deleted_exe") else comm
        return Event(NAME, kind, clean_text(subject) or str(pid), self._clock.time(), freeze_fields(fields))


def _uid(base: Path) -> int:
    try:
        for line in (base / "status").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return -1


COLLECTOR = Registration(NAME, ProcessesConfig, build=lambda s, ctx: ProcessesCollector(s, clock=ctx.clock))
