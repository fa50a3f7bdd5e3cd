"""Disk I/O counters per block device, from `proc_root/diskstats`.

Partitions, loop and RAM devices are skipped by default (node_exporter's default), so a disk is
counted once. The kernel counts sectors of 512 bytes in diskstats whatever the device's real
sector size, and times in milliseconds. Counters only: Prometheus derives rates, and a dying disk
shows in the filesystems collector (read-only remount, stalled statfs) and in I/O wait.

Read by hand, not with psutil.disk_io_counters: psutil drops the in-flight I/O count (field 9,
`sentinel_disk_io_now`) and is no faster on this file (bench/psutil_readers.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sentinel.core.model import MetricSpec, Sample
from sentinel.core.settings import Duration, check_regexes, field, positive
from sentinel.sources.base import Registration
from sentinel.sources.parsers.readers import READ_ERRORS_SPEC, FileReader

SECTOR_BYTES = 512
SKIP_DEVICES = (r"(z?ram|loop|fd|(h|s|v|xv)d[a-z]+|nvme\d+n\d+p|mmcblk\d+p)\d+",)


@dataclass(frozen=True, slots=True)
class DisksConfig:
    """`[collectors.disks]`."""

    enabled: bool = True
    interval: Duration = field(Duration(15), check=positive)
    skip_devices: tuple[str, ...] = field(SKIP_DEVICES, check=check_regexes)  # full-match regexes


# (metric, help, column after the device name, scale)
_COLUMNS = (
    ("sentinel_disk_reads_completed_total", "Reads completed.", 0, 1.0),
    ("sentinel_disk_read_bytes_total", "Bytes read.", 2, float(SECTOR_BYTES)),
    ("sentinel_disk_read_time_seconds_total", "Time spent reading.", 3, 0.001),
    ("sentinel_disk_writes_completed_total", "Writes completed.", 4, 1.0),
    ("sentinel_disk_written_bytes_total", "Bytes written.", 6, float(SECTOR_BYTES)),
    ("sentinel_disk_write_time_seconds_total", "Time spent writing.", 7, 0.001),
    ("sentinel_disk_io_time_seconds_total", "Time the device was busy with I/O.", 9, 0.001),
)
METRICS = (
    *(MetricSpec(name, "counter", text, ("device",)) for name, text, _, _ in _COLUMNS),
    MetricSpec("sentinel_disk_io_now", "gauge", "I/O requests in flight.", ("device",)),
    READ_ERRORS_SPEC,
)


class DisksCollector:
    """Polled collector of block device I/O counters."""

    name = "disks"
    metrics: Sequence[MetricSpec] = METRICS

    def __init__(self, config: DisksConfig, *, proc_root: Path = Path("/proc")) -> None:
        self.interval = float(config.interval)
        self._proc = proc_root
        self._reader = FileReader(self.name)
        self._skip = [re.compile(p) for p in config.skip_devices]

    def collect(self) -> Iterable[Sample]:
        """One reading of every device that is not skipped."""
        path = self._proc / "diskstats"
        out: list[Sample] = []
        for line in (self._reader.text(path) or "").splitlines():
            parts = line.split()
            if len(parts) < 14:
                self._reader.garbage(path, f"short line {line[:60]!r}")
                continue
            device, fields = parts[2], parts[3:]
            if any(p.fullmatch(device) for p in self._skip):
                continue
            try:
                values = [int(v) for v in fields[:11]]
            except ValueError:
                self._reader.garbage(path, f"not a number in {line[:60]!r}")
                continue
            out += [Sample.of(name, values[col] * scale, device=device) for name, _, col, scale in _COLUMNS]
            out.append(Sample.of("sentinel_disk_io_now", values[8], device=device))
        out.append(self._reader.sample())
        return out


COLLECTOR = Registration("disks", DisksConfig, build=lambda s, _ctx: DisksCollector(s))
