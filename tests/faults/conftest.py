"""Fault-injection helpers: small real filesystems mounted for one test."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI


@pytest.fixture
def small_fs(tmp: Path) -> Iterator[Callable[[str], Path]]:
    """Mount a tmpfs of the given size (e.g. "2m") under tmp; unmounted at the end."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        if os.geteuid() != 0:
            if IN_CI:
                pytest.fail("fault tests need root to mount a small tmpfs")
            pytest.skip("needs root to mount a small tmpfs (run `make test` as root)")
        target = tmp / f"fs{len(mounted)}"
        target.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(target)], check=True
        )
        mounted.append(target)
        return target

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", "-l", str(target)], check=False)


def remount_readonly(path: Path, readonly: bool = True) -> None:
    """Flip a mounted tmpfs between read-only and read-write."""
    subprocess.run(["mount", "-o", f"remount,{'ro' if readonly else 'rw'}", str(path)], check=True)
