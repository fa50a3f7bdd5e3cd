"""What is recorded about one path, and how two records of it differ.

An `Entry` is the lstat of a path (type, mode, owner, size, times, inode, links), its symlink
target, its SHA-256 (regular files whose policy hashes) and a digest of its extended
attributes. `judge()` turns an old and a new entry into a change kind under a policy.
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import Any, NamedTuple

from sentinel.sources.integrity.config import ATTRIBUTES, Policy

_TYPES = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "char",
    stat.S_IFBLK: "block",
}
_INTERNED = {name: name for name in _TYPES.values()}
# attributes that can change without the content changing: a change of only these is "attributes"
META = ("mode", "uid", "gid", "mtime", "nlink", "xattrs")


class Entry(NamedTuple):
    """One path's recorded state. `sha256`/`xattrs` are None when not taken (or unreadable).

    A NamedTuple rather than a frozen dataclass: just as immutable, but built in C — a scan
    makes one per file and a baseline load one per path, 50k at a time.
    """

    type: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    nlink: int
    target: str | None = None
    sha256: str | None = None
    xattrs: str | None = None

    @classmethod
    def from_stat(cls, st: os.stat_result, target: str | None = None) -> Entry:
        """An entry from lstat, without hash or xattrs."""
        mode = st.st_mode
        return cls(
            _TYPES.get(stat.S_IFMT(mode), "other"),
            stat.S_IMODE(mode),
            st.st_uid,
            st.st_gid,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_ino,
            st.st_nlink,
            target,
        )

    def same_stat(self, other: Entry) -> bool:
        """Whether (size, mtime, ctime, inode) match: quick mode then trusts the recorded hash."""
        return (
            self.size == other.size
            and self.mtime_ns == other.mtime_ns
            and self.ctime_ns == other.ctime_ns
            and self.inode == other.inode
            and self.type == other.type
        )

    def with_digests(self, sha256: str | None, xattrs: str | None) -> Entry:
        """A copy with content and xattr digests."""
        return Entry(*self[:10], sha256, xattrs)

    def to_row(self) -> list[Any]:
        """Compact JSON form (a list in field order)."""
        return list(self)

    @classmethod
    def from_row(cls, row: list[Any]) -> Entry:
        """Inverse of to_row (raises on a malformed row)."""
        if not isinstance(row, list) or len(row) != 12:
            raise ValueError("malformed baseline entry")
        row[0] = _INTERNED.get(row[0], row[0])  # one "file" string for all, not 50k copies
        return cls(*row)

    def value(self, attribute: str) -> Any:
        """The recorded value of one checked attribute."""
        if attribute == "mtime":
            return self.mtime_ns
        if attribute == "inode":
            return self.inode
        return getattr(self, attribute)

    def describe(self, attributes: frozenset[str] | None = None) -> str:
        """`type=file mode=0644 uid=0 ... sha256=ab12...` for evidence (only checked attributes)."""
        parts = []
        for name in ATTRIBUTES:
            if attributes is not None and name not in attributes and name != "type":
                continue
            value = self.value(name)
            if value is None:
                continue
            if name == "mode":
                value = f"{value:04o}"
            elif name in ("sha256", "xattrs"):
                value = str(value)[:16]
            parts.append(f"{name}={value}")
        return " ".join(parts)


def xattr_digest(path: str) -> str | None:
    """SHA-256 over the sorted extended attributes (names and values); None when unsupported."""
    try:
        names = sorted(os.listxattr(path, follow_symlinks=False))
    except OSError:
        return None
    if not names:
        return ""
    digest = hashlib.sha256()
    for name in names:
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0" + value + b"\0")
    return digest.hexdigest()


def changed(old: Entry, new: Entry, checks: frozenset[str]) -> list[str]:
    """The checked attributes that differ (a hash or xattr digest missing on one side is unknown)."""
    out: list[str] = []
    for name in ATTRIBUTES:
        if name not in checks:
            continue
        a, b = old.value(name), new.value(name)
        if name in ("sha256", "xattrs") and (a is None or b is None):
            continue
        if a != b:
            out.append(name)
    return out


def judge(old: Entry, new: Entry, checks: frozenset[str], policy: Policy) -> tuple[str, list[str]] | None:
    """The change kind (modified, attributes, replaced, truncated) and what changed, or None."""
    diff = changed(old, new, checks)
    if policy == "growing":
        if new.type != old.type or ("inode" in checks and new.inode != old.inode):
            return "replaced", diff or ["inode"]
        if new.size < old.size:
            return "truncated", diff
        diff = [d for d in diff if d != "size"]  # growing is what a log does
        return ("attributes", diff) if diff else None
    if not diff:
        return None
    if "type" in diff or "inode" in diff:
        return "replaced", diff
    if any(d not in META for d in diff):
        return "modified", diff
    return "attributes", diff
