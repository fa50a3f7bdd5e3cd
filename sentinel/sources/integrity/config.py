"""`[integrity]`: what the file integrity monitor watches, how each path is judged, how it scans.

A `[[integrity.watch]]` entry names a file or a tree and a policy:

- `critical`: any change is a hazard (/etc/passwd, /etc/shadow, sudoers, sshd_config, the agent),
- `readonly`: binaries and application directories; any change is a hazard,
- `growing`: logs; they may only grow — shrinking, truncation, replacement or deletion is a hazard,
- `data`: documents; changes feed the mass-modification detector, never one ticket each,
- `ignore`: a subtree inside a watched tree that is not watched at all.

When watched paths nest, the most specific entry decides. What is compared is `check` (default
per policy, `DEFAULT_CHECKS`); a `touch` alone changes nothing that is checked by default.
"""

from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from sentinel.core.settings import Duration, KeyPath, Size, field, non_negative, positive, ratio

Policy = Literal["critical", "readonly", "growing", "data", "ignore"]
Attribute = Literal[
    "type", "mode", "uid", "gid", "size", "mtime", "inode", "nlink", "target", "sha256", "xattrs"
]
POLICIES: tuple[Policy, ...] = ("critical", "readonly", "growing", "data", "ignore")
ATTRIBUTES: tuple[Attribute, ...] = get_args(Attribute)  # in the order evidence lists them

DEFAULT_CHECKS: dict[Policy, tuple[Attribute, ...]] = {
    "critical": ("type", "mode", "uid", "gid", "size", "inode", "target", "sha256", "xattrs"),
    "readonly": ("type", "mode", "uid", "gid", "size", "inode", "target", "sha256"),
    # size is judged as "must not shrink"; content is not hashed (it changes all the time)
    "growing": ("type", "mode", "uid", "gid", "size", "inode"),
    "data": ("type", "size", "target", "sha256"),
    "ignore": (),
}


def _nice(value: int) -> str | None:
    return None if 0 <= value <= 19 else f"must be between 0 and 19, got {value}"


@dataclass(frozen=True, slots=True)
class WatchConfig:
    """One `[[integrity.watch]]` entry."""

    path: Path
    policy: Policy = "readonly"
    recursive: bool = True
    # globs: with a "/" they match the whole path, without one the file name
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    follow_symlinks: bool = False  # symlinks are recorded as links; followed only when asked
    follow_outside: bool = False  # followed links may lead out of the watched trees (else: recorded as links)
    check: tuple[Attribute, ...] | None = None  # default: DEFAULT_CHECKS[policy]
    realtime: bool = True  # False: scans only (no inotify watches)

    @property
    def checks(self) -> frozenset[str]:
        """The attributes compared for paths under this entry."""
        return _checks(self.check, self.policy)

    @property
    def hashes(self) -> bool:
        """Whether file content is hashed under this entry."""
        return "sha256" in _checks(self.check, self.policy)

    def selects(self, path: str, *, is_dir: bool) -> bool:
        """Whether the include/exclude globs keep `path` (directories are never left out by include)."""
        name = path.rsplit("/", 1)[-1]
        if any(_glob(path, name, g) for g in self.exclude):
            return False
        if not self.include or is_dir:
            return True
        return any(_glob(path, name, g) for g in self.include)


@functools.cache
def _checks(check: tuple[str, ...] | None, policy: Policy) -> frozenset[str]:
    """Cached: scans ask once per file."""
    return frozenset(check if check is not None else DEFAULT_CHECKS[policy])


def _glob(path: str, name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(path if "/" in pattern else name, pattern)


@dataclass(frozen=True, slots=True)
class ScanConfig:
    """`[integrity.scan]`: hashing workers, throttling and the safety-net schedule."""

    workers: int = field(2, check=positive)  # hashing threads (hashlib releases the GIL)
    buffer: Size = field(Size(256 * 1024), check=positive)  # read size: memory per worker is bounded
    retries: int = field(3, check=non_negative)  # re-reads of a file that changes while hashed
    cpu_share: float = field(0.5, check=ratio)  # agent scans: share of a core each worker may use
    io_rate: Size = Size(0)  # agent scans: bytes per second read, 0 = unlimited
    nice: int = field(10, check=_nice)  # agent scans: scheduling niceness of the hashing threads
    deep_interval: Duration = field(Duration(24 * 3600), check=positive)  # rehash everything
    fallback_interval: Duration = field(Duration(300), check=positive)  # rescan what inotify can't watch


@dataclass(frozen=True, slots=True)
class MassModificationConfig:
    """`[integrity.mass_modification]`: many changes under data/readonly paths are one hazard."""

    enabled: bool = True
    renames: int = field(25, check=positive)
    rename_window: Duration = field(Duration(1), check=positive)
    changes: int = field(200, check=positive)
    change_window: Duration = field(Duration(10), check=positive)
    cooldown: Duration = field(Duration(60), check=positive)  # quiet this long ends an episode
    policies: tuple[Policy, ...] = ("data", "readonly")
    sample_paths: int = field(10, check=positive)


@dataclass(frozen=True, slots=True)
class IntegrityConfig:
    """`[integrity]`."""

    enabled: bool = True
    watch: tuple[WatchConfig, ...] = ()
    realtime: bool = True
    debounce: Duration = field(Duration(0.05), check=positive)  # quiet time before a path is judged
    max_delay: Duration = field(Duration(0.5), check=positive)  # judge at least this often in a burst
    startup_scan: Literal["quick", "deep", "off"] = "quick"
    auto_init: bool = True  # first start (no baseline, no key): take the baseline silently
    scan: ScanConfig = field(default_factory=ScanConfig)
    mass_modification: MassModificationConfig = field(default_factory=MassModificationConfig)
    # watched as `critical`; its changes are drills (`sentinel drill --scenario file_change`)
    drill_dir: Path | None = None
    # attribution to package operations (docs/change.md): how long a change may wait for a
    # running operation to settle, and the policies under which a file written during an
    # operation and owned by no package is folded into it (byte code, generated files)
    hold_max: Duration = field(Duration(1800), check=positive)
    attribute_unowned: tuple[Policy, ...] = ("readonly",)

    def __post_init__(self) -> None:
        """The drill directory is one more `critical` root, for the agent and the CLI alike: a
        baseline taken by `sentinel baseline update` must keep it, or the running agent sees
        its files "created" outside any drill."""
        drill = self.drill_dir
        if drill is not None and all(w.path != drill for w in self.watch):
            object.__setattr__(self, "watch", (*self.watch, WatchConfig(path=drill, policy="critical")))

    def validate(self) -> list[tuple[KeyPath, str]]:
        """Paths are absolute and each is listed once."""
        problems: list[tuple[KeyPath, str]] = []
        seen: set[Path] = set()
        for i, watch in enumerate(self.watch):
            if watch.path in seen:
                problems.append((("watch", i, "path"), f'"{watch.path}" is already watched'))
            seen.add(watch.path)
        if self.max_delay < self.debounce:
            problems.append((("max_delay",), "must not be shorter than debounce"))
        return problems
