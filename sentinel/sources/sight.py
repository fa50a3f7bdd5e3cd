"""What this process can see of the host: the facts behind every detector's `down` reason.

A detector that lacks a source or a privilege must say so, never report itself up (DESIGN §5).
The facts it needs, all read without privilege:

- the effective capabilities (`CapEff` in /proc/self/status): CAP_SYS_PTRACE lets a process read
  other users' /proc/<pid>/exe and fd links, CAP_DAC_READ_SEARCH lets it list their fd
  directories and read files it does not own (tests/deploy measures both against the unit);
- whether /proc hides other users' processes (`hidepid=`, systemd's ProtectProc=) or everything
  but the process directories (`subset=pid`, ProcSubset=pid), from /proc/self/mountinfo;
- whether a directory is this service's private copy rather than the host's: systemd's
  PrivateTmp= bind-mounts /tmp/systemd-private-<id>-<unit>-<rand>/tmp over /tmp (and likewise
  /var/tmp), which mountinfo shows as the mount's root. (PrivateDevices= binds the host's
  /dev/shm into its private /dev: /dev/shm stays the host's.)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CAP_DAC_READ_SEARCH = 2
CAP_NET_ADMIN = 12
CAP_SYS_PTRACE = 19
CAPABILITY_NAMES = {
    CAP_DAC_READ_SEARCH: "CAP_DAC_READ_SEARCH",
    CAP_NET_ADMIN: "CAP_NET_ADMIN",
    CAP_SYS_PTRACE: "CAP_SYS_PTRACE",
}
PRIVATE_MARK = "/systemd-private-"
SELF_STATUS = Path("/proc/self/status")
SELF_MOUNTINFO = Path("/proc/self/mountinfo")


def effective_capabilities(status: Path = SELF_STATUS) -> int:
    """The effective capability mask of this process (0 when it cannot be read)."""
    try:
        for line in status.read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, IndexError, ValueError):
        pass
    return 0


def missing_capabilities(needed: Iterable[int], status: Path = SELF_STATUS) -> list[str]:
    """The names of the `needed` capabilities this process does not have in effect."""
    mask = effective_capabilities(status)
    return [CAPABILITY_NAMES.get(cap, f"capability {cap}") for cap in needed if not mask & (1 << cap)]


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of /proc/self/mountinfo."""

    point: str
    root: str  # the mounted directory inside its file system ("/" unless a bind mount)
    fstype: str
    options: frozenset[str]  # per-mount and super-block options together


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040 ...)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts(mountinfo: Path = SELF_MOUNTINFO) -> list[Mount]:
    """This process's mounts, in mount order (later mounts stack over earlier ones)."""
    try:
        text = mountinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields or len(fields) < 6:
            continue
        dash = fields.index("-")
        if len(fields) < dash + 3:
            continue
        options = {*fields[5].split(","), *(fields[dash + 3].split(",") if len(fields) > dash + 3 else ())}
        out.append(Mount(_unescape(fields[4]), _unescape(fields[3]), fields[dash + 1], frozenset(options)))
    return out


def mount_of(path: str, table: list[Mount]) -> Mount | None:
    """The mount a path lives on: the last-mounted one with the longest matching mount point."""
    best: Mount | None = None
    for mount in table:
        point = mount.point.rstrip("/") + "/"
        if (path.rstrip("/") + "/").startswith(point) and (
            best is None or len(mount.point) >= len(best.point)
        ):
            best = mount
    return best


def private_copy(path: str, table: list[Mount]) -> bool:
    """Whether `path` is inside this service's private /tmp or /var/tmp (systemd PrivateTmp=)."""
    mount = mount_of(path, table)
    return mount is not None and PRIVATE_MARK in mount.root


def private_copies(paths: Iterable[str], table: list[Mount] | None = None) -> list[str]:
    """The paths among `paths` that are private copies, not the host's directories."""
    table = mounts() if table is None else table
    return [p for p in paths if private_copy(p, table)]


def proc_hides(proc_root: Path, table: list[Mount] | None = None) -> str:
    """Why /proc under `proc_root` shows less than the host's processes ("" when it does not)."""
    table = mounts() if table is None else table
    mount = mount_of(str(proc_root), table)
    if mount is None or mount.fstype != "proc":
        return ""
    hidden = sorted(
        o for o in mount.options if o.startswith("hidepid=") and o not in ("hidepid=0", "hidepid=off")
    )
    subset = sorted(o for o in mount.options if o.startswith("subset="))
    return ", ".join(hidden + subset)


def other_users_visible(proc_root: Path, euid: int | None = None) -> bool | None:
    """Whether /proc shows any process of another user (None: this process is root, or /proc
    cannot be listed). A non-root agent that sees none is looking at a hidden /proc."""
    uid = os.geteuid() if euid is None else euid
    if uid == 0:
        return None
    try:
        entries = [e for e in os.scandir(proc_root) if e.name.isdigit()]
    except OSError:
        return None
    for entry in entries:
        try:
            if entry.stat(follow_symlinks=False).st_uid != uid:
                return True
        except OSError:
            continue
    return False
