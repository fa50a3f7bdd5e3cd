"""A compact table of entries by path: what the agent keeps in memory for every watched path.

A watched tree like /usr/share holds ~55k paths. As `Entry` tuples with a hex SHA-256 string and
boxed ints, one path costs ~560 bytes; packed into one bytes object (raw 32-byte digest, fixed
width ints) it costs ~250 bytes including its path and dict slot — the difference between an
agent of 95 MB and one under 80 MB while watching that tree.

`EntryTable` is a MutableMapping[str, Entry]: reading unpacks a fresh `Entry` (about a
microsecond), writing packs one. The rare entry that does not fit the packed layout (a hash that
is not 64 lowercase hex digits, a value outside its field's range, an unknown type) is kept
as-is in a side dict, so the table stores every entry exactly.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping

from sentinel.sources.integrity.entry import Entry

# type (3 bits) and flags (5 bits), mode, uid, gid, size, mtime_ns, ctime_ns, inode, nlink:
# 47 bytes + a 32-byte digest = 79, which with the bytes header fits pymalloc's 112-byte class
_HEAD = struct.Struct("<BHIIqqqQI")
_STAT = struct.Struct("<qqqQ")  # size, mtime_ns, ctime_ns, inode: where they sit in _HEAD
_STAT_AT = 11
_TYPES = ("file", "dir", "symlink", "fifo", "socket", "char", "block", "other")
_TYPE_CODE = {name: code for code, name in enumerate(_TYPES)}
_SHA = 1 << 3  # a raw 32-byte sha256 follows the head
_XATTRS_EMPTY = 1 << 4  # xattrs == "" (supported, none set)
_XATTRS = 1 << 5  # a raw 32-byte xattr digest follows
_TARGET = 1 << 6  # the rest is the symlink target (utf-8, surrogateescape)
_DIGEST = 32


def _raw_digest(value: str) -> bytes | None:
    """The 32 bytes of a lowercase hex SHA-256, or None if `value` is not exactly that."""
    if len(value) != 2 * _DIGEST:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw if raw.hex() == value else None


def pack(entry: Entry) -> bytes | None:
    """The packed form of `entry`, or None when it does not fit the layout exactly."""
    code = _TYPE_CODE.get(entry.type)
    if code is None:
        return None
    flags, tail = code, []
    if entry.sha256 is not None:
        raw = _raw_digest(entry.sha256)
        if raw is None:
            return None
        flags |= _SHA
        tail.append(raw)
    if entry.xattrs == "":
        flags |= _XATTRS_EMPTY
    elif entry.xattrs is not None:
        raw = _raw_digest(entry.xattrs)
        if raw is None:
            return None
        flags |= _XATTRS
        tail.append(raw)
    if entry.target is not None:
        try:
            tail.append(entry.target.encode("utf-8", "surrogateescape"))
        except UnicodeEncodeError:
            return None
        flags |= _TARGET
    try:
        head = _HEAD.pack(
            flags,
            entry.mode,
            entry.uid,
            entry.gid,
            entry.size,
            entry.mtime_ns,
            entry.ctime_ns,
            entry.inode,
            entry.nlink,
        )
    except struct.error:  # out of range (or not an int): keep the entry as it is
        return None
    return head + b"".join(tail)


def unpack(raw: bytes) -> Entry:
    """The entry `raw` was packed from."""
    flags, mode, uid, gid, size, mtime_ns, ctime_ns, inode, nlink = _HEAD.unpack_from(raw)
    at = _HEAD.size
    sha256 = xattrs = target = None
    if flags & _SHA:
        sha256 = raw[at : at + _DIGEST].hex()
        at += _DIGEST
    if flags & _XATTRS:
        xattrs = raw[at : at + _DIGEST].hex()
        at += _DIGEST
    elif flags & _XATTRS_EMPTY:
        xattrs = ""
    if flags & _TARGET:
        target = raw[at:].decode("utf-8", "surrogateescape")
    return Entry(
        _TYPES[flags & 7], mode, uid, gid, size, mtime_ns, ctime_ns, inode, nlink, target, sha256, xattrs
    )


class EntryTable(MutableMapping[str, Entry]):
    """Entries by path, packed (see the module docstring). Not thread-safe, like a dict."""

    __slots__ = ("_odd", "_packed")

    def __init__(self, entries: Mapping[str, Entry] | Iterable[tuple[str, Entry]] = ()) -> None:
        self._packed: dict[str, bytes] = {}
        self._odd: dict[str, Entry] = {}  # entries the packed layout cannot hold exactly
        items = entries.items() if isinstance(entries, Mapping) else entries
        for path, entry in items:
            self[path] = entry

    def __getitem__(self, path: str) -> Entry:
        raw = self._packed.get(path)
        if raw is not None:
            return unpack(raw)
        return self._odd[path]

    def get(self, path: str, default: Entry | None = None) -> Entry | None:  # type: ignore[override]
        raw = self._packed.get(path)
        if raw is not None:
            return unpack(raw)
        return self._odd.get(path, default) if self._odd else default

    def __setitem__(self, path: str, entry: Entry) -> None:
        raw = pack(entry)
        if raw is not None:
            self._packed[path] = raw
            if self._odd:
                self._odd.pop(path, None)
        else:
            self._odd[path] = entry
            self._packed.pop(path, None)

    def __delitem__(self, path: str) -> None:
        if self._packed.pop(path, None) is None:
            del self._odd[path]

    def __contains__(self, path: object) -> bool:
        return path in self._packed or path in self._odd

    def __iter__(self) -> Iterator[str]:
        yield from self._packed
        yield from self._odd

    def __len__(self) -> int:
        return len(self._packed) + len(self._odd)

    def same(self, path: str, other: EntryTable) -> bool:
        """Whether `path` holds the same entry here and in `other` (packed bytes compared, no unpacking)."""
        raw = self._packed.get(path)
        if raw is not None:
            return raw == other._packed.get(path)
        return path in self._odd and self._odd[path] == other._odd.get(path)

    def stat_key(self, path: str) -> tuple[int, int, int, int]:
        """(size, mtime_ns, ctime_ns, inode) of `path`, read straight from its record."""
        raw = self._packed.get(path)
        if raw is None:
            entry = self._odd[path]
            return (entry.size, entry.mtime_ns, entry.ctime_ns, entry.inode)
        size, mtime_ns, ctime_ns, inode = _STAT.unpack_from(raw, _STAT_AT)
        return (size, mtime_ns, ctime_ns, inode)

    def set_sha256(self, path: str, sha256: str | None) -> None:
        """Record the content hash of `path` (the scan's second pass), without unpacking."""
        raw = self._packed.get(path)
        digest = _raw_digest(sha256) if sha256 is not None else None
        if raw is None or digest is None or raw[0] & _SHA:
            entry = self[path]
            self[path] = entry.with_digests(sha256, entry.xattrs)
            return
        self._packed[path] = bytes((raw[0] | _SHA,)) + raw[1 : _HEAD.size] + digest + raw[_HEAD.size :]

    def reuse(self, path: str, walked: Entry, reference: EntryTable, *, hashed: bool) -> bool:
        """Store `reference`'s record of `path` here if `walked` (a fresh lstat, without content
        digest) matches it in everything but that digest; True if it did.

        The quick scan's fast path: an unchanged path costs one pack and a bytes comparison, and
        both tables then share one record. `hashed` says whether the path's record must carry a
        content hash (quick mode then trusts it while the stat is unchanged, as git's index
        does) or must not.
        """
        raw = reference._packed.get(path)
        if raw is None or bool(raw[0] & _SHA) != hashed:
            return False
        fresh = pack(walked)
        if fresh is None or fresh[0] != raw[0] & ~_SHA or fresh[1 : _HEAD.size] != raw[1 : _HEAD.size]:
            return False
        rest = raw[_HEAD.size + _DIGEST :] if raw[0] & _SHA else raw[_HEAD.size :]
        if fresh[_HEAD.size :] != rest:
            return False
        self._packed[path] = raw
        if self._odd:
            self._odd.pop(path, None)
        return True

    def copy(self) -> EntryTable:
        """A shallow copy (the packed values are shared, immutable)."""
        return self.filtered(lambda _path: True)

    def filtered(self, keep: Callable[[str], bool]) -> EntryTable:
        """A table of the paths `keep` accepts."""
        out = EntryTable()
        out._packed = {p: raw for p, raw in self._packed.items() if keep(p)}
        out._odd = {p: e for p, e in self._odd.items() if keep(p)}
        return out
