"""Required services: the systemd units and processes a terminal cannot work without.

Units are asked in one `systemctl show -p Id -p ActiveState -- UNIT...` call per run, under a
timeout (a wedged D-Bus must not hang the collector); "active" and "reloading" count as up.
Processes are found under `proc_root` by exact name (`comm`) or by a regular expression over the
command line, for applications without a unit (a teller application started from a session).

When systemctl cannot answer (no systemd, timeout), the unit series are left out rather than
reported as down — a broken probe is not a dead teller application — and the failure is counted
in `sentinel_service_check_failures_total` and logged.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from sentinel.core.model import MetricSpec, Sample
from sentinel.core.settings import Duration, KeyPath, check_regexes, field, non_empty, positive
from sentinel.sources.base import Registration
from sentinel.sources.parsers.readers import READ_ERRORS_SPEC, FileReader

log = structlog.get_logger("sentinel.collectors.services")

UP_STATES = ("active", "reloading")


def _regex(value: str) -> str | None:
    return check_regexes((value,))


@dataclass(frozen=True, slots=True)
class ProcessCheck:
    """One `[[collectors.services.processes]]` entry: a process that must be running."""

    name: str = field(check=non_empty)  # the `service` label value
    comm: str = ""  # exact process name, as in /proc/PID/comm (at most 15 characters)
    cmdline: str = field("", check=_regex)  # or: a regex searched in the command line
    min_count: int = field(1, check=positive)

    def validate(self) -> list[tuple[KeyPath, str]]:
        """Exactly one way of finding the process."""
        if bool(self.comm) == bool(self.cmdline):
            return [((), 'needs exactly one of "comm" or "cmdline"')]
        return []


@dataclass(frozen=True, slots=True)
class ServicesConfig:
    """`[collectors.services]`."""

    enabled: bool = True
    interval: Duration = field(Duration(30), check=positive)
    units: tuple[str, ...] = ()
    processes: tuple[ProcessCheck, ...] = ()
    systemctl: str = field("systemctl", check=non_empty)
    timeout: Duration = field(Duration(5), check=positive)

    def validate(self) -> list[tuple[KeyPath, str]]:
        """Service names are label values: each once."""
        names = list(self.units) + [p.name for p in self.processes]
        repeated = sorted({n for n in names if names.count(n) > 1})
        return [((), f'service "{n}" is listed twice') for n in repeated]


METRICS = (
    MetricSpec(
        "sentinel_service_up",
        "gauge",
        "1 when a required unit is active or a required process runs (kind: unit or process).",
        ("service", "kind"),
    ),
    MetricSpec(
        "sentinel_service_processes", "gauge", "Running processes of a required process.", ("service",)
    ),
    MetricSpec(
        "sentinel_service_check_failures_total", "counter", "Runs in which systemctl could not answer."
    ),
    READ_ERRORS_SPEC,
)


def parse_show(text: str, count: int) -> list[str]:
    """ActiveState of each unit, in the order asked (systemctl prints one block per unit)."""
    states: list[str] = []
    for block in text.strip().split("\n\n"):
        values = dict(line.partition("=")[::2] for line in block.splitlines() if "=" in line)
        states.append(values.get("ActiveState", ""))
    if len(states) != count:
        raise ValueError(f"expected {count} unit blocks, got {len(states)}")
    return states


class ServicesCollector:
    """Polled collector of required units and processes."""

    name = "services"
    metrics: Sequence[MetricSpec] = METRICS

    def __init__(self, config: ServicesConfig, *, proc_root: Path = Path("/proc")) -> None:
        self.config = config
        self.interval = float(config.interval)
        self._proc = proc_root
        self._reader = FileReader(self.name)
        self._patterns = {p.name: re.compile(p.cmdline) for p in config.processes if p.cmdline}
        self.check_failures = 0
        self._last_problem = ""

    def collect(self) -> Iterable[Sample]:
        """One reading of every required unit and process."""
        out = self._units() + self._processes()
        out.append(Sample.of("sentinel_service_check_failures_total", self.check_failures))
        out.append(self._reader.sample())
        return out

    # -- units --------------------------------------------------------------------------------

    def _units(self) -> list[Sample]:
        units = self.config.units
        if not units:
            return []
        try:
            states = self._unit_states(units)
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            self._failed(str(exc))
            return []
        self._last_problem = ""
        return [
            Sample.of("sentinel_service_up", 1 if state in UP_STATES else 0, service=unit, kind="unit")
            for unit, state in zip(units, states, strict=True)
        ]

    def _unit_states(self, units: Sequence[str]) -> list[str]:
        """ActiveState per unit; raises when systemctl cannot answer."""
        command = [self.config.systemctl, "show", "--no-pager", "-p", "Id", "-p", "ActiveState", "--", *units]
        result = subprocess.run(  # noqa: S603 - a fixed argv, unit names as arguments, no shell
            command, capture_output=True, text=True, timeout=self.config.timeout, check=False
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
            raise ValueError(f"systemctl: {last}")
        return parse_show(result.stdout, len(units))

    def _failed(self, problem: str) -> None:
        self.check_failures += 1
        if problem != self._last_problem:  # one line when it starts failing, not one per run
            self._last_problem = problem
            log.warning("unit_check_failed", collector=self.name, error=problem)

    # -- processes ----------------------------------------------------------------------------

    def _processes(self) -> list[Sample]:
        checks = self.config.processes
        if not checks:
            return []
        counts = dict.fromkeys((c.name for c in checks), 0)
        want_cmdline = bool(self._patterns)
        try:
            pids = [p for p in self._proc.iterdir() if p.name.isdigit()]
        except OSError as exc:
            self._reader.garbage(self._proc, exc.strerror or str(exc))
            return []
        for pid in pids:
            comm = self._reader.text(pid / "comm")
            if comm is None:
                continue  # exited meanwhile
            cmdline = self._cmdline(pid) if want_cmdline else ""
            for check in checks:
                if (check.comm and comm == check.comm) or (
                    check.cmdline and self._patterns[check.name].search(cmdline)
                ):
                    counts[check.name] += 1
        out: list[Sample] = []
        for check in checks:
            n = counts[check.name]
            out.append(Sample.of("sentinel_service_processes", n, service=check.name))
            out.append(
                Sample.of(
                    "sentinel_service_up",
                    1 if n >= check.min_count else 0,
                    service=check.name,
                    kind="process",
                )
            )
        return out

    def _cmdline(self, pid: Path) -> str:
        try:
            raw = (pid / "cmdline").read_bytes()
        except OSError:
            return ""  # exited meanwhile, or a kernel thread
        return raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")


COLLECTOR = Registration("services", ServicesConfig, build=lambda s, _ctx: ServicesCollector(s))
