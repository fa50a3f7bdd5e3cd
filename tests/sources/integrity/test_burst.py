"""A burst past the kernel's inotify queue: nothing lost, overflow counted, one mass hazard."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel.sources.integrity.config import WatchConfig
from sentinel.testing import wait_until
from tests.sources.integrity.conftest import config_for
from tests.sources.integrity.rules_helper import hazards_for

PER_DIR = 1000


def archives(tmp: Path, files: int) -> tuple[Path, Path]:
    """Two tar files of the same `files` paths: first content, then changed content."""
    out = []
    for name, content in (("a.tar", b"original"), ("b.tar", b"encrypted!")):
        with tarfile.open(tmp / name, "w") as tar:
            for i in range(files):
                info = tarfile.TarInfo(f"d{i // PER_DIR}/f{i % PER_DIR}.doc")
                info.size = len(content)
                info.mtime = 1_700_000_000 + (name == "b.tar")
                tar.addfile(info, io.BytesIO(content))
        out.append(tmp / name)
    return out[0], out[1]


@pytest.fixture
def fast_dir(tmp: Path) -> Iterator[Path]:
    """A private directory on tmpfs when there is one: creating 50k files on this disk takes
    minutes of kernel time, on tmpfs under a second (inotify works the same on both)."""
    shm = Path("/dev/shm")
    base = Path(tempfile.mkdtemp(prefix="sentinel-fim-", dir=shm)) if shm.is_dir() else tmp / "fast"
    base.mkdir(exist_ok=True)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def burst(tmp: Path, docs: Path, run_fim: Callable[..., Any], files: int) -> None:
    """Create then modify `files` documents with tar (C speed, far faster than inotify is read)."""
    if shutil.which("tar") is None:
        pytest.skip("tar not found")
    first, second = archives(docs.parent, files)
    docs.mkdir()
    collector, rec = run_fim(config_for(WatchConfig(docs, policy="data")))
    started = time.monotonic()
    subprocess.run(["tar", "-C", str(docs), "-xf", str(first)], check=True)
    subprocess.run(["tar", "-C", str(docs), "--overwrite", "-xf", str(second)], check=True)
    wanted = {str(docs / f"d{i // PER_DIR}" / f"f{i % PER_DIR}.doc") for i in range(files)}

    def missing() -> set[str]:
        seen = {e.subject for e in rec.snapshot() if e.kind in ("created", "modified")}
        return wanted - seen

    try:
        wait_until(lambda: not missing(), timeout=90, interval=0.2)
    except TimeoutError:
        pytest.fail(f"{len(missing())} of {files} changed files never reported")
    elapsed = time.monotonic() - started
    assert collector.overflows >= 1, f"the burst did not overflow the inotify queue ({elapsed:.1f}s)"
    hazards = hazards_for(rec.snapshot(), tmp / "h.db")
    mass = [h for h in hazards if h["rule"] == "fim_mass_modification"]
    assert len(mass) == 1 and len(hazards) == 1, [h["rule"] for h in hazards]
    assert mass[0]["evidence"][0]["sample_paths"]


def test_burst_50k_files_nothing_lost(tmp: Path, fast_dir: Path, run_fim: Callable[..., Any]) -> None:
    """50,000 files created and modified: every one reported, overflow counted, one mass hazard."""
    burst(tmp, fast_dir / "docs", run_fim, 50_000)
