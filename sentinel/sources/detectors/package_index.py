"""What the packages source remembers about the package database between two looks at it.

- the inventory: every installed package with its version, source and a stamp of its file list
  (a reinstall of the same version rewrites the list);
- every package's file list, zlib-compressed (0.7 MB for this machine's 124k paths instead of
  7.4 MB): a removal's files are known after dpkg has deleted the list;
- the owned paths below the roots the integrity monitor watches, with their checksum: which
  package a changed file belongs to and what its content should be.

Persisted in `state_dir/detectors/packages.json` (0600, atomic) so that a change made while the agent
was down is found, with its files, at the next start.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

from sentinel.core.files import write_json_atomic
from sentinel.sources.parsers.packages import Package

log = structlog.get_logger("sentinel.packages")

FORMAT = 1


class Database(Protocol):
    """What the index reads from a package database (dpkg or rpm)."""

    tool: str

    def installed(self) -> tuple[list[Package], dict[str, dict[str, str]]]: ...

    def list_stamp(self, key: str) -> int: ...

    def files(self, key: str) -> Iterable[str] | None: ...

    def digests(self, key: str, wanted: Container[str] | None = None) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class Entry:
    """One package as remembered."""

    package: Package
    stamp: int  # the file list's mtime when it was read
    files_z: bytes  # zlib of "\n".join(paths)

    def paths(self) -> list[str]:
        """The package's paths."""
        text = zlib.decompress(self.files_z).decode("utf-8", "surrogateescape")
        return text.split("\n") if text else []


def _pack(paths: Iterable[str]) -> bytes:
    """The paths joined by newlines, compressed as they come (level 1: 4x the level-6 speed)."""
    packer = zlib.compressobj(1)
    chunks: list[bytes] = []
    for i, path in enumerate(paths):
        chunks.append(packer.compress(("\n" if i else "").encode() + path.encode("utf-8", "surrogateescape")))
    chunks.append(packer.flush())
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class Diff:
    """How the database differs from what was remembered."""

    installed: tuple[Package, ...]
    removed: tuple[Package, ...]
    changed: tuple[tuple[Package, Package], ...]  # (before, now): another version, or a rewritten list
    old_paths: Mapping[str, list[str]]  # removed and changed packages: their paths before


class PackageIndex:
    """The remembered inventory, file lists and owned paths (used by one thread at a time)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, Entry] = {}
        self.owned: dict[str, tuple[str, str]] = {}  # path -> (package key, md5 or "")
        self.prefixes: tuple[str, ...] = ()  # watched directories, with a trailing slash
        self.exact: frozenset[str] = frozenset()  # watched paths themselves (single files too)
        self._saved_roots: tuple[str, ...] = ()
        self._extra: dict[str, Any] = {}
        self.loaded = False

    # -- persistence --------------------------------------------------------------------------

    def load(self) -> bool:
        """Read the saved index; False when there is none (first start) or it is unusable."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return False
        except (OSError, ValueError) as exc:
            log.warning("packages_index_unreadable", path=str(self.path), error=str(exc))
            return False
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return False
        try:
            self.entries = {
                key: Entry(Package(*row["package"]), int(row["stamp"]), base64.b64decode(row["files"]))
                for key, row in data["packages"].items()
            }
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("packages_index_unreadable", path=str(self.path), error=str(exc))
            self.entries = {}
            return False
        self._extra = {k: v for k, v in data.items() if k not in ("format", "packages", "roots", "owned")}
        owned = data.get("owned")
        if isinstance(owned, dict) and isinstance(data.get("roots"), list):
            self._saved_roots = tuple(str(r) for r in data["roots"])
            self.owned = {
                str(p): (str(v[0]), str(v[1]))
                for p, v in owned.items()
                if isinstance(v, list) and len(v) == 2
            }
        self.loaded = True
        return True

    def save(self, extra: Mapping[str, Any]) -> None:
        """Write the index with the source's other state (`extra`); a failure is logged."""
        data = {
            "format": FORMAT,
            **extra,
            "roots": sorted(self.exact),
            "owned": {p: list(v) for p, v in sorted(self.owned.items())},
            "packages": {
                key: {
                    "package": [e.package.name, e.package.version, e.package.arch, e.package.source],
                    "stamp": e.stamp,
                    "files": base64.b64encode(e.files_z).decode("ascii"),
                }
                for key, e in sorted(self.entries.items())
            },
        }
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_json_atomic(self.path, data)
        except OSError as exc:
            log.warning("packages_index_write_failed", path=str(self.path), error=str(exc))

    def extra(self) -> dict[str, Any]:
        """The source's own state saved beside the index (cursors, recent operations), as loaded."""
        return dict(self._extra)

    # -- reading the database -----------------------------------------------------------------

    def refresh(self, db: Database) -> tuple[Diff, dict[str, dict[str, str]]]:
        """Bring the index up to the database; what changed, and the conffiles (path -> md5)."""
        packages, conffiles = db.installed()
        now = {p.key: p for p in packages}
        installed: list[Package] = []
        changed: list[tuple[Package, Package]] = []
        old_paths: dict[str, list[str]] = {}
        for key, pkg in now.items():
            before = self.entries.get(key)
            stamp = db.list_stamp(key)
            if before is not None and before.stamp == stamp and before.package == pkg:
                continue
            if before is None:
                installed.append(pkg)
            else:
                changed.append((before.package, pkg))
                old_paths[key] = before.paths()
            self.entries[key] = Entry(pkg, stamp, _pack(db.files(key) or []))
        removed: list[Package] = []
        for key in [k for k in self.entries if k not in now]:
            entry = self.entries.pop(key)
            removed.append(entry.package)
            old_paths[key] = entry.paths()
        self._reindex(db, conffiles, touched={*[p.key for p in installed], *[b.key for b, _ in changed]})
        return Diff(tuple(installed), tuple(removed), tuple(changed), old_paths), conffiles

    def paths(self, key: str) -> list[str]:
        """The installed package's paths (empty when unknown)."""
        entry = self.entries.get(key)
        return entry.paths() if entry is not None else []

    def set_roots(self, roots: Iterable[str], db: Database | None) -> None:
        """Index the owned paths at or below `roots` (canonical paths)."""
        clean = {r.rstrip("/") or "/" for r in roots}
        self.exact = frozenset(clean)
        self.prefixes = tuple(sorted({r.rstrip("/") + "/" for r in clean}))
        if self._saved_roots == tuple(sorted(clean)) and self.owned:
            return  # the saved index covers these roots (a refresh re-reads what changed since)
        self.owned = {}
        if db is not None:
            self._reindex(db, db.installed()[1], touched=set(self.entries))

    def _reindex(self, db: Database, conffiles: Mapping[str, Mapping[str, str]], touched: set[str]) -> None:
        """Owned paths below the roots: drop what left, re-read the touched packages."""
        if not self.exact:
            return
        self.owned = {p: v for p, v in self.owned.items() if v[0] in self.entries and v[0] not in touched}
        for key in touched:
            entry = self.entries.get(key)
            if entry is None:
                continue
            mine = [p for p in entry.paths() if self.under(p)]
            if not mine:
                continue
            sums = {**db.digests(key, wanted=frozenset(mine)), **conffiles.get(key, {})}
            for path in mine:
                self.owned[path] = (key, sums.get(path, ""))

    # -- questions ----------------------------------------------------------------------------

    def under(self, path: str) -> bool:
        """Whether `path` is at or below a watched root."""
        return path in self.exact or path.startswith(self.prefixes)

    def owner(self, path: str) -> tuple[str, str] | None:
        """(package key, md5 or "") of an owned path below the roots, or None."""
        return self.owned.get(path)

    def package(self, key: str) -> Package | None:
        """The installed package with that key."""
        entry = self.entries.get(key)
        return entry.package if entry is not None else None

    @property
    def digest(self) -> str:
        """16 hex of SHA-256 over the sorted `name version arch` lines: the inventory's identity."""
        lines = sorted(
            f"{e.package.name} {e.package.version} {e.package.arch}" for e in self.entries.values()
        )
        return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:16]
