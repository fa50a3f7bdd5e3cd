"""core.files against a real second account: planted symlinks, hard links, predictable names."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sentinel.core import files
from sentinel.core.files import Directory, UnsafePathError
from tests.support.accounts import Account

SECRET = "root secret\n"


@pytest.fixture
def victim(shared_tmp: Path) -> Path:
    """A root-owned 0600 file the other account must never get written or handed over."""
    path = shared_tmp / "victim"
    path.write_text(SECRET)
    path.chmod(0o600)
    return path


@pytest.fixture
def their_dir(shared_tmp: Path, other: Account) -> Path:
    """A 0700 directory owned by the other account (as the agent's state_dir is)."""
    path = shared_tmp / "state"
    path.mkdir(mode=0o700)
    os.chown(path, other.uid, other.gid)
    return path


def unchanged(victim: Path) -> bool:
    st = victim.stat()
    return victim.read_text() == SECRET and (st.st_uid, st.st_mode & 0o7777) == (0, 0o600)


def test_replace_over_a_planted_symlink_leaves_the_target_alone(
    their_dir: Path, victim: Path, other: Account
) -> None:
    """A whole-file write replaces a link the directory's owner planted, never writes through it."""
    other.run("ln", "-s", str(victim), str(their_dir / "status.json"))
    files.write_json_atomic(their_dir / "status.json", {"ok": True}, owner=other.owner)
    assert unchanged(victim)
    target = their_dir / "status.json"
    assert not target.is_symlink() and target.stat().st_uid == other.uid


def test_predictable_temp_names_are_not_used(their_dir: Path, victim: Path, other: Account) -> None:
    """Links planted at every pid-style temp name change nothing: temp names are random and O_EXCL."""
    for pid in (os.getpid(), os.getpid() + 1):
        other.run("ln", "-s", str(victim), str(their_dir / f".status.json.{pid}.tmp"))
    files.write_text_atomic(their_dir / "status.json", "x")
    assert unchanged(victim)
    assert sorted(p.name for p in their_dir.iterdir() if p.name.endswith(".tmp")) == sorted(
        f".status.json.{pid}.tmp" for pid in (os.getpid(), os.getpid() + 1)
    )


def test_append_through_a_symlink_is_refused(their_dir: Path, victim: Path, other: Account) -> None:
    """Appending to a name that is a planted link raises one clear line."""
    other.run("ln", "-s", str(victim), str(their_dir / "auth.log"))
    with pytest.raises(UnsafePathError, match=r"auth\.log: it is a symlink"):
        files.append_durably(their_dir / "auth.log", b"line\n")
    assert unchanged(victim)


def test_append_into_a_hard_link_is_refused(their_dir: Path, other: Account) -> None:
    """A file with a second name (a hard link the owner made to its own file) is refused."""
    mine = their_dir / "mine"
    other.run("touch", str(mine))
    other.run("ln", str(mine), str(their_dir / "auth.log"))
    with pytest.raises(UnsafePathError, match="2 hard links"):
        files.append_durably(their_dir / "auth.log", b"line\n")


def test_a_symlinked_sub_directory_is_refused(
    their_dir: Path, shared_tmp: Path, victim: Path, other: Account
) -> None:
    """`state/drill -> /elsewhere`: the sub-directory is opened without following."""
    other.run("ln", "-s", str(shared_tmp), str(their_dir / "drill"))
    with Directory.open(their_dir) as state, pytest.raises(UnsafePathError, match="drill"):
        state.sub("drill")
    assert unchanged(victim)


def test_new_files_get_the_owner_asked_for(their_dir: Path, other: Account) -> None:
    """Created as root for the agent: owner set on the descriptor, mode 0600."""
    with Directory.open(their_dir) as state, state.sub("drill") as drill:
        drill.append("auth.log", b"a\n", owner=other.owner)
        drill.write_text("probe", "p", owner=other.owner)
    for name in ("auth.log", "probe"):
        st = (their_dir / "drill" / name).stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (other.uid, other.gid, 0o600)


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777])
def test_a_directory_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    """check_private_dir: one line naming the directory, who can write it and the fix."""
    path = tmp_path / "state"
    path.mkdir()
    path.chmod(mode)
    with pytest.raises(UnsafePathError) as caught:
        files.check_private_dir(path)
    message = str(caught.value)
    assert str(path) in message and "writable by" in message and "chmod" in message
    assert "\n" not in message


def test_a_directory_of_another_account_is_refused_for_that_account_only(
    their_dir: Path, other: Account
) -> None:
    """Root may write into the agent account's 0700 directory; a third account may not."""
    files.check_private_dir(their_dir)  # root: allowed (every write is descriptor-relative)
    mine = their_dir.parent / "mine"
    mine.mkdir(mode=0o700)
    assert other.call(lambda: files.check_private_dir(their_dir)) == 0
    assert other.call(lambda: files.check_private_dir(mine)) == 3  # root's 0700 dir: not theirs


def test_a_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    """An exception inside the writer removes the temporary file; the target is untouched."""
    target = tmp_path / "f"
    target.write_text("old")
    with pytest.raises(RuntimeError), files.atomic_writer(target) as fh:
        fh.write(b"new")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_subprocess_helper_really_runs_as_the_other_account(other: Account) -> None:
    """The fixture's account is real: a process started through it has its uid."""
    out = other.run("id", "-u", capture_output=True, text=True)
    assert int(out.stdout) == other.uid
    assert subprocess.run(["id", "-u", other.name], capture_output=True, text=True).stdout.strip() == str(
        other.uid
    )
