"""The disks collector on fixture diskstats and on this machine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sentinel.sources.host.disks import DisksCollector, DisksConfig
from tests.sources.conftest import value, values


def test_whole_disks_only(machine: Callable[[str], Path]) -> None:
    """Partitions, loop and zram devices are skipped; sda and nvme0n1 are reported."""
    items = list(DisksCollector(DisksConfig(), proc_root=machine("terminal") / "proc").collect())
    devices = {dict(k)["device"] for k in values(items, "sentinel_disk_read_bytes_total")}
    assert devices == {"sda", "nvme0n1"}


def test_sectors_are_512_bytes_and_times_milliseconds(machine: Callable[[str], Path]) -> None:
    """20000 sectors read is 10240000 bytes; 3000 ms busy is 3 s."""
    items = list(DisksCollector(DisksConfig(), proc_root=machine("terminal") / "proc").collect())
    assert value(items, "sentinel_disk_read_bytes_total", device="sda") == 20000 * 512
    assert value(items, "sentinel_disk_written_bytes_total", device="sda") == 40000 * 512
    assert value(items, "sentinel_disk_io_time_seconds_total", device="sda") == 3.0
    assert value(items, "sentinel_disk_reads_completed_total", device="sda") == 1000
    assert value(items, "sentinel_disk_io_now", device="sda") == 1


def test_garbage_lines_are_counted(machine: Callable[[str], Path]) -> None:
    """A short line and a non-number are counted; the good lines are still read."""
    root = machine("terminal")
    stats = root / "proc" / "diskstats"
    stats.write_text(stats.read_text() + "8 16 sdb 1 2\n8 32 sdc x 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
    items = list(DisksCollector(DisksConfig(), proc_root=root / "proc").collect())
    assert value(items, "sentinel_device_read_errors_total", collector="disks") == 2
    assert value(items, "sentinel_disk_read_bytes_total", device="sda") is not None


def test_live_machine() -> None:
    """On this machine: every device listed in /sys/block that is not skipped is reported."""
    items = list(DisksCollector(DisksConfig()).collect())
    assert value(items, "sentinel_device_read_errors_total", collector="disks") == 0
    assert all(v >= 0 for v in values(items, "sentinel_disk_read_bytes_total").values())
