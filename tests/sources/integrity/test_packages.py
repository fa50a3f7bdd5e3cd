"""The integrity monitor joined to the software inventory (sentinel.sources.integrity.packages):
real dpkg runs into a private root watched by a real monitor with realtime inotify."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel.core.model import Event
from sentinel.sources.detectors.packages import PackagesCollector, PackagesConfig
from sentinel.sources.integrity.config import MassModificationConfig, WatchConfig
from sentinel.sources.integrity.monitor import IntegrityCollector
from sentinel.testing import wait_until
from tests.sources.integrity.conftest import Recorder, config_for
from tests.sources.integrity.rules_helper import hazards_for
from tests.support.dpkg import DpkgRoot, dpkg_available

pytestmark = pytest.mark.skipif(not dpkg_available(), reason="needs dpkg and dpkg-deb (Debian)")


@pytest.fixture
def root(tmp: Path) -> DpkgRoot:
    r = DpkgRoot(tmp / "root", tmp / "debs")
    (r.root / "usr/bin").mkdir(parents=True)
    return r


def joined(
    tmp: Path, root: DpkgRoot, *, settle: float = 0.8, **fim: Any
) -> tuple[PackagesCollector, IntegrityCollector]:
    """A packages source on `root` and an integrity monitor on root/usr asking it (not started)."""
    packages = PackagesCollector(
        PackagesConfig(root=root.root, dpkg_log=root.log, poll=0.2, settle=settle),  # type: ignore[arg-type]
        state_dir=tmp / "state",
    )
    monitor = IntegrityCollector(
        config_for(WatchConfig(path=root.root / "usr", policy="readonly"), **fim),
        state_dir=tmp / "state",
        packages=packages.oracle,  # type: ignore[arg-type]
    )
    return packages, monitor


@pytest.fixture
def watched(tmp: Path, root: DpkgRoot) -> Iterator[Callable[..., tuple[IntegrityCollector, Recorder]]]:
    """A packages source and an integrity monitor on root/usr, sharing one event recorder."""
    started: list[Any] = []

    def start(**fim: Any) -> tuple[IntegrityCollector, Recorder]:
        recorder = Recorder()
        packages, monitor = joined(tmp, root, **fim)
        packages.start(recorder)
        monitor.start(recorder)
        started.extend([monitor, packages])
        assert packages.wait_ready() and monitor.wait_ready(20)
        return monitor, recorder

    yield start
    for collector in started:
        collector.stop()


def fim(recorder: Recorder) -> list[Event]:
    return [e for e in recorder.snapshot() if e.detector == "fim"]


def operations(recorder: Recorder) -> list[Event]:
    return [e for e in recorder.snapshot() if e.detector == "packages"]


def test_a_big_install_is_folded_and_no_ransomware_burst(
    root: DpkgRoot, watched: Callable[..., tuple[IntegrityCollector, Recorder]], tmp: Path
) -> None:
    """250 files in one package (past 200 changes in 10 s): every change is attributed to the
    operation, none counts for mass modification, and the shipped rules raise only its record."""
    monitor, recorder = watched(mass_modification=MassModificationConfig(changes=200, change_window=10))  # type: ignore[arg-type]
    files = {f"/usr/share/sntest-big/f{i:03}": f"content {i}\n" for i in range(250)}
    root.install(root.build("sntest-big", "1.0", {**files, "/usr/bin/sntest-big": "#!/bin/sh\n"}))
    wait_until(lambda: len([e for e in fim(recorder) if e.kind == "created"]) >= 251, timeout=30)
    created = [e for e in fim(recorder) if e.kind == "created"]
    assert all(e.get("attributed") == "yes" for e in created), [
        e.subject for e in created if e.get("attributed") != "yes"
    ]
    assert {e.get("package") for e in created if e.subject.endswith("f007")} == {"sntest-big:all"}
    assert not [e for e in fim(recorder) if e.kind == "mass_modification"]
    samples = {s.name: s.value for s in monitor.current() if not s.labels}
    assert samples["sentinel_fim_attributed_total"] >= 251 and samples["sentinel_fim_held_paths"] == 0
    records = hazards_for(recorder.snapshot(), tmp / "hazards.db")
    assert [r["rule"] for r in records] == ["package_change_outside_window"]
    [record] = records
    assert record["change"]["files_total"] == 251 and len(record["change"]["files"]) == 200  # capped list
    wait_until(lambda: len(operations(recorder)) >= 2, timeout=10)  # the update with what the monitor checked
    update = json.loads(str(operations(recorder)[-1].get("details")))
    assert update["verified_files"] >= 251


def test_content_that_differs_from_the_package_during_the_operation_is_critical(
    root: DpkgRoot, watched: Callable[..., tuple[IntegrityCollector, Recorder]], tmp: Path
) -> None:
    """A file of the package overwritten right after dpkg wrote it (inside the operation's
    window) is not the package's: `content differs from package`, the critical rule."""
    _monitor, recorder = watched()
    binary = root.root / "usr/bin/sntest-t"
    root.install(root.build("sntest-t", "1.0", {"/usr/bin/sntest-t": "#!/bin/sh\necho genuine\n"}))
    binary.write_text("#!/bin/sh\necho trojan\n")  # before the operation settles
    event = wait_until(lambda: next((e for e in fim(recorder) if e.subject == str(binary)), None), timeout=20)
    assert event.get("attributed") is None and event.get("package") == "sntest-t:all"
    assert event.get("package_check") == "content differs from package"
    assert event.get("operation") == operations(recorder)[0].subject
    rules = sorted(r["rule"] for r in hazards_for(recorder.snapshot(), tmp / "hazards.db"))
    assert rules == ["fim_package_mismatch", "package_change_outside_window"]


def test_generated_files_fold_and_a_later_hand_change_does_not(
    root: DpkgRoot, watched: Callable[..., tuple[IntegrityCollector, Recorder]], tmp: Path
) -> None:
    """A file no package owns, written while the operation settles (a maintainer script's cache),
    is folded and listed as unowned; the same kind of file written later is the readonly hazard."""
    _monitor, recorder = watched()
    cache = root.root / "usr/bin/generated.cache"
    root.install(root.build("sntest-g", "1.0", {"/usr/bin/sntest-g": "#!/bin/sh\n"}))
    cache.write_text("generated\n")
    wait_until(lambda: any(e.subject == str(cache) for e in fim(recorder)), timeout=20)
    [made] = [e for e in fim(recorder) if e.subject == str(cache)]
    assert made.get("attributed") == "yes" and made.get("package") == ""
    wait_until(lambda: len(operations(recorder)) >= 2, timeout=10)
    assert json.loads(str(operations(recorder)[-1].get("details")))["unowned_files"] == [str(cache)]
    time.sleep(2.0)  # well after the operation's window
    late = root.root / "usr/bin/dropped"
    late.write_text("x")
    event = wait_until(lambda: next((e for e in fim(recorder) if e.subject == str(late)), None), timeout=10)
    assert event.get("attributed") is None and event.get("package") is None
    rules = sorted(r["rule"] for r in hazards_for(recorder.snapshot(), tmp / "hazards.db"))
    assert rules == ["fim_readonly_change", "package_change_outside_window"]


def test_a_change_held_when_the_monitor_stops_is_found_again_at_the_next_start(
    tmp: Path, root: DpkgRoot
) -> None:
    """Held changes are not in the reference nor in observed.fim: a restart's rescan finds them,
    and the inventory (which remembers the operation) attributes them."""
    recorder = Recorder()
    packages, monitor = joined(tmp, root, settle=30)
    packages.start(recorder)
    monitor.start(recorder)
    assert packages.wait_ready() and monitor.wait_ready(20)
    root.install(root.build("sntest-s", "1.0", {"/usr/bin/sntest-s": "#!/bin/sh\n"}))
    wait_until(lambda: monitor.holds.count() >= 1, timeout=10)  # settle = 30 s: still held
    monitor.stop()
    packages.stop()
    assert not fim(recorder)

    recorder = Recorder()
    packages, monitor = joined(tmp, root, settle=0.5)
    packages.start(recorder)
    monitor.start(recorder)
    try:
        binary = str(root.root / "usr/bin/sntest-s")
        event = wait_until(lambda: next((e for e in fim(recorder) if e.subject == binary), None), timeout=20)
    finally:
        monitor.stop()
        packages.stop()
    assert event.get("attributed") == "yes" and event.get("how") in ("package", "rescan:startup")
    [op] = operations(recorder)[:1]
    assert op.get("how") == "startup" and event.get("operation") == op.subject
