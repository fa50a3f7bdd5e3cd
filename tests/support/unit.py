"""Run a command with exactly the credentials and private mounts a systemd unit file describes.

systemd is not PID 1 here, so the unit's sandbox is rebuilt from the file itself with util-linux:
`setpriv` for the user, groups, capability sets, NoNewPrivileges and SecureBits; `unshare -m`
plus mounts for the settings that change what a detector can *see*:

- PrivateTmp=yes: systemd bind-mounts /tmp/systemd-private-<id>-<unit>-<rand>/tmp over /tmp (and
  the same under /var/tmp), exactly what is done here (sentinel.sources.sight recognises it);
- PrivateDevices=yes: a new /dev (a tmpfs) holding only null, zero, full, random, urandom,
  tty, pts and the host's /dev/shm bound in, as systemd's mount_private_dev (src/core/
  namespace.c) builds it — so a scan of /dev/shm here looks at whatever that leaves visible;
- ProtectHome=yes|tmpfs, ProtectProc=, ProcSubset=, InaccessiblePaths=, TemporaryFileSystem=.

Write protections (ProtectSystem=, ReadOnlyPaths=) change nothing a detector reads and are not
rebuilt. Nothing here copies a value out of the unit: change the unit and the sandbox follows.
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import shlex
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# settings whose assignments accumulate; an empty assignment resets them (systemd.exec(5))
_LISTS = frozenset(
    {
        "SupplementaryGroups", "AmbientCapabilities", "CapabilityBoundingSet", "InaccessiblePaths",
        "TemporaryFileSystem", "ReadOnlyPaths", "ReadWritePaths", "SystemCallFilter", "SecureBits",
        "IPAddressAllow", "IPAddressDeny", "RestrictAddressFamilies", "StateDirectory", "Environment",
    }
)  # fmt: skip
_TRUE = frozenset({"yes", "true", "on", "1"})
_PRIVATE_DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
ALL_CAPABILITIES = frozenset(
    {
        "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
        "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
        "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
        "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
        "lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
        "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
    }
)  # fmt: skip
_SECUREBITS = {
    "keep-caps-locked": "keep_caps_locked",
    "no-setuid-fixup": "no_setuid_fixup",
    "no-setuid-fixup-locked": "no_setuid_fixup_locked",
    "noroot": "noroot",
    "noroot-locked": "noroot_locked",
}


@dataclass
class Unit:
    """The [Service] section of a unit file and its drop-ins, combined as systemd combines them."""

    name: str = "sentinel.service"
    values: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, unit: Path, dropins: Sequence[Path] = ()) -> Unit:
        """The unit file, then each drop-in in order (later assignments win or accumulate)."""
        parsed = cls(name=unit.name)
        for path in (unit, *sorted(dropins)):
            parsed.read(path.read_text(encoding="utf-8"))
        return parsed

    @classmethod
    def installed(cls, root: Path) -> Unit:
        """What an install into `root` laid out: the unit and its sentinel.service.d/ drop-ins."""
        unit = root / "etc/systemd/system/sentinel.service"
        return cls.parse(unit, list((root / "etc/systemd/system/sentinel.service.d").glob("*.conf")))

    def read(self, text: str) -> None:
        """Apply one file's assignments."""
        section, pending = "", ""
        for raw in text.splitlines():
            line = (pending + " " + raw.strip()).strip() if pending else raw.strip()
            pending = ""
            if line.endswith("\\"):
                pending = line[:-1]
                continue
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
            elif section == "Service" and "=" in line:
                key, _, value = line.partition("=")
                self.assign(key.strip(), value.strip())

    def assign(self, key: str, value: str) -> None:
        """One `Key=value` line."""
        if key not in _LISTS:
            self.values[key] = value
        elif value:
            self.lists.setdefault(key, []).append(value)
        else:
            self.lists[key] = []

    def get(self, key: str, default: str = "") -> str:
        """A single-valued setting."""
        return self.values.get(key, default)

    def flag(self, key: str) -> bool:
        """A boolean setting."""
        return self.get(key, "no").lower() in _TRUE

    def words(self, key: str) -> list[str]:
        """Every word of every assignment of a list setting."""
        return [w for line in self.lists.get(key, []) for w in line.split()]

    def capabilities(self, key: str) -> frozenset[str] | None:
        """A capability set in setpriv's spelling (`dac_read_search`); None when never set.

        Lines accumulate; a `~` line removes (starting from every capability if it comes first).
        """
        lines = self.lists.get(key)
        if lines is None:
            return None
        caps: set[str] | None = None
        for line in lines:
            names = {c.lower().removeprefix("cap_") for c in line.lstrip("~").split()}
            if line.startswith("~"):
                caps = (set(ALL_CAPABILITIES) if caps is None else caps) - names
            else:
                caps = (caps or set()) | names
        return frozenset(caps or ())


@dataclass(frozen=True)
class Credentials:
    """Who the unit's main process is."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    ambient: frozenset[str]
    bounding: frozenset[str] | None  # None: the unit leaves the bounding set alone
    no_new_privs: bool
    securebits: tuple[str, ...]


def _spare_id(taken: set[int], start: int) -> int:
    n = start
    while n in taken:
        n += 1
    return n


def credentials(unit: Unit) -> Credentials:
    """The unit's User/Group/SupplementaryGroups and capability settings, resolved on this host.

    An account the unit names but this host lacks (the installer creates `sentinel` on a real
    terminal) stands in as an unused uid/gid: no capability, no group beyond the unit's.
    """
    user, group = unit.get("User", "root"), unit.get("Group")
    try:
        account = pwd.getpwnam(user)
        uid, primary = account.pw_uid, account.pw_gid
    except KeyError:
        uid = _spare_id({p.pw_uid for p in pwd.getpwall()}, 61000 + os.getpid() % 1000)
        primary = uid
    try:
        gid = grp.getgrnam(group).gr_gid if group else primary
    except KeyError:
        gid = _spare_id({g.gr_gid for g in grp.getgrall()}, uid)
    return Credentials(
        uid=uid,
        gid=gid,
        groups=tuple(grp.getgrnam(name).gr_gid for name in unit.words("SupplementaryGroups")),
        ambient=unit.capabilities("AmbientCapabilities") or frozenset(),
        bounding=unit.capabilities("CapabilityBoundingSet"),
        no_new_privs=unit.flag("NoNewPrivileges"),
        securebits=tuple(unit.words("SecureBits")),
    )


def setpriv_argv(creds: Credentials) -> list[str]:
    """`setpriv ...` that becomes exactly these credentials before exec'ing what follows."""

    def caps(names: frozenset[str]) -> str:
        return ",".join(["-all", *(f"+{n}" for n in sorted(names))])

    argv = ["setpriv", f"--reuid={creds.uid}", f"--regid={creds.gid}"]
    argv.append(f"--groups={','.join(map(str, creds.groups))}" if creds.groups else "--clear-groups")
    # systemd raises ambient capabilities in the inheritable set too (the kernel requires it)
    argv += [f"--inh-caps={caps(creds.ambient)}", f"--ambient-caps={caps(creds.ambient)}"]
    if creds.bounding is not None:
        argv.append(f"--bounding-set={caps(creds.bounding)}")
    bits = [f"+{_SECUREBITS[b]}" for b in creds.securebits if b in _SECUREBITS]
    if bits:
        argv.append("--securebits=" + ",".join(bits))
    if creds.no_new_privs:
        argv.append("--no-new-privs")
    return argv


def _program_paths() -> tuple[Path, ...]:
    """Where the program under test lives: this checkout and its interpreter's environment."""
    return tuple(
        dict.fromkeys(Path(p).resolve() for p in (Path(__file__).parents[2], sys.prefix, sys.base_prefix))
    )


@dataclass
class Sandbox:
    """The unit's mount namespace and credentials around a command; `cleanup()` after use.

    `program` names the directories the command itself is run from. On a terminal they are
    /opt/sentinel, outside every private mount; a checkout cloned under /tmp (a CI runner's) would
    vanish behind PrivateTmp, so those are bound back into the private /tmp at the same place.
    """

    unit: Unit
    created: list[Path] = field(default_factory=list)
    program: tuple[Path, ...] = field(default_factory=_program_paths)

    def mount_script(self) -> list[str]:
        """Shell commands, run as root inside `unshare -m`, giving the unit's view of the host."""
        out = ["mount --make-rprivate /"]
        if self.unit.flag("PrivateTmp"):
            for top in ("/tmp", "/var/tmp"):
                private = Path(top) / f"systemd-private-{secrets.token_hex(8)}-{self.unit.name}-test" / "tmp"
                private.mkdir(parents=True, mode=0o700)
                private.chmod(0o1777)
                self.created.append(private.parent)
                out += self._keep_program_visible(Path(top), private)
                out.append(f"mount --rbind {shlex.quote(str(private))} {top}")
        if self.unit.flag("PrivateDevices"):
            out += self._private_dev()
        home = self.unit.get("ProtectHome", "no").lower()
        if home in _TRUE or home == "tmpfs":
            mode = "0000" if home in _TRUE else "0755"
            out += [
                f"mount -t tmpfs -o mode={mode} tmpfs {d}" for d in ("/home", "/root") if Path(d).is_dir()
            ]
        proc_opts = []
        if self.unit.get("ProtectProc", "default") != "default":
            proc_opts.append(f"hidepid={self.unit.get('ProtectProc')}")
        if self.unit.get("ProcSubset", "all") == "pid":
            proc_opts.append("subset=pid")
        if proc_opts:
            out.append(f"mount -t proc -o {','.join(proc_opts)} proc /proc")
        for word in self.unit.words("InaccessiblePaths"):
            path = Path(word.lstrip("-+"))
            if path.is_dir():
                out.append(f"mount -t tmpfs -o mode=0000 tmpfs {shlex.quote(str(path))}")
            elif path.exists():
                out.append(f"mount --bind /dev/null {shlex.quote(str(path))}")
        for spec in self.unit.words("TemporaryFileSystem"):
            out.append(f"mount -t tmpfs tmpfs {shlex.quote(spec.split(':', 1)[0])}")
        return out

    def _keep_program_visible(self, top: Path, private: Path) -> list[str]:
        """Bind the program's directories under `top` into its private replacement (see above)."""
        out = []
        for path in self.program:
            if path.is_relative_to(top) and path != top:
                inside = private / path.relative_to(top)
                inside.mkdir(parents=True, exist_ok=True)
                out.append(f"mount --bind {shlex.quote(str(path))} {shlex.quote(str(inside))}")
        return out

    def _private_dev(self) -> list[str]:
        """A fresh /dev as systemd's PrivateDevices=yes makes it: a tmpfs with the harmless
        nodes, the terminal's pts and the host's /dev/shm, moved over /dev."""
        staging = Path(tempfile.mkdtemp(prefix="sentinel-test-dev-", dir="/run"))
        self.created.append(staging)
        dev = shlex.quote(str(staging))
        out = [f"mount -t tmpfs -o mode=0755,nosuid,noexec tmpfs {dev}"]
        for node in _PRIVATE_DEV_NODES:
            out += [f"touch {dev}/{node}", f"mount --bind /dev/{node} {dev}/{node}"]
        for tree in ("shm", "pts"):
            out += [f"mkdir {dev}/{tree}", f"mount --bind /dev/{tree} {dev}/{tree}"]
        out += [f"ln -s pts/ptmx {dev}/ptmx", f"mount --move {dev} /dev"]
        return out

    def argv(self, command: Sequence[str]) -> list[str]:
        """`unshare -m sh -c '<mounts> && exec setpriv ... -- command'`."""
        inner = " && ".join(
            [
                *self.mount_script(),
                "exec " + shlex.join([*setpriv_argv(credentials(self.unit)), "--", *command]),
            ]
        )
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", inner]

    def cleanup(self) -> None:
        """Remove the private /tmp directories made for the namespace."""
        for path in self.created:
            for sub in sorted(path.rglob("*"), reverse=True):
                sub.rmdir() if sub.is_dir() and not sub.is_symlink() else sub.unlink()
            path.rmdir()
        self.created.clear()
