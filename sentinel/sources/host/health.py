"""The host's core health from /proc: CPU, load, memory, swap, processes, file handles, boot.

Everything is read from files under `proc_root` (default `/proc`), the same files psutil parses,
so a test can hand in a fixture tree.

Why not psutil (measured, bench/psutil_readers.py): psutil cannot be pointed at a tree per
collector (`psutil.PROCFS_PATH` is one process-wide global), its load average is a syscall and its
CPU count is sysconf (neither reads a fixture), `virtual_memory()` is slower here and warns on a
short meminfo, and its process states cost the same walk of /proc; the CPU-time parse it would
save is 18 lines and tens of microseconds a run. A reboot is an Event (`health.reboot`) that survives agent
restarts: the boot seen last is remembered in `state_dir/health/boot.json`, keyed by the kernel's
random `boot_id` (the boot time alone moves by a second or so when the clock is stepped).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from sentinel.core.files import write_json_atomic
from sentinel.core.model import Event, MetricSpec, Sample, freeze_fields
from sentinel.core.settings import Duration, field, positive
from sentinel.sources.base import Registration
from sentinel.sources.parsers.readers import READ_ERRORS_SPEC, FileReader, parse_key_values

log = structlog.get_logger("sentinel.collectors.health")

USER_HZ = 100  # /proc/stat counts in USER_HZ ticks, 100 on every Linux ABI
BOOT_FILE = Path("health") / "boot.json"
BOOT_TOLERANCE = 60.0  # without a boot_id, a boot time that moved this much is a new boot
# /proc/stat's cpu line, in order; guest time is already inside user and nice, so it is left out.
CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
IDLE_MODES = ("idle", "iowait")
# /proc/PID/stat state letters (proc(5)); anything else is counted as "other".
PROCESS_STATES = {
    "R": "running",
    "S": "sleeping",
    "D": "disk_sleep",
    "T": "stopped",
    "t": "stopped",
    "Z": "zombie",
    "I": "idle",
}
STATE_NAMES = ("running", "sleeping", "disk_sleep", "stopped", "zombie", "idle", "other")


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """`[collectors.health]`."""

    enabled: bool = True
    interval: Duration = field(Duration(15), check=positive)


METRICS = (
    MetricSpec("sentinel_cpus", "gauge", "Online logical CPUs."),
    MetricSpec(
        "sentinel_cpu_seconds_total", "counter", "CPU time spent in each mode, all CPUs summed.", ("mode",)
    ),
    MetricSpec(
        "sentinel_cpu_utilisation_ratio", "gauge", "Busy share of all CPUs since the previous run (0-1)."
    ),
    MetricSpec("sentinel_load1", "gauge", "1-minute load average."),
    MetricSpec("sentinel_load5", "gauge", "5-minute load average."),
    MetricSpec("sentinel_load15", "gauge", "15-minute load average."),
    MetricSpec("sentinel_load_per_core", "gauge", "5-minute load average divided by the online CPUs."),
    MetricSpec("sentinel_memory_total_bytes", "gauge", "Physical memory."),
    MetricSpec("sentinel_memory_available_bytes", "gauge", "Memory available without swapping."),
    MetricSpec("sentinel_memory_used_ratio", "gauge", "1 - available/total."),
    MetricSpec("sentinel_swap_total_bytes", "gauge", "Swap space."),
    MetricSpec("sentinel_swap_used_ratio", "gauge", "Swap in use (0 when there is no swap)."),
    MetricSpec("sentinel_processes", "gauge", "Processes by state (zombie, disk_sleep, ...).", ("state",)),
    MetricSpec("sentinel_filefd_allocated", "gauge", "File handles allocated by the kernel."),
    MetricSpec("sentinel_filefd_maximum", "gauge", "The kernel's file handle limit (fs.file-max)."),
    MetricSpec("sentinel_filefd_used_ratio", "gauge", "Allocated file handles over the limit."),
    MetricSpec("sentinel_boot_time_seconds", "gauge", "Boot time, seconds since the epoch."),
    READ_ERRORS_SPEC,
)


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """Cumulative seconds per mode and the number of online CPUs, from /proc/stat."""

    seconds: dict[str, float]
    cpus: int
    boot_time: float | None

    @property
    def busy(self) -> float:
        """Seconds not idle."""
        return sum(v for k, v in self.seconds.items() if k not in IDLE_MODES)

    @property
    def total(self) -> float:
        """All seconds."""
        return sum(self.seconds.values())


def parse_stat(text: str) -> CpuTimes:
    """The aggregate cpu line, the count of cpuN lines and btime of /proc/stat."""
    seconds: dict[str, float] = {}
    cpus = 0
    boot: float | None = None
    for line in text.splitlines():
        if line.startswith("cpu "):
            ticks = line.split()[1:]
            seconds = {mode: int(t) / USER_HZ for mode, t in zip(CPU_MODES, ticks, strict=False)}
        elif line.startswith("cpu"):
            cpus += 1
        elif line.startswith("btime "):
            boot = float(line.split()[1])
    if not seconds:
        raise ValueError("no aggregate cpu line")
    return CpuTimes(seconds, cpus, boot)


class HealthCollector:
    """Polled collector of CPU, memory, process and boot health."""

    name = "health"
    metrics: Sequence[MetricSpec] = METRICS

    def __init__(
        self,
        config: HealthConfig,
        *,
        state_dir: Path | None = None,
        proc_root: Path = Path("/proc"),
    ) -> None:
        self.config = config
        self.interval = float(config.interval)
        self._proc = proc_root
        self._reader = FileReader(self.name)
        self._boot_file = state_dir / BOOT_FILE if state_dir is not None else None
        self._last_boot = self._remembered_boot()
        self._previous = self._cpu_times()  # so the first run's utilisation covers a real interval

    def collect(self) -> Iterable[Sample | Event]:
        """One reading of everything; a file that cannot be read drops only its own metrics."""
        items: list[Sample | Event] = []
        times = self._cpu_times()
        if times is not None:
            items += self._cpu(times)
            items += self._boot(times.boot_time)
        items += self._load(times.cpus if times else 0)
        items += self._memory()
        items += self._processes()
        items += self._file_handles()
        items.append(self._reader.sample())
        return items

    # -- CPU and load -------------------------------------------------------------------------

    def _cpu_times(self) -> CpuTimes | None:
        text = self._reader.text(self._proc / "stat")
        if text is None:
            return None
        try:
            return parse_stat(text)
        except ValueError as exc:
            self._reader.garbage(self._proc / "stat", str(exc))
            return None

    def _cpu(self, times: CpuTimes) -> list[Sample]:
        out = [Sample.of("sentinel_cpus", times.cpus)]
        out += [Sample.of("sentinel_cpu_seconds_total", v, mode=m) for m, v in times.seconds.items()]
        previous, self._previous = self._previous, times
        if previous is not None:
            elapsed = times.total - previous.total
            if elapsed > 0:  # no tick passed (two runs in a row in a test): no fresh reading
                busy = (times.busy - previous.busy) / elapsed
                out.append(Sample.of("sentinel_cpu_utilisation_ratio", min(max(busy, 0.0), 1.0)))
        return out

    def _load(self, cpus: int) -> list[Sample]:
        text = self._reader.text(self._proc / "loadavg")
        if text is None:
            return []
        try:
            load1, load5, load15 = (float(x) for x in text.split()[:3])
        except ValueError:
            self._reader.garbage(self._proc / "loadavg", f"unexpected content {text[:40]!r}")
            return []
        out = [
            Sample.of("sentinel_load1", load1),
            Sample.of("sentinel_load5", load5),
            Sample.of("sentinel_load15", load15),
        ]
        if cpus:
            out.append(Sample.of("sentinel_load_per_core", load5 / cpus))
        return out

    # -- memory -------------------------------------------------------------------------------

    def _memory(self) -> list[Sample]:
        path = self._proc / "meminfo"
        text = self._reader.text(path)
        if text is None:
            return []
        info = parse_key_values(text)
        try:
            total = int(info["MemTotal"]) * 1024
            available = int(info["MemAvailable"]) * 1024
            swap_total = int(info.get("SwapTotal", "0")) * 1024
            swap_free = int(info.get("SwapFree", "0")) * 1024
        except (KeyError, ValueError) as exc:
            self._reader.garbage(path, f"missing or bad field {exc}")
            return []
        return [
            Sample.of("sentinel_memory_total_bytes", total),
            Sample.of("sentinel_memory_available_bytes", available),
            Sample.of("sentinel_memory_used_ratio", 1.0 - available / total if total else 0.0),
            Sample.of("sentinel_swap_total_bytes", swap_total),
            Sample.of(
                "sentinel_swap_used_ratio", (swap_total - swap_free) / swap_total if swap_total else 0.0
            ),
        ]

    # -- processes and file handles -----------------------------------------------------------

    def _processes(self) -> list[Sample]:
        counts = dict.fromkeys(STATE_NAMES, 0)
        try:
            entries = [e for e in self._proc.iterdir() if e.name.isdigit()]
        except OSError as exc:
            self._reader.garbage(self._proc, exc.strerror or str(exc))
            return []
        for entry in entries:
            text = self._reader.text(entry / "stat")  # None: the process exited meanwhile
            if text is None:
                continue
            # the command name may contain spaces and parentheses; the state follows the last ')'
            rest = text.rpartition(")")[2].split()
            if not rest:
                self._reader.garbage(entry / "stat", "no state field")
                continue
            counts[PROCESS_STATES.get(rest[0], "other")] += 1
        return [Sample.of("sentinel_processes", n, state=state) for state, n in counts.items()]

    def _file_handles(self) -> list[Sample]:
        path = self._proc / "sys" / "fs" / "file-nr"
        text = self._reader.text(path)
        if text is None:
            return []
        try:
            allocated, _unused, maximum = (int(x) for x in text.split()[:3])
        except ValueError:
            self._reader.garbage(path, f"unexpected content {text[:40]!r}")
            return []
        return [
            Sample.of("sentinel_filefd_allocated", allocated),
            Sample.of("sentinel_filefd_maximum", maximum),
            Sample.of("sentinel_filefd_used_ratio", allocated / maximum if maximum > 0 else 0.0),
        ]

    # -- boot ---------------------------------------------------------------------------------

    def _boot(self, boot_time: float | None) -> list[Sample | Event]:
        if boot_time is None:
            return []
        items: list[Sample | Event] = [Sample.of("sentinel_boot_time_seconds", boot_time)]
        boot_id = self._reader.text(self._proc / "sys" / "kernel" / "random" / "boot_id") or ""
        current = {"boot_id": boot_id, "boot_time": boot_time}
        last = self._last_boot
        if last is not None and self._is_new_boot(last, current):
            items.append(
                Event(
                    self.name,
                    "reboot",
                    "host",
                    boot_time,
                    freeze_fields({"previous_boot_time": _number(last.get("boot_time")), "boot_id": boot_id}),
                )
            )
        if last != current:
            self._last_boot = current
            self._remember_boot(current)
        return items

    @staticmethod
    def _is_new_boot(last: dict[str, object], current: dict[str, object]) -> bool:
        if last.get("boot_id") and current["boot_id"]:
            return last.get("boot_id") != current["boot_id"]
        previous, now = _number(last.get("boot_time")), _number(current["boot_time"])
        return previous is not None and now is not None and abs(now - previous) > BOOT_TOLERANCE

    def _remembered_boot(self) -> dict[str, object] | None:
        if self._boot_file is None:
            return None
        try:
            data = json.loads(self._boot_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None  # first start on this state_dir: nothing to compare with yet
        except (OSError, ValueError) as exc:
            self._reader.garbage(self._boot_file, str(exc))
            return None
        return data if isinstance(data, dict) else None

    def _remember_boot(self, current: dict[str, object]) -> None:
        if self._boot_file is None:
            return
        try:
            self._boot_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_json_atomic(self._boot_file, current)
        except OSError as exc:  # a full or read-only state_dir: this run still reported the boot
            log.warning("boot_state_not_saved", path=str(self._boot_file), error=exc.strerror or str(exc))


def _number(value: object) -> float | None:
    """A number read back from JSON, or None for anything else."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


COLLECTOR = Registration(
    "health", HealthConfig, build=lambda s, ctx: HealthCollector(s, state_dir=ctx.state_dir)
)
