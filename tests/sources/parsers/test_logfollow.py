"""FileFollower on real files: appends, partial lines, rotation, truncation, restarts, garbage."""

from __future__ import annotations

import os
from pathlib import Path

from sentinel.sources.parsers.logfollow import FileFollower


def append(path: Path, *lines: str, end: str = "\n") -> None:
    with open(path, "ab") as fh:
        fh.write((end.join(lines) + end).encode())


def test_starts_at_the_end_on_first_start(tmp_path: Path) -> None:
    """History already in the file is not replayed on a first start; new lines are read."""
    log = tmp_path / "auth.log"
    append(log, "old 1", "old 2")
    f = FileFollower(log)
    assert f.read() == []
    append(log, "new 1")
    assert f.read() == [b"new 1"]


def test_read_existing_reads_from_the_start(tmp_path: Path) -> None:
    """start_at_end=False reads what is there."""
    log = tmp_path / "auth.log"
    append(log, "a", "b")
    assert FileFollower(log, start_at_end=False).read() == [b"a", b"b"]


def test_a_file_created_later_is_read_from_its_start(tmp_path: Path) -> None:
    """A log that appears after the follower started is read whole."""
    log = tmp_path / "auth.log"
    f = FileFollower(log)
    assert f.read() == [] and not f.is_open
    append(log, "first")
    assert f.read() == [b"first"]


def test_a_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    """A line without its newline yet is returned only once it is complete."""
    log = tmp_path / "auth.log"
    log.touch()
    f = FileFollower(log)
    f.read()
    append(log, "half", end="")
    assert f.read() == []
    append(log, " done")
    assert f.read() == [b"half done"]


def test_rename_rotation_loses_nothing(tmp_path: Path) -> None:
    """Lines written to the old file after the rename, and to the new one, are all read once."""
    log = tmp_path / "auth.log"
    log.touch()
    f = FileFollower(log)
    f.read()
    append(log, "before")
    log.rename(tmp_path / "auth.log.1")
    append(tmp_path / "auth.log.1", "late to old")  # the writer has not reopened yet
    append(log, "in new")
    got = f.read() + f.read()
    assert got == [b"before", b"late to old", b"in new"]


def test_rotated_file_not_recreated_yet_keeps_draining(tmp_path: Path) -> None:
    """Between the rename and the new file's creation, the old file is still followed."""
    log = tmp_path / "auth.log"
    log.touch()
    f = FileFollower(log)
    f.read()
    log.rename(tmp_path / "auth.log.1")
    append(tmp_path / "auth.log.1", "still old")
    assert f.read() == [b"still old"]
    append(log, "new")
    assert f.read() == [b"new"]


def test_copytruncate_restarts_at_zero(tmp_path: Path) -> None:
    """A truncated file is read again from its start (logrotate copytruncate)."""
    log = tmp_path / "auth.log"
    log.touch()
    f = FileFollower(log)
    append(log, "one", "two")
    assert f.read() == [b"one", b"two"]
    os.truncate(log, 0)
    append(log, "three")
    assert f.read() == [b"three"]


def test_restart_resumes_at_the_saved_offset(tmp_path: Path) -> None:
    """A new follower given the saved position reads exactly the lines written meanwhile."""
    log = tmp_path / "auth.log"
    log.touch()
    f = FileFollower(log)
    append(log, "seen")
    assert f.read() == [b"seen"]
    saved = f.position()
    f.close()
    append(log, "while down 1", "while down 2")
    g = FileFollower(log, saved=saved)
    assert g.read() == [b"while down 1", b"while down 2"]
    g.close()


def test_rotation_while_down_finishes_the_old_file_first(tmp_path: Path) -> None:
    """Rotated during a restart: the rest of auth.log.1 (found by inode), then the new file."""
    log = tmp_path / "auth.log"
    log.touch()
    f = FileFollower(log)
    append(log, "seen")
    f.read()
    saved = f.position()
    f.close()
    append(log, "unread in old")
    log.rename(tmp_path / "auth.log.1")
    append(log, "in new")
    g = FileFollower(log, saved=saved)
    assert g.read() == [b"unread in old", b"in new"]
    g.close()


def test_rhel_dateext_rotation_while_down(tmp_path: Path) -> None:
    """RHEL rotates `secure` to `secure-YYYYMMDD`; that is found too."""
    log = tmp_path / "secure"
    log.touch()
    f = FileFollower(log)
    f.read()
    saved = f.position()
    f.close()
    append(log, "tail of old")
    log.rename(tmp_path / "secure-20240303")
    append(log, "head of new")
    g = FileFollower(log, saved=saved)
    assert g.read() == [b"tail of old", b"head of new"]
    g.close()


def test_truncated_while_down_restarts_at_zero(tmp_path: Path) -> None:
    """Same inode but shorter than the saved offset: read from 0."""
    log = tmp_path / "auth.log"
    log.touch()
    f = FileFollower(log)
    append(log, "a long line that is gone after truncation")
    f.read()
    saved = f.position()
    f.close()
    os.truncate(log, 0)
    append(log, "fresh")
    g = FileFollower(log, saved=saved)
    assert g.read() == [b"fresh"]
    g.close()


def test_over_long_line_is_skipped_and_counted(tmp_path: Path) -> None:
    """A 1 MB line is dropped (counted in `skipped`); the lines around it survive."""
    log = tmp_path / "auth.log"
    log.touch()
    f = FileFollower(log, max_line=1000)
    f.read()
    append(log, "before", "x" * 1_000_000, "after")
    got: list[bytes] = []
    for _ in range(20):
        got += f.read(budget=64 * 1024)
    assert got == [b"before", b"after"]
    assert f.skipped == 1


def test_over_long_line_without_newline_yet_is_skipped_once(tmp_path: Path) -> None:
    """An unfinished giant line is dropped as it grows, and counted once."""
    log = tmp_path / "auth.log"
    log.touch()
    f = FileFollower(log, max_line=100)
    f.read()
    append(log, "y" * 500, end="")
    assert f.read() == []
    append(log, "y" * 500, end="")
    assert f.read() == []
    append(log, "tail", "ok")
    assert f.read() == [b"ok"]
    assert f.skipped == 1


def test_truncated_and_regrown_between_reads_is_noticed(tmp_path: Path) -> None:
    """Truncated and then written past the old offset before the next read: still read from 0."""
    log = tmp_path / "auth.log"
    log.touch()
    f = FileFollower(log)
    append(log, "short 1", "short 2")
    assert f.read() == [b"short 1", b"short 2"]
    os.truncate(log, 0)
    append(log, "after truncation, a longer line", "and another one")
    assert f.read() == [b"after truncation, a longer line", b"and another one"]


def test_truncated_and_regrown_while_down_is_noticed(tmp_path: Path) -> None:
    """The saved position carries the bytes before the offset, so a restart notices it too."""
    log = tmp_path / "auth.log"
    log.touch()
    f = FileFollower(log)
    append(log, "old line")
    f.read()
    saved = f.position()
    f.close()
    os.truncate(log, 0)
    append(log, "new content that is longer")
    g = FileFollower(log, saved=saved)
    assert g.read() == [b"new content that is longer"]
    g.close()
