"""Every real filesystem: size, available space, used ratio, inodes, read-only flag, hung mounts.

Mounts come from `proc_root/self/mounts`; pseudo and network filesystem types are skipped by
default (network shares are the usual hung mounts, and they are the file server's business).
`statvfs` can block forever on a stale NFS mount or a dying disk, so it runs in a helper thread
with a deadline per mount (`StallGuard`): a mount that does not answer is reported as stalled,
and while its call is still stuck later runs skip it at once instead of piling up threads.
"""

from __future__ import annotations

import os
import queue
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentinel.core.model import MetricSpec, Sample
from sentinel.core.settings import Duration, check_regexes, field, positive
from sentinel.sources.base import Registration
from sentinel.sources.parsers.readers import READ_ERRORS_SPEC, FileReader

PSEUDO_FSTYPES = (
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "erofs",
    "sysfs",
    "tracefs",
    "tmpfs",
    "fuse.lxcfs",
    "fuse.gvfsd-fuse",
    "fuse.portal",
    "fuse.snapfuse",
)
NETWORK_FSTYPES = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "sshfs", "fuse.sshfs", "9p", "ceph", "glusterfs")
SKIP_MOUNTPOINTS = (
    r"/(dev|proc|sys|run/credentials/.+|var/lib/docker/.+|var/lib/containers/storage/.+)(/.*)?",
)
_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True, slots=True)
class FilesystemsConfig:
    """`[collectors.filesystems]`."""

    enabled: bool = True
    interval: Duration = field(Duration(15), check=positive)
    statfs_timeout: Duration = field(Duration(2), check=positive)
    skip_fstypes: tuple[str, ...] = PSEUDO_FSTYPES + NETWORK_FSTYPES
    skip_mountpoints: tuple[str, ...] = field(SKIP_MOUNTPOINTS, check=check_regexes)  # full-match regexes


_LABELS = ("device", "mountpoint", "fstype")  # as node_exporter's filesystem collector
METRICS = (
    MetricSpec("sentinel_filesystem_size_bytes", "gauge", "Filesystem size.", _LABELS),
    MetricSpec("sentinel_filesystem_avail_bytes", "gauge", "Space available to unprivileged users.", _LABELS),
    MetricSpec(
        "sentinel_filesystem_used_ratio",
        "gauge",
        "Share of the filesystem in use, as df computes it.",
        _LABELS,
    ),
    MetricSpec("sentinel_filesystem_files", "gauge", "Inodes in the filesystem.", _LABELS),
    MetricSpec("sentinel_filesystem_files_free", "gauge", "Free inodes.", _LABELS),
    MetricSpec("sentinel_filesystem_files_used_ratio", "gauge", "Share of the inodes in use.", _LABELS),
    MetricSpec(
        "sentinel_filesystem_readonly", "gauge", "1 when the filesystem is mounted read-only.", _LABELS
    ),
    MetricSpec(
        "sentinel_filesystem_stalled",
        "gauge",
        "1 when statfs did not answer within the timeout (hung mount).",
        _LABELS,
    ),
    READ_ERRORS_SPEC,
)


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of /proc/self/mounts."""

    device: str
    mountpoint: str
    fstype: str
    options: tuple[str, ...]


def _unescape(field_text: str) -> str:
    """The kernel writes space, tab, newline and backslash in mount paths as octal escapes."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field_text)


def parse_mounts(text: str) -> list[Mount]:
    """Mounts in order; a later mount on the same mountpoint hides the earlier one (kept last)."""
    by_point: dict[str, Mount] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        mount = Mount(_unescape(parts[0]), _unescape(parts[1]), parts[2], tuple(parts[3].split(",")))
        by_point.pop(mount.mountpoint, None)
        by_point[mount.mountpoint] = mount
    return list(by_point.values())


class Stalled(Exception):
    """The call did not return within the deadline (or is still stuck from an earlier run)."""


class StallGuard:
    """Runs a blocking call per key in helper threads, waiting at most `timeout` for each.

    One helper thread works through the keys in order. When a call overruns, that thread is
    abandoned to its stuck call (Python cannot cancel it), the key stays marked busy until the
    call returns, and a fresh helper takes the remaining keys. So one hung mount costs one
    timeout once, later runs skip it instantly, and no run ever starts more than one thread per
    hung mount.
    """

    def __init__(self, fn: Callable[[str], Any], timeout: float) -> None:
        self._fn = fn
        self.timeout = timeout
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    @property
    def busy(self) -> frozenset[str]:
        """Keys whose call is still stuck."""
        with self._lock:
            return frozenset(self._busy)

    def run(self, keys: Sequence[str]) -> dict[str, Any]:
        """key -> result, OSError, or Stalled, for every key."""
        with self._lock:
            out: dict[str, Any] = {k: Stalled() for k in keys if k in self._busy}
        pending = [k for k in keys if k not in out]
        while pending:
            pending = self._one_helper(pending, out)
        return out

    def _one_helper(self, keys: list[str], out: dict[str, Any]) -> list[str]:
        """Run keys in one helper until done or stuck; return the keys it never started."""
        results: queue.Queue[tuple[str, Any]] = queue.Queue()
        helper = _Helper()

        def work() -> None:
            while True:
                with self._lock:
                    if helper.abandoned or helper.next >= len(keys):
                        return
                    key = keys[helper.next]
                    helper.next += 1
                    helper.current = key
                    self._busy.add(key)
                try:
                    result: Any = self._fn(key)
                except OSError as exc:
                    result = exc
                finally:
                    with self._lock:
                        self._busy.discard(key)
                results.put((key, result))

        thread = threading.Thread(target=work, name="statfs-guard", daemon=True)
        thread.start()
        for _ in keys:
            try:
                key, result = results.get(timeout=self.timeout)
            except queue.Empty:
                with self._lock:
                    helper.abandoned = True
                    stuck, started = helper.current, helper.next
                while not results.empty():  # a result may have landed just before the lock
                    done_key, done = results.get_nowait()
                    out[done_key] = done
                if stuck and stuck not in out:
                    out[stuck] = Stalled()
                return keys[started:]
            out[key] = result
        thread.join(self.timeout)
        return []


@dataclass(slots=True)
class _Helper:
    """Progress of one helper thread, shared with the waiting collector under the guard's lock."""

    next: int = 0
    current: str = ""
    abandoned: bool = False


class FilesystemsCollector:
    """Polled collector of mounted filesystems."""

    name = "filesystems"
    metrics: Sequence[MetricSpec] = METRICS

    def __init__(
        self,
        config: FilesystemsConfig,
        *,
        proc_root: Path = Path("/proc"),
        statvfs: Callable[[str], Any] = os.statvfs,
    ) -> None:
        self.config = config
        self.interval = float(config.interval)
        self._proc = proc_root
        self._reader = FileReader(self.name)
        self._guard = StallGuard(statvfs, float(config.statfs_timeout))
        self._skip_points = [re.compile(p) for p in config.skip_mountpoints]

    def collect(self) -> Iterable[Sample]:
        """One reading of every filesystem that is not skipped."""
        out: list[Sample] = []
        text = self._reader.text(self._proc / "self" / "mounts")
        mounts = [m for m in parse_mounts(text or "") if self.wanted(m)]
        answers = self._guard.run([m.mountpoint for m in mounts])
        for mount in mounts:
            out += self._readings(mount, answers[mount.mountpoint])
        out.append(self._reader.sample())
        return out

    def wanted(self, mount: Mount) -> bool:
        """Not a skipped type, not a skipped mountpoint."""
        if mount.fstype in self.config.skip_fstypes:
            return False
        return not any(p.fullmatch(mount.mountpoint) for p in self._skip_points)

    def _readings(self, mount: Mount, answer: Any) -> list[Sample]:
        labels = {"device": mount.device, "mountpoint": mount.mountpoint, "fstype": mount.fstype}
        if isinstance(answer, Stalled):
            return [Sample.of("sentinel_filesystem_stalled", 1, **labels)]
        if isinstance(answer, OSError):
            # unmounted between listing and statfs is normal; anything else is worth a line
            if not isinstance(answer, FileNotFoundError | PermissionError):
                self._reader.garbage(mount.mountpoint, answer.strerror or str(answer))
            return []
        st = answer
        used_blocks = st.f_blocks - st.f_bfree
        denominator = used_blocks + st.f_bavail  # df's: blocks reserved for root are left out
        readonly = "ro" in mount.options or bool(st.f_flag & os.ST_RDONLY)
        out = [
            Sample.of("sentinel_filesystem_stalled", 0, **labels),
            Sample.of("sentinel_filesystem_size_bytes", st.f_blocks * st.f_frsize, **labels),
            Sample.of("sentinel_filesystem_avail_bytes", st.f_bavail * st.f_frsize, **labels),
            Sample.of(
                "sentinel_filesystem_used_ratio", used_blocks / denominator if denominator else 0, **labels
            ),
            Sample.of("sentinel_filesystem_readonly", 1 if readonly else 0, **labels),
        ]
        if st.f_files > 0:  # vfat, btrfs and others have no fixed inode table: nothing to report
            out += [
                Sample.of("sentinel_filesystem_files", st.f_files, **labels),
                Sample.of("sentinel_filesystem_files_free", st.f_ffree, **labels),
                Sample.of("sentinel_filesystem_files_used_ratio", 1 - st.f_ffree / st.f_files, **labels),
            ]
        return out


COLLECTOR = Registration("filesystems", FilesystemsConfig, build=lambda s, _ctx: FilesystemsCollector(s))
