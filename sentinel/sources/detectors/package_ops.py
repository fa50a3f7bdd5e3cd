"""Package operations: what one settled run of the package manager did, who ran it, and which
running processes it left on replaced executables.

An operation is everything between the package database starting to move and settling again
(the lock free and nothing written for `settle` seconds): one `apt-get upgrade` with its several
dpkg runs is one operation. It is assembled from three sources, each optional:

- the inventory before and after (always): installs, removals, version changes, rewritten lists;
- the manager's log since the last look (dpkg.log): exact times, reinstalls, the order;
- the front end's log (apt history.log `Requested-By`, `Commandline`) and, failing that, the
  process seen holding the lock (its login uid survives sudo, its command line).
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentinel.core.model import clean_text
from sentinel.core.redact import redact_text
from sentinel.core.timefmt import iso
from sentinel.sources.detectors.package_index import Diff
from sentinel.sources.parsers.packages import LoggedAction, Transaction

UNSET_LOGINUID = 4294967295
CMDLINE_MAX = 300
SLACK = 2.0  # seconds before the first logged action a file may carry (log times are whole seconds)
ACTIONS = ("install", "upgrade", "downgrade", "reinstall", "remove")


@dataclass(frozen=True, slots=True)
class PackageChange:
    """What an operation did to one package."""

    key: str  # name:arch
    action: str  # install | upgrade | downgrade | reinstall | remove
    old: str
    new: str

    @property
    def name(self) -> str:
        """The package name without the architecture."""
        return self.key.partition(":")[0]

    def describe(self) -> str:
        """`upgrade openssl 3.0.16 -> 3.0.19`."""
        if self.action == "install":
            return f"install {self.name} {self.new}"
        if self.action == "remove":
            return f"remove {self.name} {self.old}"
        if self.action == "reinstall":
            return f"reinstall {self.name} {self.new}"
        return f"{self.action} {self.name} {self.old} -> {self.new}"

    def to_json(self) -> dict[str, str]:
        """For the record's `change.packages`."""
        name, _, arch = self.key.partition(":")
        return {"name": name, "arch": arch, "action": self.action, "old": self.old, "new": self.new}


@dataclass(frozen=True, slots=True)
class Holder:
    """The process seen holding the package manager's lock, and whose it is."""

    pid: int
    comm: str = ""
    cmdline: str = ""
    uid: int | None = None
    loginuid: int | None = None
    sudo_user: str = ""

    @property
    def user(self) -> str:
        """The person: login uid (kept across sudo), else SUDO_USER, else the uid's name."""
        if self.loginuid is not None:
            return _name(self.loginuid)
        if self.sudo_user:
            return self.sudo_user
        return _name(self.uid) if self.uid is not None else ""


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def read_holder(proc_root: Path, pid: int) -> Holder:
    """What /proc says about `pid` (whatever cannot be read stays empty)."""
    base = proc_root / str(pid)
    holder = Holder(pid)
    try:
        comm = (base / "comm").read_text(encoding="utf-8", errors="replace").strip()
        raw = (base / "cmdline").read_bytes()[: 4 * CMDLINE_MAX]
        cmdline = raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")[:CMDLINE_MAX]
        holder = Holder(pid, clean_text(comm), clean_text(cmdline))
        uid = next(
            int(line.split()[1])
            for line in (base / "status").read_text(encoding="utf-8").splitlines()
            if line.startswith("Uid:")
        )
        loginuid = int((base / "loginuid").read_text(encoding="ascii").strip() or UNSET_LOGINUID)
        holder = Holder(
            pid, holder.comm, holder.cmdline, uid, None if loginuid == UNSET_LOGINUID else loginuid
        )
        environ = (base / "environ").read_bytes()
    except (OSError, ValueError, StopIteration):
        return holder
    sudo = next(
        (v for k, _, v in (e.partition(b"=") for e in environ.split(b"\0")) if k == b"SUDO_USER"), b""
    )
    return Holder(pid, holder.comm, holder.cmdline, holder.uid, holder.loginuid, clean_text(sudo.decode()))


@dataclass(slots=True)
class Operation:
    """One settled run of the package manager."""

    id: str
    tool: str
    start: float
    end: float
    changes: tuple[PackageChange, ...]
    written: frozenset[str]  # paths of the installed and replaced packages' new lists
    removed: frozenset[str]  # paths that left with a removal or a new version
    owners: Mapping[str, str]  # watched path -> package key (new lists and removed ones)
    dirs: frozenset[str] = frozenset()  # the directories among written and removed (not listed)
    how: str = "realtime"  # or "startup": it ran while the agent was down
    user: str = ""
    command: str = ""
    actor: dict[str, Any] = field(default_factory=dict)
    restart: tuple[str, ...] = ()
    verified: set[str] = field(default_factory=set)  # files the integrity monitor saw and checked
    unowned: set[str] = field(default_factory=set)  # written during it, no package's (from FIM)

    def window(self, settle: float) -> tuple[float, float]:
        """The times a file this operation wrote may carry."""
        return self.start - SLACK, self.end + settle

    @property
    def summary(self) -> str:
        """`install a 1.0; upgrade b 1.0 -> 1.1` (at most five, then a count)."""
        parts = [c.describe() for c in self.changes[:5]]
        if len(self.changes) > 5:
            parts.append(f"and {len(self.changes) - 5} more")
        return "; ".join(parts)

    def details(self, files_max: int) -> dict[str, Any]:
        """The record's `change` object."""
        written = sorted(self.written - self.dirs)
        removed = sorted(self.removed - self.written - self.dirs)
        return {
            "operation": self.id,
            "tool": self.tool,
            "how": self.how,
            "started": iso(self.start),
            "ended": iso(self.end),
            "packages": [c.to_json() for c in self.changes],
            "files": written[:files_max],
            "files_total": len(written),
            "removed_files": removed[:files_max],
            "removed_total": len(removed),
            "verified_files": len(self.verified),
            "unowned_files": sorted(self.unowned)[:files_max],
            "user": self.user,
            "command": self.command,
            "actor": self.actor,
            "restart": list(self.restart),
        }


def _action(old: str, new: str, compare: Callable[[str, str], int]) -> str:
    if not old:
        return "install"
    if not new:
        return "remove"
    order = compare(old, new)
    return "reinstall" if order == 0 else "upgrade" if order < 0 else "downgrade"


def changes_of(
    diff: Diff, logged: Sequence[LoggedAction], compare: Callable[[str, str], int]
) -> tuple[PackageChange, ...]:
    """Per package, what the operation did: the inventory is the truth for where it ended,
    the log for where it started (and for reinstalls, which leave the version as it was)."""
    first_old: dict[str, str] = {}
    for action in logged:
        if action.action in ("install", "upgrade", "remove", "purge"):
            first_old.setdefault(action.package, action.old)
    out: dict[str, PackageChange] = {}
    for pkg in diff.installed:
        old = first_old.get(pkg.key, "")
        out[pkg.key] = PackageChange(pkg.key, _action(old, pkg.version, compare), old, pkg.version)
    for before, now in diff.changed:
        old = first_old.get(now.key, before.version)
        out[now.key] = PackageChange(now.key, _action(old, now.version, compare), old, now.version)
    for pkg in diff.removed:
        out[pkg.key] = PackageChange(pkg.key, "remove", pkg.version, "")
    return tuple(out[k] for k in sorted(out))


def who(
    start: float, end: float, transactions: Iterable[Transaction], holders: Sequence[Holder]
) -> tuple[str, str, dict[str, Any]]:
    """(user, command, actor) of an operation: apt's record first, then the lock holder."""
    apt = next(
        (t for t in transactions if t.start <= end + SLACK and (t.end or end) >= start - SLACK),
        None,
    )
    holder = holders[0] if holders else None
    user = (apt.user if apt else "") or (holder.user if holder else "")
    command = redact_text((apt.commandline if apt else "") or (holder.cmdline if holder else ""))
    actor: dict[str, Any] = {"source": "os", "id": f"os:{user}" if user else "", "display": user}
    if holder is not None:
        basis = "loginuid" if holder.loginuid is not None else "sudo" if holder.sudo_user else "uid"
        actor |= {
            "uid": holder.uid,
            "loginuid": holder.loginuid,
            "sudo_user": holder.sudo_user,
            "basis": basis,
        }
    if apt is not None and apt.user:
        actor["basis"] = "apt Requested-By"
    if apt is not None and apt.uid is not None:
        actor["requested_by_uid"] = apt.uid
    return clean_text(user), clean_text(command), actor


def assemble(
    *,
    op_id: str,
    tool: str,
    diff: Diff,
    logged: Sequence[LoggedAction],
    transactions: Sequence[Transaction],
    holders: Sequence[Holder],
    window: tuple[float, float],
    new_paths: Callable[[str], list[str]],
    under: Callable[[str], bool],
    compare: Callable[[str, str], int],
    how: str,
) -> Operation | None:
    """The operation the diff and logs describe, or None when no package changed."""
    changes = changes_of(diff, logged, compare)
    if not changes:
        return None
    times = [a.time for a in logged]
    start = min(times) if times else window[0]
    # realtime: the polls saw the last write; at start-up the log's last line is the best bound
    end = max(times) + 1.0 if times and how == "startup" else max([*times, window[1]])  # whole seconds
    written: set[str] = set()
    removed: set[str] = set()
    dirs: set[str] = set()
    owners: dict[str, str] = {}
    for change in changes:
        new = [] if change.action == "remove" else new_paths(change.key)
        old = diff.old_paths.get(change.key, [])
        written.update(new)
        gone = set(old) - set(new)
        removed |= gone
        dirs |= _directories(new) | _directories(old)
        for path in (*new, *gone):
            if under(path):
                owners[path] = change.key
    user, command, actor = who(start, end, transactions, holders)
    return Operation(
        op_id,
        tool,
        start,
        end,
        changes,
        frozenset(written),
        frozenset(removed),
        owners,
        frozenset(dirs),
        how=how,
        user=user,
        command=command,
        actor=actor,
    )


def _directories(paths: Sequence[str]) -> set[str]:
    """The paths of a file list that are directories (the parents of other entries)."""
    listed = set(paths)
    return {parent for p in paths if (parent := p.rpartition("/")[0]) in listed}


def stale_processes(proc_root: Path, replaced: frozenset[str], canonical: Callable[[str], str]) -> list[str]:
    """Rectification items: processes still running an executable the operation replaced or
    removed (`Restart ssh.service: sshd (pid 812) still runs the old /usr/sbin/sshd`)."""
    by_unit: dict[str, list[str]] = {}
    try:
        pids = [e.name for e in os.scandir(proc_root) if e.name.isdigit()]
    except OSError:
        return []
    for pid in pids:
        base = proc_root / pid
        try:
            exe = str((base / "exe").readlink())
        except OSError:
            continue
        if not exe.endswith(" (deleted)"):
            continue
        path = canonical(exe.removesuffix(" (deleted)"))
        if path not in replaced:
            continue
        comm = _read(base / "comm").strip() or pid
        unit = _unit(_read(base / "cgroup"))
        by_unit.setdefault(unit or f"pid {pid}", []).append(
            f"{clean_text(comm)} (pid {pid}) runs the old {path}"
        )
    items = []
    for unit, seen in sorted(by_unit.items()):
        if unit.startswith("pid "):
            items.append(f"Restart {seen[0]}")
        else:
            items.append(f"Restart {unit} (systemctl restart {unit}): {'; '.join(seen[:5])}")
    return items


class DirectoryResolver:
    """`path` with its directory resolved through symlinks (cached per directory, bounded)."""

    def __init__(self) -> None:
        self._dirs: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        head, _, name = path.rpartition("/")
        real = self._dirs.get(head)
        if real is None:
            real = os.path.realpath(head or "/")
            if len(self._dirs) > 10_000:
                self._dirs.clear()
            self._dirs[head] = real
        return f"{real.rstrip('/')}/{name}" if name else real


def process_start(proc_root: Path, pid: int) -> float | None:
    """Wall-clock start of a process (from /proc/<pid>/stat and the boot time), or None."""
    try:
        stat = (proc_root / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
        ticks = int(stat.rpartition(")")[2].split()[19])
        btime = next(
            int(line.split()[1])
            for line in (proc_root / "stat").read_text(encoding="ascii").splitlines()
            if line.startswith("btime ")
        )
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return btime + ticks / os.sysconf("SC_CLK_TCK")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _unit(cgroup: str) -> str:
    """The systemd service of a process from /proc/<pid>/cgroup (`0::/system.slice/ssh.service`)."""
    for line in cgroup.splitlines():
        path = line.rpartition(":")[2]
        for part in reversed(path.split("/")):
            if part.endswith(".service"):
                return clean_text(part)
    return ""
