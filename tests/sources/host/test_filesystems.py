"""The filesystems collector: which mounts, what it reads, and a hung mount that never blocks it."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sentinel.core.settings import Duration
from sentinel.sources.host.filesystems import (
    FilesystemsCollector,
    FilesystemsConfig,
    Stalled,
    StallGuard,
    parse_mounts,
)
from sentinel.testing import wait_until
from tests.sources.conftest import value, values


def fake_statvfs(path: str, *, readonly: bool = False, files: int = 1000) -> Any:
    """A statvfs answer: 1000 blocks of 4 KiB, 100 free, 50 of them for unprivileged users."""
    return SimpleNamespace(
        f_frsize=4096,
        f_blocks=1000,
        f_bfree=100,
        f_bavail=50,
        f_files=files,
        f_ffree=files // 4,
        f_flag=os.ST_RDONLY if readonly else 0,
    )


def collector(
    root: Path, statvfs: Callable[[str], Any] = fake_statvfs, timeout: float = 2
) -> FilesystemsCollector:
    config = FilesystemsConfig(statfs_timeout=Duration(timeout))
    return FilesystemsCollector(config, proc_root=root / "proc", statvfs=statvfs)


def mountpoints(items: Any) -> set[str]:
    return {dict(k)["mountpoint"] for k in values(items, "sentinel_filesystem_stalled")}


def test_pseudo_network_and_container_mounts_are_skipped(machine: Callable[[str], Path]) -> None:
    """proc, sysfs, tmpfs, nfs and docker's overlay are left out; real filesystems stay."""
    items = list(collector(machine("terminal")).collect())
    assert mountpoints(items) == {"/", "/boot/efi", "/media/backup disk", "/var"}


def test_df_arithmetic(machine: Callable[[str], Path]) -> None:
    """Size, avail and used ratio as df computes them (reserved blocks excluded)."""
    items = list(collector(machine("terminal")).collect())
    assert (
        value(items, "sentinel_filesystem_size_bytes", device="/dev/sda2", mountpoint="/", fstype="ext4")
        == 1000 * 4096
    )
    assert (
        value(items, "sentinel_filesystem_avail_bytes", device="/dev/sda2", mountpoint="/", fstype="ext4")
        == 50 * 4096
    )
    assert value(
        items, "sentinel_filesystem_used_ratio", device="/dev/sda2", mountpoint="/", fstype="ext4"
    ) == pytest.approx(900 / 950)
    assert (
        value(
            items, "sentinel_filesystem_files_used_ratio", device="/dev/sda2", mountpoint="/", fstype="ext4"
        )
        == 0.75
    )


def test_filesystem_without_inode_table_has_no_inode_metrics(machine: Callable[[str], Path]) -> None:
    """vfat reports 0 inodes: no inode series rather than a ratio of 0/0."""
    items = list(collector(machine("terminal"), lambda p: fake_statvfs(p, files=0)).collect())
    assert (
        value(items, "sentinel_filesystem_files", device="/dev/sda1", mountpoint="/boot/efi", fstype="vfat")
        is None
    )
    assert (
        value(
            items, "sentinel_filesystem_size_bytes", device="/dev/sda1", mountpoint="/boot/efi", fstype="vfat"
        )
        is not None
    )


def test_readonly_from_the_top_mount_or_statvfs(machine: Callable[[str], Path]) -> None:
    """The stacked /var's top mount is ro; statvfs's ST_RDONLY counts too."""
    items = list(collector(machine("terminal"), lambda p: fake_statvfs(p, readonly=p == "/")).collect())
    assert (
        value(items, "sentinel_filesystem_readonly", device="/dev/sda4", mountpoint="/var", fstype="ext4")
        == 1
    )
    assert (
        value(items, "sentinel_filesystem_readonly", device="/dev/sda2", mountpoint="/", fstype="ext4") == 1
    )
    assert (
        value(
            items, "sentinel_filesystem_readonly", device="/dev/sda1", mountpoint="/boot/efi", fstype="vfat"
        )
        == 0
    )


def test_mount_paths_are_unescaped() -> None:
    """The kernel's \\040 is a space; a later mount on the same point hides the earlier one."""
    mounts = parse_mounts("/dev/a /a\\040b ext4 rw 0 0\n/dev/b /x ext4 rw 0 0\n/dev/c /x xfs ro 0 0\n")
    assert [(m.mountpoint, m.fstype, m.options) for m in mounts] == [
        ("/a b", "ext4", ("rw",)),
        ("/x", "xfs", ("ro",)),
    ]


def test_one_mount_failing_does_not_stop_the_others(machine: Callable[[str], Path]) -> None:
    """EIO on one mount is counted; the others are reported; an unmounted one is just absent."""

    def statvfs(path: str) -> Any:
        if path == "/var":
            raise OSError(5, "Input/output error")
        if path == "/boot/efi":
            raise FileNotFoundError(2, "No such file or directory")
        return fake_statvfs(path)

    items = list(collector(machine("terminal"), statvfs).collect())
    assert mountpoints(items) == {"/", "/media/backup disk"}
    assert value(items, "sentinel_device_read_errors_total", collector="filesystems") == 1


def test_hung_mount_is_reported_stalled_without_blocking(machine: Callable[[str], Path]) -> None:
    """statvfs on / hangs: the run ends after one timeout, / is stalled, the rest are read."""
    release = threading.Event()

    def statvfs(path: str) -> Any:
        if path == "/":
            release.wait(30)
        return fake_statvfs(path)

    fs = collector(machine("terminal"), statvfs, timeout=1.0)
    try:
        started = time.monotonic()
        items = list(fs.collect())
        first_run = time.monotonic() - started
        assert (
            value(items, "sentinel_filesystem_stalled", device="/dev/sda2", mountpoint="/", fstype="ext4")
            == 1
        )
        assert (
            value(items, "sentinel_filesystem_size_bytes", device="/dev/sda2", mountpoint="/", fstype="ext4")
            is None
        )
        assert (
            value(items, "sentinel_filesystem_stalled", device="/dev/sda4", mountpoint="/var", fstype="ext4")
            == 0
        )
        assert first_run < 3  # one timeout, not one per mount

        started = time.monotonic()
        items = list(fs.collect())  # still hung: skipped at once, no second thread on it
        assert time.monotonic() - started < 0.5  # well under the 1 s timeout: not waited for
        assert (
            value(items, "sentinel_filesystem_stalled", device="/dev/sda2", mountpoint="/", fstype="ext4")
            == 1
        )
        assert sum(t.name == "statfs-guard" for t in threading.enumerate()) == 1
    finally:
        release.set()
    wait_until(lambda: not fs._guard.busy, timeout=5)
    items = list(fs.collect())
    assert value(items, "sentinel_filesystem_stalled", device="/dev/sda2", mountpoint="/", fstype="ext4") == 0


def test_stall_guard_keeps_order_and_results() -> None:
    """Keys after a stuck one are still answered, by a fresh helper."""
    release = threading.Event()

    def fn(key: str) -> str:
        if key == "b":
            release.wait(30)
        return key.upper()

    guard = StallGuard(fn, timeout=0.1)
    try:
        out = guard.run(["a", "b", "c", "d"])
    finally:
        release.set()
    assert out["a"] == "A" and isinstance(out["b"], Stalled) and out["c"] == "C" and out["d"] == "D"


def test_live_machine() -> None:
    """On this machine: the root filesystem (or whatever is real here) with sane numbers."""
    fs = FilesystemsCollector(FilesystemsConfig())
    items = list(fs.collect())
    ratios = values(items, "sentinel_filesystem_used_ratio")
    if not ratios:
        pytest.skip("no real filesystem mounted here (all pseudo or overlay)")
    assert all(0 <= r <= 1 for r in ratios.values())
    assert not any(values(items, "sentinel_filesystem_stalled").values())
    for labels in values(items, "sentinel_filesystem_size_bytes"):
        st = os.statvfs(dict(labels)["mountpoint"])
        assert values(items, "sentinel_filesystem_size_bytes")[labels] == st.f_blocks * st.f_frsize
