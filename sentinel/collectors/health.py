"""Device health from psutil: CPU, load, memory, swap, filesystems, network links, boot time.

Every OS boundary is a constructor parameter whose default is the real psutil function, so tests
can feed fixtures. A filesystem whose `statvfs` hangs (a stale NFS mount, a dying disk) is asked
from a helper thread with a timeout and reported as stalled instead of blocking the collector.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psutil

from sentinel.model import Event, MetricSpec, Sample
from sentinel.settings import Duration, field, positive

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
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "squashfs",
    "sysfs",
    "tracefs",
    "tmpfs",
    "fuse.lxcfs",
    "fuse.gvfsd-fuse",
    "fuse.portal",
)
NETWORK_FSTYPES = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "sshfs", "fuse.sshfs", "9p", "ceph")


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """`[collectors.health]`."""

    enabled: bool = True
    interval: Duration = field(Duration(15), check=positive)
    statfs_timeout: Duration = field(Duration(2), check=positive)
    skip_fstypes: tuple[str, ...] = PSEUDO_FSTYPES + NETWORK_FSTYPES
    skip_mountpoints: tuple[str, ...] = ()
    interfaces_skip: tuple[str, ...] = ("lo",)


METRICS = (
    MetricSpec("sentinel_cpu_utilisation_ratio", "gauge", "CPU busy share of all cores (0-1)."),
    MetricSpec("sentinel_load1", "gauge", "1-minute load average."),
    MetricSpec("sentinel_load5", "gauge", "5-minute load average."),
    MetricSpec("sentinel_load15", "gauge", "15-minute load average."),
    MetricSpec("sentinel_load_per_core", "gauge", "5-minute load average divided by CPU count."),
    MetricSpec("sentinel_cpus", "gauge", "Logical CPUs."),
    MetricSpec("sentinel_memory_total_bytes", "gauge", "Physical memory."),
    MetricSpec("sentinel_memory_available_bytes", "gauge", "Memory available without swapping."),
    MetricSpec("sentinel_memory_used_ratio", "gauge", "1 - available/total."),
    MetricSpec("sentinel_swap_total_bytes", "gauge", "Swap space."),
    MetricSpec("sentinel_swap_used_ratio", "gauge", "Swap in use (0 when there is no swap)."),
    MetricSpec("sentinel_filesystem_size_bytes", "gauge", "Filesystem size.", ("mountpoint", "fstype")),
    MetricSpec(
        "sentinel_filesystem_avail_bytes",
        "gauge",
        "Space available to unprivileged users.",
        ("mountpoint", "fstype"),
    ),
    MetricSpec(
        "sentinel_filesystem_used_ratio",
        "gauge",
        "Share of the filesystem in use, as df computes it.",
        ("mountpoint", "fstype"),
    ),
    MetricSpec(
        "sentinel_filesystem_readonly",
        "gauge",
        "1 when the filesystem is mounted read-only.",
        ("mountpoint", "fstype"),
    ),
    MetricSpec(
        "sentinel_filesystem_stalled",
        "gauge",
        "1 when statfs did not answer within the timeout (hung mount).",
        ("mountpoint", "fstype"),
    ),
    MetricSpec("sentinel_network_up", "gauge", "1 when the interface is up.", ("interface",)),
    MetricSpec("sentinel_boot_time_seconds", "gauge", "Boot time, seconds since the epoch."),
)


class _StallGuard:
    """Runs a blocking call in a helper thread and gives up waiting after a timeout.

    Python cannot cancel the stuck thread, so the key stays marked busy until its call returns;
    the collector skips that key meanwhile instead of piling up threads on a dead mount.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def call(self, key: str, fn: Callable[[], Any]) -> tuple[bool, Any]:
        """(True, result) when fn returned in time; (False, None) when stalled."""
        with self._lock:
            if key in self._busy:
                return False, None
            self._busy.add(key)
        box: list[Any] = []
        errors: list[BaseException] = []
        done = threading.Event()

        def run() -> None:
            try:
                box.append(fn())
            except BaseException as exc:
                errors.append(exc)
            finally:
                with self._lock:
                    self._busy.discard(key)
                done.set()

        threading.Thread(target=run, name=f"statfs:{key}", daemon=True).start()
        if not done.wait(self.timeout):
            return False, None
        if errors:
            raise errors[0]
        return True, box[0]


class HealthCollector:
    """Polled collector of device health."""

    name = "health"
    metrics: Sequence[MetricSpec] = METRICS

    def __init__(
        self,
        config: HealthConfig,
        *,
        cpu_percent: Callable[[], float] = lambda: psutil.cpu_percent(interval=None),
        getloadavg: Callable[[], tuple[float, float, float]] = os.getloadavg,
        cpu_count: Callable[[], int | None] = psutil.cpu_count,
        virtual_memory: Callable[[], Any] = psutil.virtual_memory,
        swap_memory: Callable[[], Any] = psutil.swap_memory,
        disk_partitions: Callable[[], list[Any]] = lambda: psutil.disk_partitions(all=True),
        disk_usage: Callable[[str], Any] = psutil.disk_usage,
        net_if_stats: Callable[[], dict[str, Any]] = psutil.net_if_stats,
        boot_time: Callable[[], float] = psutil.boot_time,
    ) -> None:
        self.config = config
        self.interval = float(config.interval)
        self._cpu_percent = cpu_percent
        self._getloadavg = getloadavg
        self._cpu_count = cpu_count
        self._virtual_memory = virtual_memory
        self._swap_memory = swap_memory
        self._disk_partitions = disk_partitions
        self._disk_usage = disk_usage
        self._net_if_stats = net_if_stats
        self._boot_time = boot_time
        self._guard = _StallGuard(config.statfs_timeout)
        self._last_boot: float | None = None
        self._cpu_percent()  # prime psutil's counter so the first real reading is meaningful

    def collect(self) -> Iterable[Sample | Event]:
        """One reading of everything."""
        items: list[Sample | Event] = []
        items += self._cpu()
        items += self._memory()
        items += self._filesystems()
        items += self._network()
        items += self._boot()
        return items

    def _cpu(self) -> list[Sample]:
        cores = self._cpu_count() or 1
        load1, load5, load15 = self._getloadavg()
        return [
            Sample.of("sentinel_cpu_utilisation_ratio", self._cpu_percent() / 100.0),
            Sample.of("sentinel_cpus", cores),
            Sample.of("sentinel_load1", load1),
            Sample.of("sentinel_load5", load5),
            Sample.of("sentinel_load15", load15),
            Sample.of("sentinel_load_per_core", load5 / cores),
        ]

    def _memory(self) -> list[Sample]:
        vm, sw = self._virtual_memory(), self._swap_memory()
        used = 1.0 - (vm.available / vm.total) if vm.total else 0.0
        swap_used = sw.used / sw.total if sw.total else 0.0
        return [
            Sample.of("sentinel_memory_total_bytes", vm.total),
            Sample.of("sentinel_memory_available_bytes", vm.available),
            Sample.of("sentinel_memory_used_ratio", used),
            Sample.of("sentinel_swap_total_bytes", sw.total),
            Sample.of("sentinel_swap_used_ratio", swap_used),
        ]

    def _filesystems(self) -> list[Sample]:
        out: list[Sample] = []
        seen: set[str] = set()
        for part in self._disk_partitions():
            mount, fstype = part.mountpoint, part.fstype
            if fstype in self.config.skip_fstypes or mount in self.config.skip_mountpoints:
                continue
            if mount in seen:  # bind mounts and stacked mounts: report the mountpoint once
                continue
            seen.add(mount)
            labels = {"mountpoint": mount, "fstype": fstype}
            try:
                answered, usage = self._guard.call(mount, functools.partial(self._disk_usage, mount))
            except OSError:
                continue  # vanished or unreadable between listing and statfs: not a reading
            out.append(Sample.of("sentinel_filesystem_stalled", 0 if answered else 1, **labels))
            if not answered:
                continue
            readonly = "ro" in str(getattr(part, "opts", "")).split(",")
            total = usage.used + usage.free  # df's denominator: reserved blocks excluded
            out += [
                Sample.of("sentinel_filesystem_size_bytes", usage.total, **labels),
                Sample.of("sentinel_filesystem_avail_bytes", usage.free, **labels),
                Sample.of("sentinel_filesystem_used_ratio", usage.used / total if total else 0, **labels),
                Sample.of("sentinel_filesystem_readonly", 1 if readonly else 0, **labels),
            ]
        return out

    def _network(self) -> list[Sample]:
        return [
            Sample.of("sentinel_network_up", 1 if stats.isup else 0, interface=name)
            for name, stats in sorted(self._net_if_stats().items())
            if name not in self.config.interfaces_skip
        ]

    def _boot(self) -> list[Sample | Event]:
        boot = self._boot_time()
        items: list[Sample | Event] = [Sample.of("sentinel_boot_time_seconds", boot)]
        if self._last_boot is not None and abs(boot - self._last_boot) > 60:
            items.append(Event(self.name, "reboot", "host", boot, (("previous_boot", self._last_boot),)))
        self._last_boot = boot
        return items
