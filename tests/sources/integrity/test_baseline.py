"""The signed baseline file: atomic, signed, and every kind of damage detected."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sentinel.sources.integrity.baseline import Baseline, BaselineError, BaselineFiles
from sentinel.sources.integrity.entry import Entry

ENTRY = Entry("file", 0o644, 0, 0, 3, 1, 1, 7, 1, None, "c" * 64, None)


def written(tmp: Path) -> BaselineFiles:
    files = BaselineFiles(tmp / "state")
    key = files.create_key()
    files.write(Baseline({"/etc/passwd": ENTRY}, 1.0, roots=[("/etc/passwd", "critical")]), key)
    return files


def test_round_trip(tmp: Path) -> None:
    """What is written reads back, with the same digest."""
    files = written(tmp)
    loaded = files.load()
    assert loaded.entries == {"/etc/passwd": ENTRY}
    assert loaded.roots == [("/etc/passwd", "critical")]
    assert len(loaded.digest) == 64


def test_key_and_baseline_are_private(tmp: Path) -> None:
    """The key and the baseline are 0600 in a 0700 directory."""
    files = written(tmp)
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.baseline.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.directory.stat().st_mode) == 0o700


@pytest.mark.parametrize("where", ["body", "header", "last"])
def test_one_changed_byte_is_detected(tmp: Path, where: str) -> None:
    """Flipping one byte anywhere makes the baseline fail verification."""
    files = written(tmp)
    data = bytearray(files.baseline.read_bytes())
    index = {"header": 20, "body": data.index(b"/etc/passwd") + 5, "last": len(data) - 2}[where]
    data[index] ^= 0x01
    files.baseline.write_bytes(bytes(data))
    with pytest.raises(BaselineError) as info:
        files.load()
    assert info.value.problem in ("signature", "malformed")


def test_missing_key_is_detected(tmp: Path) -> None:
    """Without the key the baseline cannot be verified."""
    files = written(tmp)
    files.key.unlink()
    with pytest.raises(BaselineError) as info:
        files.load()
    assert info.value.problem == "key_missing"


def test_other_key_is_detected(tmp: Path) -> None:
    """A baseline re-signed with another key (an attacker's) fails."""
    files = written(tmp)
    files.key.write_bytes(b"k" * 32)
    with pytest.raises(BaselineError) as info:
        files.load()
    assert info.value.problem == "signature"


def test_observed_record_cannot_stand_in_for_the_baseline(tmp: Path) -> None:
    """A validly signed observed record copied over the baseline is refused."""
    files = written(tmp)
    key = files.read_key()
    files.write(Baseline({}, 2.0, kind="observed", base_digest="x"), key)
    files.observed.replace(files.baseline)
    with pytest.raises(BaselineError) as info:
        files.load()
    assert info.value.problem == "malformed"


def test_write_leaves_no_temporary_file(tmp: Path) -> None:
    """The atomic write renames its temporary file away."""
    files = written(tmp)
    assert sorted(p.name for p in files.directory.iterdir()) == ["baseline.fim", "baseline.key"]


def test_file_names_that_are_not_utf8_read_back(tmp: Path) -> None:
    """A Latin-1 file name (bytes 0xe9) on disk is written and read back exactly, not as damage."""
    name = os.fsdecode(b"/srv/caf\xe9.txt")
    files = BaselineFiles(tmp / "state")
    key = files.create_key()
    files.write(Baseline({name: ENTRY._replace(target=os.fsdecode(b"/x\xff"))}, 1.0), key)
    assert dict(files.load("baseline", key).entries) == {name: ENTRY._replace(target=os.fsdecode(b"/x\xff"))}
