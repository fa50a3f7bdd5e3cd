"""Reading a process's CPU time, RSS and open file descriptors from /proc (for overhead figures)."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, proc: Path = Path("/proc")) -> float:
    """User + system CPU seconds the process has used (fields 14 and 15 of /proc/PID/stat)."""
    text = (proc / str(pid) / "stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int, proc: Path = Path("/proc")) -> int:
    """Resident set size from /proc/PID/status (VmRSS, in kB)."""
    for line in (proc / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for pid {pid}")


def open_fds(pid: int, proc: Path = Path("/proc")) -> int:
    """Number of open file descriptors."""
    return sum(1 for _ in (proc / str(pid) / "fd").iterdir())
