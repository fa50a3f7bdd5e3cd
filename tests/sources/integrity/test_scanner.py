"""Walking and hashing: parallel, bounded, and every odd file counted rather than fatal."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest
import structlog

from sentinel.sources.integrity import hashing
from sentinel.sources.integrity.config import WatchConfig
from sentinel.sources.integrity.entry import Entry
from sentinel.sources.integrity.hashing import Throttle
from sentinel.sources.integrity.scanner import Scanner, ScanStats, WatchSet
from sentinel.sources.integrity.table import EntryTable
from sentinel.testing import FakeClock


def tree(root: Path, files: int = 300) -> dict[str, bytes]:
    out = {}
    for i in range(files):
        path = root / f"d{i % 7}" / f"f{i}"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(i * 37)
        path.write_bytes(data)
        out[str(path)] = data
    return out


def scanner(*watches: WatchConfig, workers: int = 2) -> Scanner:
    return Scanner(WatchSet(watches), workers=workers, buffer=4096)


def test_parallel_hashes_match_hashlib(tmp: Path) -> None:
    """Two workers with a small buffer give the same SHA-256 as hashlib."""
    data = tree(tmp / "t")
    result = scanner(WatchConfig(tmp / "t")).scan()
    for path, content in data.items():
        assert result[path].sha256 == hashlib.sha256(content).hexdigest()


def test_symlinks_recorded_not_followed(tmp: Path) -> None:
    """A symlink is an entry with its target; the directory it points to is not walked."""
    (tmp / "t").mkdir()
    (tmp / "elsewhere").mkdir()
    (tmp / "elsewhere" / "secret").write_text("x")
    (tmp / "t" / "link").symlink_to(tmp / "elsewhere")
    result = scanner(WatchConfig(tmp / "t")).scan()
    assert result[str(tmp / "t" / "link")].type == "symlink"
    assert result[str(tmp / "t" / "link")].target == str(tmp / "elsewhere")
    assert not any("secret" in p for p in result)


def test_a_followed_link_records_and_hashes_its_target(tmp: Path) -> None:
    """Following links, a link to a file is that file: its type, and the hash of its content
    (the target lies outside the watched tree: that takes follow_outside, issue 19)."""
    (tmp / "t").mkdir()
    (tmp / "elsewhere").write_bytes(b"the real content")
    (tmp / "t" / "link").symlink_to(tmp / "elsewhere")
    watch = WatchConfig(tmp / "t", follow_symlinks=True, follow_outside=True)
    entry = scanner(watch).scan()[str(tmp / "t" / "link")]
    assert entry.type == "file" and entry.target is None
    assert entry.sha256 == hashlib.sha256(b"the real content").hexdigest()


def test_symlink_loop_counted_when_following(tmp: Path) -> None:
    """Following links, a link back up the tree is cut and counted as a loop."""
    (tmp / "t" / "a").mkdir(parents=True)
    (tmp / "t" / "a" / "up").symlink_to(tmp / "t")
    (tmp / "t" / "self").symlink_to(tmp / "t" / "self")
    stats = ScanStats()
    scanner(WatchConfig(tmp / "t", follow_symlinks=True)).scan(stats=stats)
    assert stats.skipped["loop"] == 2


def test_fifo_and_unreadable_counted(tmp: Path) -> None:
    """A FIFO is recorded but never opened; an unreadable file has no hash and is counted."""
    (tmp / "t").mkdir()
    os.mkfifo(tmp / "t" / "pipe")
    locked = tmp / "t" / "locked"
    locked.write_text("x")
    locked.chmod(0)
    stats = ScanStats()
    result = scanner(WatchConfig(tmp / "t")).scan(stats=stats)
    assert result[str(tmp / "t" / "pipe")].type == "fifo"
    assert stats.skipped["special"] == 1
    if os.geteuid() != 0:  # root reads it anyway
        assert result[str(locked)].sha256 is None
        assert stats.skipped["unreadable"] == 1


@pytest.mark.parametrize("table", [dict, EntryTable])
def test_quick_mode_trusts_unchanged_stat(tmp: Path, table: type[Mapping[str, Entry]]) -> None:
    """Quick mode reuses a recorded hash while (size, mtime, ctime, inode) hold; deep rehashes.
    (The agent's reference is a packed table, which has its own fast path.)"""
    tree(tmp / "t", files=20)
    s = scanner(WatchConfig(tmp / "t"))
    first = s.scan()
    fake = table({p: e.with_digests("f" * 64 if e.type == "file" else None, None) for p, e in first.items()})
    quick_stats, deep_stats = ScanStats(), ScanStats()
    quick = s.scan(reference=fake, deep=False, stats=quick_stats)
    deep = s.scan(reference=fake, deep=True, stats=deep_stats)
    assert quick_stats.hashed == 0
    assert all(e.sha256 == ("f" * 64 if e.type == "file" else None) for e in quick.values())
    assert deep_stats.hashed == 20 and deep == first


def test_quick_scan_shares_unchanged_records_and_rehashes_what_it_cannot_trust(tmp: Path) -> None:
    """Against a packed reference, unchanged paths share its records; a chmod (a new ctime) and a
    file whose recorded hash is missing (unreadable last time) are hashed again."""
    files = tree(tmp / "t", files=10)
    s = scanner(WatchConfig(tmp / "t"))
    reference = s.scan()
    chmodded, unhashed, *_ = sorted(files)
    reference[unhashed] = reference[unhashed].with_digests(None, None)
    os.chmod(chmodded, 0o600)
    stats = ScanStats()
    quick = s.scan(reference=reference, deep=False, stats=stats)
    assert stats.hashed == 2
    assert quick[unhashed].sha256 == hashlib.sha256(files[unhashed]).hexdigest()
    assert quick[chmodded].mode == 0o600 and quick[chmodded].sha256 == reference[chmodded].sha256
    assert not quick.same(chmodded, reference)
    unchanged = [p for p in quick if p not in (chmodded, unhashed)]
    assert unchanged and all(quick.same(p, reference) for p in unchanged)
    assert all(quick._packed[p] is reference._packed[p] for p in unchanged)  # one record, not two


def test_globs_and_nested_entries(tmp: Path) -> None:
    """Excluded names are left out; a nested entry decides below its own path; ignore leaves out."""
    (tmp / "t" / "sub").mkdir(parents=True)
    (tmp / "t" / "skip").mkdir()
    for name in ("a.conf", "a.swp", "sub/b.conf", "skip/c.conf"):
        (tmp / "t" / name).write_text("x")
    watchset = WatchSet(
        [
            WatchConfig(tmp / "t", exclude=("*.swp",)),
            WatchConfig(tmp / "t" / "sub", policy="critical"),
            WatchConfig(tmp / "t" / "skip", policy="ignore"),
        ]
    )
    result = Scanner(watchset).scan()
    names = sorted(p.removeprefix(str(tmp / "t")) for p in result)
    assert names == ["", "/a.conf", "/sub", "/sub/b.conf"]
    assert watchset.resolve(str(tmp / "t" / "sub" / "b.conf")).policy == "critical"  # type: ignore[union-attr]


def test_file_changing_while_hashed_is_read_again(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that grows during the first read is read again, and the hash is of its final content."""
    path = tmp / "growing"
    path.write_bytes(b"a" * 10)
    real_read = os.read
    appended = []

    def read(fd: int, n: int) -> bytes:
        if not appended:
            appended.append(True)
            with open(path, "ab") as fh:
                fh.write(b"b" * 10)
        return real_read(fd, n)

    monkeypatch.setattr(hashing.os, "read", read)
    result = hashing.hash_file(str(path), buffer=4)
    assert result.sha256 == hashlib.sha256(b"a" * 10 + b"b" * 10).hexdigest()
    assert result.problem == ""


def test_vanished_file_is_counted(tmp: Path) -> None:
    """A file that disappears before it is hashed is `vanished`, not an error."""
    assert hashing.hash_file(str(tmp / "gone")).problem == "vanished"


class RecordingStop(threading.Event):
    """A stop event whose waits are recorded instead of slept (the pacing under test)."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        return False


def test_pacing_holds_the_cpu_share_and_gives_no_io_credit_for_idle_time() -> None:
    """Half a core: 0.1 s of work earns 0.1 s of rest. 1 MB/s: 1 MB waits 1 s, and after an hour
    idle 2 MB still wait 2 s (idle time is not a budget to burst through)."""
    clock, stop = FakeClock(), RecordingStop()
    Throttle(cpu_share=0.5, stop=stop, clock=clock.monotonic).pace(0.1, 0)
    assert stop.waits == [pytest.approx(0.1)]
    throttle = Throttle(io_rate=1_000_000, stop=stop, clock=clock.monotonic)
    throttle.pace(0.0, 1_000_000)
    assert stop.waits[-1] == pytest.approx(1.0)
    clock.advance(3600)
    throttle.pace(0.0, 2_000_000)
    assert stop.waits[-1] == pytest.approx(2.0)


def _outside_tree(tmp: Path) -> tuple[Path, Path]:
    """A watched root holding a link to a tree outside it (as `etc-link -> /etc` would)."""
    outside = tmp / "outside"
    outside.mkdir()
    for i in range(20):
        (outside / f"f{i}").write_text(str(i))
    root = tmp / "root"
    root.mkdir()
    (root / "a.txt").write_text("a")
    (root / "inner").mkdir()
    (root / "inner" / "b.txt").write_text("b")
    os.symlink(outside, root / "out-link")
    os.symlink(root / "inner", root / "in-link")
    return root, outside


def test_followed_links_stay_inside_the_watched_trees(tmp: Path) -> None:
    """Item 11: follow_symlinks follows links into watched trees only; a link out is a link."""
    root, _ = _outside_tree(tmp)
    watch = WatchConfig(path=root, policy="critical", follow_symlinks=True)
    stats = ScanStats()
    walked = {p: e for p, e, _ in Scanner(WatchSet([watch])).walk(stats=stats)}
    assert not any(p.startswith(str(root / "out-link") + "/") for p in walked)
    assert walked[str(root / "out-link")].type == "symlink"
    assert stats.skipped["outside"] == 1
    assert str(root / "in-link" / "b.txt") in walked  # inside: followed as before


def test_follow_outside_is_an_explicit_choice(tmp: Path) -> None:
    """With follow_outside = true the link out is walked, as configured."""
    root, _ = _outside_tree(tmp)
    watch = WatchConfig(path=root, policy="critical", follow_symlinks=True, follow_outside=True)
    walked = [p for p, _, _ in Scanner(WatchSet([watch])).walk()]
    assert sum(p.startswith(str(root / "out-link") + "/") for p in walked) == 20


def test_a_refused_nice_is_logged_once_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A filter denying setpriority: the scanner says so once (scan_nice_refused) and goes on."""

    def refuse(*_args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refuse)
    scanner = Scanner(WatchSet(()), nice=10)
    with structlog.testing.capture_logs() as logs:
        threads = [threading.Thread(target=scanner._lower_priority) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert [e["event"] for e in logs] == ["scan_nice_refused"]
