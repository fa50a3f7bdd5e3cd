"""What the processes detector reads of one process under `proc_root`, and its ancestry.

Each read is one small file or link (`stat`, `exe`, `cmdline`, `status`, `loginuid`) and may fail
at any moment: the process exits, or belongs to another user and this agent lacks
CAP_SYS_PTRACE. A failure is an empty answer, never an exception; the caller decides what it
means (exited before it could be read: `unresolved`; refused: the detector is blind).
"""

from __future__ import annotations

import errno
import json
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from sentinel.core.model import clean_text
from sentinel.core.redact import redact_argv

CMDLINE_MAX = 512
ARGV_READ = 4 * CMDLINE_MAX  # bytes of /proc/<pid>/cmdline read: a longer line is cut
PARENT_DEPTH = 4
UNSET_LOGINUID = 4294967295
REMEMBERED = 4096  # exec'd processes kept for the parent chains of their children


@dataclass(frozen=True, slots=True)
class Stat:
    """The fields of /proc/<pid>/stat the detector uses."""

    comm: str
    ppid: int
    start: int  # clock ticks after boot: with the pid, a process's identity
    cpu_ticks: int  # utime + stime


def read_stat(base: Path) -> Stat | None:
    """/proc/<pid>/stat, or None when the process is gone; ValueError when it is malformed."""
    try:
        text = (base / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    head, _, tail = text.rpartition(")")  # comm may itself contain spaces and parentheses
    fields = tail.split()
    try:
        return Stat(
            head.partition("(")[2], int(fields[1]), int(fields[19]), int(fields[11]) + int(fields[12])
        )
    except (IndexError, ValueError) as exc:
        raise ValueError(f"malformed {base / 'stat'}") from exc


def read_exe(base: Path) -> tuple[str, int]:
    """(the executable's path, 0) or ("", errno): ENOENT for a kernel thread or an exited
    process, EACCES for another user's process without CAP_SYS_PTRACE."""
    try:
        return str((base / "exe").readlink()), 0
    except OSError as exc:
        return "", exc.errno or errno.EIO


def read_argv(base: Path) -> list[str]:
    """The command line's arguments (empty for kernel threads and exited processes)."""
    try:
        raw = (base / "cmdline").read_bytes()[:ARGV_READ]
    except OSError:
        return []
    return [a.decode("utf-8", "surrogateescape") for a in raw.rstrip(b"\0").split(b"\0")] if raw else []


def read_ids(base: Path) -> tuple[int, int]:
    """(real uid, login uid); -1 for what cannot be read, and for an unset login uid."""
    uid = -1
    try:
        for line in (base / "status").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
                break
    except (OSError, IndexError, ValueError):
        pass
    try:
        login = int((base / "loginuid").read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        login = -1
    return uid, -1 if login == UNSET_LOGINUID else login


def argv_fields(argv: list[str]) -> tuple[str, str]:
    """(argv as a JSON array, the command line as one string): redacted, cut to CMDLINE_MAX."""
    masked = [clean_text(a) for a in redact_argv(argv)]
    kept: list[str] = []
    budget = CMDLINE_MAX
    for arg in masked:
        if budget <= 0:
            break
        kept.append(arg[:budget])
        budget -= len(arg) + 1
    return json.dumps(kept, ensure_ascii=False), " ".join(masked)[:CMDLINE_MAX]


class Lineage:
    """Recently exec'd processes (pid -> start, name, exe, ppid), so that a child's parent chain
    can be told even when a short-lived parent (`curl ... | sh`) has already exited."""

    def __init__(self, proc_root: Path, limit: int = REMEMBERED) -> None:
        self._proc_root = proc_root
        self._limit = limit
        self._known: OrderedDict[int, tuple[int, str, str, int]] = OrderedDict()

    def remember(self, pid: int, stat: Stat, exe: str) -> None:
        """Note one process as it was seen."""
        self._known[pid] = (stat.start, stat.comm, exe, stat.ppid)
        self._known.move_to_end(pid)
        while len(self._known) > self._limit:
            self._known.popitem(last=False)

    def chain(self, ppid: int) -> str:
        """`812 bash (/usr/bin/bash) < 640 sshd (/usr/sbin/sshd) < 1 systemd`: up to PARENT_DEPTH."""
        links: list[str] = []
        visited: set[int] = set()
        pid = ppid
        while pid > 0 and pid not in visited and len(links) < PARENT_DEPTH:
            visited.add(pid)
            base = self._proc_root / str(pid)
            try:
                stat = read_stat(base)
            except ValueError:
                stat = None
            exe = read_exe(base)[0] if stat is not None else ""
            if stat is None or not exe:
                known = self._known.get(pid)
                if known is not None and (stat is None or known[0] == stat.start):
                    _, comm, exe, parent = known
                    stat = Stat(comm, parent, known[0], 0)
            if stat is None:
                links.append(f"{pid} (exited)")
                break
            links.append(f"{pid} {clean_text(stat.comm)}" + (f" ({clean_text(exe)})" if exe else ""))
            pid = stat.ppid
        return " < ".join(links)
