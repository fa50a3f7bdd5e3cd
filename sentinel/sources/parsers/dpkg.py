"""dpkg and apt, read directly: the status file, each package's file list and checksums, dpkg.log
and apt's history.log (no dpkg-query: as fast on this machine, no fork, any admin directory —
docs/change.md has the measurement).

Formats (dpkg 1.21, apt 2.6; deb-control(5), dpkg(1) "log", apt's history.log):

- `status`: RFC 822-style paragraphs separated by blank lines, continuation lines indented.
  `Status: want flag state`; a package is installed when the state is `installed`.
- `info/<pkg>[:<arch>].list`: one absolute path per line, directories included (`/.` first);
  `.md5sums`: `<32 hex>  <path without the leading slash>` for regular files (no conffiles:
  their checksums are the status paragraph's `Conffiles:`).
- dpkg.log: `YYYY-MM-DD HH:MM:SS <action> <pkg>:<arch> <old> <new>` in local time, `<none>` for
  no version; also `status ...`, `startup ...`, `trigproc ...` lines (skipped here).
- history.log: blocks of `Start-Date:`, `Commandline:`, `Requested-By: user (uid)`,
  `Install:`/`Upgrade:`/`Remove:`/`Purge:`/`Reinstall:`/`Downgrade:` lists of
  `pkg:arch (version[, version][, automatic])` and `End-Date:`.

`dpkg --root=DIR` keeps its database in DIR/var/lib/dpkg and its files in DIR, but writes the log
named in /etc/dpkg/dpkg.cfg (the system's /var/log/dpkg.log) unless `--log` says otherwise.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sentinel.sources.parsers.packages import LoggedAction, Package, Transaction, lock_holder

_FIELD = re.compile(rb"^(Package|Status|Version|Architecture|Source):[ \t]*(.*)$", re.M)
_LOG = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (install|upgrade|remove|purge|configure) (\S+) (\S+) (\S+)$"
)
_APT_ITEM = re.compile(r"([^\s,()]+) \(([^)]*)\)")
_APT_VERBS = {"Install", "Upgrade", "Remove", "Purge", "Reinstall", "Downgrade"}
TEMP_SUFFIXES = (".dpkg-new", ".dpkg-tmp")
"""Names dpkg writes next to a file while it replaces it (unpack, then rename into place)."""


def parse_status(data: bytes) -> tuple[list[Package], dict[str, dict[str, str]]]:
    """The installed packages and, per package key, its conffiles (path -> md5)."""
    packages: list[Package] = []
    conffiles: dict[str, dict[str, str]] = {}
    for para in data.split(b"\n\n"):
        fields = dict(_FIELD.findall(para))
        name = fields.get(b"Package")
        if not name or not fields.get(b"Status", b"").endswith(b" installed"):
            continue
        source = fields.get(b"Source", b"").split(b" ", 1)[0]  # "openssh (1:9.2p1-2)" carries a version
        pkg = Package(
            name.decode("utf-8", "replace"),
            fields.get(b"Version", b"").decode("utf-8", "replace"),
            fields.get(b"Architecture", b"").decode("utf-8", "replace"),
            source.decode("utf-8", "replace"),
        )
        packages.append(pkg)
        if b"\nConffiles:" in para:
            conffiles[pkg.key] = _conffiles(para)
    return packages, conffiles


def _conffiles(para: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    inside = False
    for line in para.split(b"\n"):
        if line.startswith(b"Conffiles:"):
            inside = True
        elif inside and line.startswith(b" "):
            parts = line.split()
            if len(parts) >= 2 and len(parts[1]) == 32:
                out[parts[0].decode("utf-8", "surrogateescape")] = parts[1].decode("ascii", "replace")
        elif inside:
            break
    return out


def iter_md5sums(data: bytes) -> Iterator[tuple[str, str]]:
    """`info/<pkg>.md5sums` -> (absolute path, md5 hex) pairs, one line at a time."""
    for line in data.splitlines():
        digest, sep, path = line.partition(b"  ")
        if sep and len(digest) == 32:
            yield "/" + path.decode("utf-8", "surrogateescape").lstrip("/"), digest.decode("ascii")


def parse_md5sums(data: bytes) -> dict[str, str]:
    """`info/<pkg>.md5sums` -> {absolute path: md5 hex}."""
    return dict(iter_md5sums(data))


def iter_list(data: bytes) -> Iterator[str]:
    """`info/<pkg>.list` -> its paths (without `/.`), one line at a time."""
    for line in data.splitlines():
        if line.startswith(b"/") and line != b"/.":
            yield line.decode("utf-8", "surrogateescape")


def parse_list(data: bytes) -> list[str]:
    """`info/<pkg>.list` -> its paths (without `/.`)."""
    return list(iter_list(data))


def _local(text: str) -> float | None:
    try:
        return datetime.strptime(" ".join(text.split()), "%Y-%m-%d %H:%M:%S").timestamp()
    except ValueError:
        return None


def parse_dpkg_log(lines: Iterable[str]) -> Iterator[LoggedAction]:
    """The action lines of dpkg.log (install, upgrade, remove, purge, configure)."""
    for line in lines:
        m = _LOG.match(line.rstrip("\n"))
        if m is None:
            continue
        when, action, pkg, old, new = m.groups()
        at = _local(when)
        if at is None:
            continue
        yield LoggedAction(at, action, pkg, "" if old == "<none>" else old, "" if new == "<none>" else new)


def parse_apt_history(text: str) -> list[Transaction]:
    """Each block of history.log (one still running has no `end`)."""
    out: list[Transaction] = []
    current: Transaction | None = None
    for raw in text.splitlines():
        key, sep, value = raw.partition(": ")
        if not sep:
            continue
        value = value.strip()
        if key == "Start-Date":
            start = _local(value)
            current = Transaction(start) if start is not None else None
            if current is not None:
                out.append(current)
        elif current is None:
            continue
        elif key == "End-Date":
            current.end = _local(value)
        elif key == "Commandline":
            current.commandline = value
        elif key == "Requested-By":
            name, _, uid = value.partition(" (")
            current.user = name.strip()
            current.uid = int(uid.rstrip(")")) if uid.rstrip(")").isdigit() else None
        elif key in _APT_VERBS:
            current.actions += [(key.lower(), *item) for item in _apt_items(value)]
    return out


def _apt_items(value: str) -> Iterator[tuple[str, str, str]]:
    """`a:amd64 (1.0, 1.1), b:amd64 (2.0, automatic)` -> (package, old, new)."""
    for m in _APT_ITEM.finditer(value):
        versions = [v.strip() for v in m.group(2).split(",") if v.strip() != "automatic"]
        if len(versions) >= 2:
            yield m.group(1), versions[0], versions[1]
        elif versions:
            yield m.group(1), "", versions[0]


def _order(ch: str) -> int:
    if ch == "~":
        return -1
    if ch.isalpha():
        return ord(ch)
    return ord(ch) + 256


def _compare_part(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return -1 if ac < bc else 1
            i, j = i + 1, j + 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        first = 0
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            first = first or (a[i] > b[j]) - (a[i] < b[j])
            i, j = i + 1, j + 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first:
            return first
    return 0


def _split_version(version: str) -> tuple[int, str, str]:
    epoch, colon, rest = version.partition(":")
    if not colon or not epoch.isdigit():
        epoch, rest = "0", version
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, ""
    return int(epoch), upstream, revision


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as Debian version `a` sorts before, equal to or after `b` (deb-version(7))."""
    ea, ua, ra = _split_version(a)
    eb, ub, rb = _split_version(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


@dataclass(frozen=True, slots=True)
class DpkgPaths:
    """Where one dpkg installation keeps things (`root` is what `dpkg --root` names)."""

    root: Path = Path("/")
    admindir: Path | None = None  # default: root/var/lib/dpkg
    log: Path | None = None  # default: /var/log/dpkg.log (dpkg.cfg's, not under root)
    history: Path | None = None  # default: root/var/log/apt/history.log

    @property
    def admin(self) -> Path:
        """The database directory."""
        return self.admindir or self.root / "var/lib/dpkg"

    @property
    def dpkg_log(self) -> Path:
        """dpkg's own log."""
        return self.log or Path("/var/log/dpkg.log")

    @property
    def apt_history(self) -> Path:
        """apt's transaction log."""
        return self.history or self.root / "var/log/apt/history.log"


class DpkgDatabase:
    """One dpkg installation, read directly. Paths it returns are canonical under `root`
    (usrmerge: `/bin/ls` in a file list is the file system's `/usr/bin/ls`)."""

    tool = "dpkg"

    def __init__(self, paths: DpkgPaths) -> None:
        self.paths = paths
        self._dirs: dict[str, str] = {}

    def available(self) -> bool:
        """Whether there is a dpkg database here."""
        return (self.paths.admin / "status").is_file()

    def stamp(self) -> tuple[int, ...]:
        """What moves whenever dpkg or apt changes something (cheap enough for every poll)."""
        out: list[int] = []
        for path in (self.paths.admin / "status", self.paths.admin / "updates", self.paths.dpkg_log):
            try:
                st = path.stat()
            except OSError:
                out += [0, 0]
                continue
            out += [st.st_mtime_ns, st.st_size]
        return tuple(out)

    def holder(self) -> int | None:
        """The pid holding apt's frontend lock or dpkg's lock (0: held, pid unknown), or None."""
        for name in ("lock-frontend", "lock"):
            pid = lock_holder(self.paths.admin / name)
            if pid is not None:
                return pid
        return None

    def installed(self) -> tuple[list[Package], dict[str, dict[str, str]]]:
        """Installed packages and their conffiles' checksums (canonical paths)."""
        with open(self.paths.admin / "status", "rb") as fh:
            packages, conffiles = parse_status(fh.read())
        return packages, {k: {self.canonical(p): m for p, m in v.items()} for k, v in conffiles.items()}

    def _info(self, key: str, suffix: str) -> bytes | None:
        name = key.partition(":")[0]
        for stem in (key, name):  # Multi-Arch: same packages name their files pkg:arch.*
            try:
                with open(self.paths.admin / "info" / f"{stem}.{suffix}", "rb") as fh:
                    return fh.read()
            except FileNotFoundError:
                continue
        return None

    def list_stamp(self, key: str) -> int:
        """mtime of the package's file list (a reinstall rewrites it); 0 when there is none."""
        name = key.partition(":")[0]
        info = f"{self.paths.admin}/info/"
        for stem in (key, name):
            try:
                return os.stat(f"{info}{stem}.list").st_mtime_ns  # noqa: PTH116 - 755 calls at start
            except OSError:
                continue
        return 0

    def files(self, key: str) -> Iterator[str] | None:
        """The package's paths (canonical), one at a time, or None when dpkg has no list for it
        (a generator: one package can list 40k paths, and the index only compresses them)."""
        data = self._info(key, "list")
        return None if data is None else (self.canonical(p) for p in iter_list(data))

    def digests(self, key: str, wanted: Container[str] | None = None) -> dict[str, str]:
        """The package's regular files and their md5 (canonical paths); only the `wanted` paths
        when given (the index wants those below the watched roots, not a 40k-entry dict)."""
        data = self._info(key, "md5sums")
        if data is None:
            return {}
        pairs = ((self.canonical(p), m) for p, m in iter_md5sums(data))
        return {p: m for p, m in pairs if wanted is None or p in wanted}

    def canonical(self, path: str) -> str:
        """`path` as the file system resolves its directory, under `root`."""
        head, _, name = path.rpartition("/")
        real = self._dirs.get(head)
        return f"{real if real is not None else self._directory(head)}/{name}"

    def _directory(self, head: str) -> str:
        """A directory of a file list resolved under `root`, one lstat per directory: the
        parent's resolution is reused, and only a symlink is resolved further (usrmerge's /bin)."""
        real = self._dirs.get(head)
        if real is not None:
            return real
        if not head:
            real = os.path.realpath(str(self.paths.root)).rstrip("/")
        else:
            parent, _, name = head.rpartition("/")
            candidate = f"{self._directory(parent)}/{name}"
            try:
                link = stat.S_ISLNK(os.lstat(candidate).st_mode)
            except OSError:
                link = False
            real = os.path.realpath(candidate).rstrip("/") if link else candidate
        if len(self._dirs) > 50_000:  # bounded: a pathological list cannot grow it forever
            self._dirs.clear()
        self._dirs[head] = real  # without a trailing slash ("" is the root /)
        return real

    def watched(self) -> list[Path]:
        """The directories whose changes mean dpkg or apt is at work (for a prompt poll)."""
        dirs = [self.paths.admin, self.paths.admin / "updates", self.paths.dpkg_log.parent]
        return [*dirs, self.paths.apt_history.parent]

    @property
    def logs(self) -> tuple[Path | None, Path | None]:
        """(dpkg.log, apt's history.log)."""
        return self.paths.dpkg_log, self.paths.apt_history

    @staticmethod
    def compare(a: str, b: str) -> int:
        """Debian version order."""
        return compare_versions(a, b)

    def log_actions(self, text: str) -> list[LoggedAction]:
        """The actions in a piece of dpkg.log."""
        return list(parse_dpkg_log(text.splitlines()))

    def transactions(self, text: str) -> list[Transaction]:
        """The transactions in a piece of history.log."""
        return parse_apt_history(text)


def strip_temp(path: str) -> tuple[str, bool]:
    """(the file dpkg is replacing, True) for one of its temporary names, else (path, False)."""
    for suffix in TEMP_SUFFIXES:
        if path.endswith(suffix):
            return path[: -len(suffix)], True
    return path, False
