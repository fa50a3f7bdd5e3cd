"""The health collector on fixture /proc trees and on this machine."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sentinel.core.model import Event
from sentinel.sources.host.health import HealthCollector, HealthConfig
from tests.sources.conftest import value, values


def collector(root: Path, state_dir: Path | None = None) -> HealthCollector:
    return HealthCollector(HealthConfig(), proc_root=root / "proc", state_dir=state_dir)


def test_cpu_seconds_per_mode_and_cpu_count(machine: Callable[[str], Path]) -> None:
    """/proc/stat ticks become seconds per mode; cpuN lines are the online CPUs."""
    items = list(collector(machine("terminal")).collect())
    assert value(items, "sentinel_cpus") == 2
    assert value(items, "sentinel_cpu_seconds_total", mode="user") == 10.0
    assert value(items, "sentinel_cpu_seconds_total", mode="iowait") == 1.0
    assert len(values(items, "sentinel_cpu_seconds_total")) == 8


def test_utilisation_is_the_busy_share_between_two_runs(machine: Callable[[str], Path]) -> None:
    """30 busy ticks out of 100 since the previous run is 0.3; idle and iowait are not busy."""
    root = machine("terminal")
    health = collector(root)
    stat = root / "proc" / "stat"
    # user +20, system +10, idle +60, iowait +10
    stat.write_text(stat.read_text().replace("cpu  1000 20 300 8000 100", "cpu  1020 20 310 8060 110"))
    assert value(list(health.collect()), "sentinel_cpu_utilisation_ratio") == pytest.approx(0.3)


def test_no_utilisation_when_no_tick_passed(machine: Callable[[str], Path]) -> None:
    """Two runs on the same counters give no reading rather than a division by zero."""
    assert value(list(collector(machine("terminal")).collect()), "sentinel_cpu_utilisation_ratio") is None


def test_load_memory_and_swap(machine: Callable[[str], Path]) -> None:
    """Load per core is load5 / CPUs; memory used is 1 - available/total; swap used share."""
    items = list(collector(machine("terminal")).collect())
    assert value(items, "sentinel_load5") == 4.2
    assert value(items, "sentinel_load_per_core") == pytest.approx(2.1)
    assert value(items, "sentinel_memory_total_bytes") == 8_000_000 * 1024
    assert value(items, "sentinel_memory_used_ratio") == pytest.approx(0.9)
    assert value(items, "sentinel_swap_used_ratio") == pytest.approx(0.75)


def test_processes_by_state_with_odd_command_names(machine: Callable[[str], Path]) -> None:
    """Every state is counted, including a zombie and a command named `my (odd) app`."""
    states = {
        dict(k)["state"]: v
        for k, v in values(collector(machine("terminal")).collect(), "sentinel_processes").items()
    }
    assert states == {
        "running": 1,
        "sleeping": 3,
        "disk_sleep": 1,
        "stopped": 1,
        "zombie": 1,
        "idle": 1,
        "other": 0,
    }


def test_file_handles(machine: Callable[[str], Path]) -> None:
    """file-nr: allocated, maximum and their ratio."""
    items = list(collector(machine("terminal")).collect())
    assert value(items, "sentinel_filefd_allocated") == 9000
    assert value(items, "sentinel_filefd_used_ratio") == pytest.approx(0.9)


def test_garbage_is_counted_and_the_rest_still_reported(machine: Callable[[str], Path]) -> None:
    """A meminfo without MemAvailable drops only the memory metrics and counts one error."""
    root = machine("terminal")
    (root / "proc" / "meminfo").write_text("MemTotal: 8000000 kB\n")
    items = list(collector(root).collect())
    assert value(items, "sentinel_memory_used_ratio") is None
    assert value(items, "sentinel_load1") == 3.1
    assert value(items, "sentinel_device_read_errors_total", collector="health") == 1


def test_missing_files_are_not_errors(machine: Callable[[str], Path]) -> None:
    """A kernel without file-nr or loadavg: those metrics are absent, nothing is counted."""
    root = machine("terminal")
    (root / "proc" / "loadavg").unlink()
    (root / "proc" / "sys" / "fs" / "file-nr").unlink()
    items = list(collector(root).collect())
    assert value(items, "sentinel_load1") is None and value(items, "sentinel_filefd_allocated") is None
    assert value(items, "sentinel_device_read_errors_total", collector="health") == 0


def test_first_start_remembers_the_boot_without_an_event(machine: Callable[[str], Path], tmp: Path) -> None:
    """No previous boot on record: no reboot event, but the boot is saved."""
    items = list(collector(machine("terminal"), tmp / "state").collect())
    assert not [i for i in items if isinstance(i, Event)]
    saved = json.loads((tmp / "state" / "health" / "boot.json").read_text())
    assert saved["boot_id"] == "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    assert value(items, "sentinel_boot_time_seconds") == 1_790_000_000


def test_agent_restart_on_the_same_boot_is_not_a_reboot(machine: Callable[[str], Path], tmp: Path) -> None:
    """A second collector (agent restarted) on the same boot raises nothing."""
    root = machine("terminal")
    list(collector(root, tmp / "state").collect())
    items = list(collector(root, tmp / "state").collect())
    assert not [i for i in items if isinstance(i, Event)]


def test_reboot_while_the_agent_was_down_is_one_event(machine: Callable[[str], Path], tmp: Path) -> None:
    """A new boot_id after an agent restart yields one health.reboot event, then no more."""
    root = machine("terminal")
    list(collector(root, tmp / "state").collect())
    (root / "proc" / "sys" / "kernel" / "random" / "boot_id").write_text(
        "11111111-2222-3333-4444-555555555555\n"
    )
    stat = root / "proc" / "stat"
    stat.write_text(stat.read_text().replace("btime 1790000000", "btime 1790086400"))
    after = collector(root, tmp / "state")
    (event,) = [i for i in after.collect() if isinstance(i, Event)]
    assert (event.detector, event.kind, event.time) == ("health", "reboot", 1_790_086_400)
    assert event.get("previous_boot_time") == 1_790_000_000
    assert not [i for i in after.collect() if isinstance(i, Event)]


def test_without_boot_id_a_moved_boot_time_is_a_reboot(machine: Callable[[str], Path], tmp: Path) -> None:
    """No boot_id (old kernel): a boot time that moved by more than a minute is a reboot."""
    root = machine("terminal")
    (root / "proc" / "sys" / "kernel" / "random" / "boot_id").unlink()
    list(collector(root, tmp / "state").collect())
    stat = root / "proc" / "stat"
    stat.write_text(stat.read_text().replace("btime 1790000000", "btime 1790000002"))
    assert not [i for i in collector(root, tmp / "state").collect() if isinstance(i, Event)]
    stat.write_text(stat.read_text().replace("btime 1790000002", "btime 1790003600"))
    assert [i.kind for i in collector(root, tmp / "state").collect() if isinstance(i, Event)] == ["reboot"]


def test_unwritable_state_dir_does_not_fail_the_run(machine: Callable[[str], Path], tmp: Path) -> None:
    """The boot cannot be saved (state_dir is a file, not a directory): the run still reports."""
    state = tmp / "state"
    state.write_text("not a directory")
    items = list(collector(machine("terminal"), state).collect())
    assert value(items, "sentinel_boot_time_seconds") == 1_790_000_000


def test_live_machine(tmp: Path) -> None:
    """On this machine: CPUs, memory, processes and boot time agree with other sources."""
    items = list(HealthCollector(HealthConfig(), state_dir=tmp).collect())
    assert value(items, "sentinel_cpus") == os.sysconf("SC_NPROCESSORS_ONLN")
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert value(items, "sentinel_memory_total_bytes") == pytest.approx(total, rel=0.01)
    assert 0 <= value(items, "sentinel_memory_used_ratio") <= 1  # type: ignore[operator]
    assert values(items, "sentinel_processes")[(("state", "running"),)] >= 1  # this test runs
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert value(items, "sentinel_boot_time_seconds") == pytest.approx(time.time() - uptime, abs=5)
    assert value(items, "sentinel_device_read_errors_total", collector="health") == 0
