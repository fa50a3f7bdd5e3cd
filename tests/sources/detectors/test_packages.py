"""The software inventory on real packages installed by the real dpkg into a private root: one
event per operation with packages, versions, files and who; operations made while the agent was
down; reinstalls; the lock holder; the metrics; and the oracle's answers."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sentinel.core.attribution import FileState, Verdict
from sentinel.core.model import Event
from sentinel.sources.detectors.packages import PackagesCollector, PackagesConfig
from sentinel.testing import wait_until
from tests.support.dpkg import DpkgRoot, dpkg_available, lock_held

pytestmark = pytest.mark.skipif(not dpkg_available(), reason="needs dpkg and dpkg-deb (Debian)")


class Events:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[Event] = []

    def __call__(self, items: Sequence[Any]) -> bool:
        with self._lock:
            self.items += [i for i in items if isinstance(i, Event)]
        return True

    def operations(self) -> list[Event]:
        with self._lock:
            seen: dict[str, Event] = {}
            for e in self.items:
                seen.setdefault(e.subject, e)  # the first event of each operation (updates follow)
            return list(seen.values())

    def wait(self, count: int, timeout: float = 20.0) -> list[Event]:
        return list(
            wait_until(lambda: (ops := self.operations()) and len(ops) >= count and ops, timeout=timeout)
        )


@pytest.fixture
def root(tmp_path: Path) -> DpkgRoot:
    r = DpkgRoot(tmp_path / "root", tmp_path / "debs")
    (r.root / "usr/bin").mkdir(parents=True)
    return r


def config(root: DpkgRoot) -> PackagesConfig:
    return PackagesConfig(root=root.root, dpkg_log=root.log, poll=0.2, settle=0.6)  # type: ignore[arg-type]


@pytest.fixture
def running(tmp_path: Path, root: DpkgRoot) -> Iterator[tuple[PackagesCollector, Events]]:
    collector = PackagesCollector(config(root), state_dir=tmp_path / "state")
    assert collector.tracker is not None
    collector.tracker.watch_roots((str(root.root / "usr"),))
    events = Events()
    collector.start(events)
    assert collector.wait_ready()
    yield collector, events
    collector.stop()


def details(event: Event) -> dict[str, Any]:
    return dict(json.loads(str(event.get("details"))))


def test_one_event_per_operation_with_packages_files_and_who(
    root: DpkgRoot, running: tuple[PackagesCollector, Events]
) -> None:
    """Two packages in one dpkg run are one operation; its files, not its directories, are listed."""
    collector, events = running
    a = root.build("sntest-a", "1.0", {"/usr/bin/sntest-a": "a", "/usr/share/sntest-a/doc": "d"})
    b = root.build("sntest-b", "2.0", {"/usr/bin/sntest-b": "b"})
    root.install(a, b)
    [op] = events.wait(1)
    change = details(op)
    assert op.kind == "operation" and op.get("summary") == "install sntest-a 1.0; install sntest-b 2.0"
    assert sorted(change["files"]) == sorted(
        str(root.root / p) for p in ("usr/bin/sntest-a", "usr/bin/sntest-b", "usr/share/sntest-a/doc")
    )
    assert op.get("files") == 3 and op.get("packages") == 2
    assert change["user"] == "root" and "dpkg" in change["command"] and "-i" in change["command"]
    assert change["actor"]["id"] == "os:root" and change["actor"]["uid"] == 0
    samples = {(s.name, s.label("action")): s.value for s in collector.current()}
    assert samples[("sentinel_packages_installed", "")] == 2
    assert samples[("sentinel_package_changes_total", "install")] == 2
    assert samples[("sentinel_package_changes_total", "remove")] == 0  # initialised at zero
    assert samples[("sentinel_package_operations_total", "")] == 1
    assert samples[("sentinel_package_last_change_timestamp_seconds", "")] >= op.time
    sight = collector.sight()  # the status board: up, and when it last looked
    assert sight.up and sight.last_run_at is not None and sight.last_run_at >= op.time


def test_upgrade_downgrade_reinstall_remove(
    root: DpkgRoot, running: tuple[PackagesCollector, Events]
) -> None:
    """Each is told apart: versions compared the Debian way, a reinstall by its rewritten list."""
    collector, events = running
    v1 = root.build("sntest-v", "1.0", {"/usr/bin/sntest-v": "1", "/usr/share/sntest-v/old": "o"})
    v2 = root.build("sntest-v", "1.0+b1", {"/usr/bin/sntest-v": "2"})
    root.install(v1)
    events.wait(1)
    root.install(v2)
    upgrade = events.wait(2)[-1]
    assert upgrade.get("summary") == "upgrade sntest-v 1.0 -> 1.0+b1"
    assert details(upgrade)["removed_files"] == [str(root.root / "usr/share/sntest-v/old")]
    root.install(v1)
    assert events.wait(3)[-1].get("summary") == "downgrade sntest-v 1.0+b1 -> 1.0"
    time.sleep(1.1)  # the list's mtime must move for a reinstall without a log (seconds resolution)
    root.install(v1)
    assert events.wait(4)[-1].get("summary") == "reinstall sntest-v 1.0"
    root.remove("sntest-v")
    removal = events.wait(5)[-1]
    assert removal.get("summary") == "remove sntest-v 1.0"
    assert str(root.root / "usr/bin/sntest-v") in details(removal)["removed_files"]
    counts = {
        s.label("action"): s.value for s in collector.current() if s.name == "sentinel_package_changes_total"
    }
    assert counts == {"install": 1, "upgrade": 1, "downgrade": 1, "reinstall": 1, "remove": 1}


def test_operations_while_the_agent_was_down_are_found_at_start(tmp_path: Path, root: DpkgRoot) -> None:
    """The remembered inventory and file lists show what changed while stopped, with its files."""
    root.install(root.build("sntest-d", "1.0", {"/usr/bin/sntest-d": "1"}))
    first = PackagesCollector(config(root), state_dir=tmp_path / "state")
    first.start(Events())
    assert first.wait_ready()
    first.stop()  # the first start takes the inventory silently
    root.remove("sntest-d")
    root.install(root.build("sntest-e", "1.0", {"/usr/bin/sntest-e": "1"}))
    again = PackagesCollector(config(root), state_dir=tmp_path / "state")
    events = Events()
    again.start(events)
    try:
        [op] = events.wait(1)
    finally:
        again.stop()
    change = details(op)
    assert op.get("how") == "startup"
    assert {(p["name"], p["action"]) for p in change["packages"]} == {
        ("sntest-d", "remove"),
        ("sntest-e", "install"),
    }
    assert str(root.root / "usr/bin/sntest-d") in change["removed_files"]  # its list was gone from dpkg
    assert str(root.root / "usr/bin/sntest-e") in change["files"]


def test_apt_history_names_who_asked(root: DpkgRoot, running: tuple[PackagesCollector, Events]) -> None:
    """With an apt transaction covering the operation, its Requested-By and Commandline are used."""
    _collector, events = running
    start = datetime.now().strftime("%Y-%m-%d  %H:%M:%S")
    root.install(root.build("sntest-h", "1.0", {"/usr/bin/sntest-h": "1"}))
    end = datetime.now().strftime("%Y-%m-%d  %H:%M:%S")
    root.write_history(
        start=start,
        end=end,
        command="apt-get install sntest-h",
        user="alice",
        uid=1000,
        lines="Install: sntest-h:all (1.0)",
    )
    [op] = events.wait(1)
    assert (op.get("user"), op.get("command")) == ("alice", "apt-get install sntest-h")
    assert details(op)["actor"]["requested_by_uid"] == 1000


def test_busy_while_the_lock_is_held_and_verdicts_after(
    root: DpkgRoot, running: tuple[PackagesCollector, Events]
) -> None:
    """While dpkg's lock is held every question is PENDING; after, a package file is part of its
    operation, a hand edit differs, an unowned file written during it is `unowned`."""
    collector, events = running
    tracker = collector.tracker
    assert tracker is not None and not tracker.busy()
    with lock_held(root.admin / "lock"):
        assert tracker.busy()
        assert tracker.file_verdict("/x", FileState(False), observed=time.time()).verdict is Verdict.PENDING
        assert tracker.exe_verdict(os.getpid(), "/x").verdict is Verdict.PENDING
    wait_until(lambda: not tracker.busy(), timeout=10)

    path = root.root / "usr/bin/sntest-o"
    root.install(root.build("sntest-o", "1.0", {"/usr/bin/sntest-o": "genuine\n"}))
    generated = root.root / "usr/bin/generated.cache"
    generated.write_text("made by a maintainer script\n")  # while the operation settles
    [op] = events.wait(1)
    seen = time.time()
    ours = tracker.file_verdict(str(path), FileState(True, "file", path.stat().st_ctime), observed=seen)
    assert (ours.verdict, ours.package, ours.operation) == (Verdict.OPERATION, "sntest-o:all", op.subject)
    made = tracker.file_verdict(
        str(generated), FileState(True, "file", generated.stat().st_ctime), observed=seen
    )
    assert made.verdict is Verdict.OPERATION and made.unowned
    time.sleep(1.5)  # past the operation's window
    path.write_text("trojan\n")
    tampered = tracker.file_verdict(
        str(path), FileState(True, "file", path.stat().st_ctime), observed=time.time()
    )
    assert tampered.verdict is Verdict.DIFFERS and tampered.package == "sntest-o:all"
    assert tampered.note == "content differs from package; no package operation"
    other = root.root / "usr/bin/unowned"
    other.write_text("x")
    assert (
        tracker.file_verdict(
            str(other), FileState(True, "file", other.stat().st_ctime), observed=time.time()
        ).verdict
        is Verdict.NONE
    )


def test_no_database_here_is_no_thread_and_no_oracle(tmp_path: Path) -> None:
    """Without a dpkg database the source has no tracker, starts nothing, and says so in metrics."""
    collector = PackagesCollector(
        PackagesConfig(root=tmp_path / "nothing"),  # type: ignore[arg-type]
        state_dir=tmp_path / "state",
    )
    assert collector.oracle is None
    collector.start(Events())
    collector.stop()
    up = [s.value for s in collector.current() if s.name == "sentinel_detector_up"]
    assert up == [0]
    sight = collector.sight()
    assert not sight.up and "no package database under" in sight.reason
