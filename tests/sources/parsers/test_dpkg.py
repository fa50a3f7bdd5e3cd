"""dpkg and apt data read directly: checked against dpkg's own tools on this machine's real
database and logs, and on small built packages."""

from __future__ import annotations

import fcntl
import itertools
import shutil
import subprocess
from pathlib import Path

import pytest

from sentinel.sources.parsers.dpkg import (
    DpkgDatabase,
    DpkgPaths,
    compare_versions,
    parse_apt_history,
    parse_dpkg_log,
    parse_md5sums,
    parse_status,
    strip_temp,
)
from sentinel.sources.parsers.packages import LogCursor, lock_holder, read_new
from tests.support.dpkg import DpkgRoot, dpkg_available, lock_held

needs_dpkg = pytest.mark.skipif(not dpkg_available(), reason="needs dpkg (Debian)")
SYSTEM = Path("/var/lib/dpkg/status")


@needs_dpkg
@pytest.mark.skipif(not SYSTEM.is_file(), reason="no dpkg database on this machine")
def test_status_parse_equals_dpkg_query_on_this_machine() -> None:
    """Every installed package, version and architecture dpkg-query lists, and nothing else."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = {tuple(line.split("\t")[1:]) for line in out.splitlines() if line.startswith("ii")}
    packages, _ = parse_status(SYSTEM.read_bytes())
    assert {(p.name, p.version, p.arch) for p in packages} == expected
    assert len(packages) == len(expected)  # no duplicates


def test_status_fields_source_and_conffiles() -> None:
    """Source without its version, conffiles with their md5, non-installed states left out."""
    data = (
        b"Package: openssh-client\nStatus: install ok installed\nArchitecture: amd64\n"
        b"Source: openssh (1:9.2p1-2)\nVersion: 1:9.2p1-2+deb12u6\nConffiles:\n"
        b" /etc/ssh/ssh_config 0123456789abcdef0123456789abcdef\n"
        b" /etc/old obsolete\nDescription: x\n continued line\n\n"
        b"Package: gone\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: all\n\n"
    )
    packages, conffiles = parse_status(data)
    assert [(p.key, p.version, p.source) for p in packages] == [
        ("openssh-client:amd64", "1:9.2p1-2+deb12u6", "openssh")
    ]
    assert conffiles == {"openssh-client:amd64": {"/etc/ssh/ssh_config": "0123456789abcdef0123456789abcdef"}}


@needs_dpkg
def test_version_order_is_dpkgs() -> None:
    """compare_versions agrees with `dpkg --compare-versions` (epochs, ~, revisions, letters)."""
    versions = ["1.0", "1.0-1", "1.0~rc1", "1:0.9", "1.0.1", "1.0a", "1.0+b1", "2.36-9+deb12u10",
                "2.36-9+deb12u14", "1.10", "1.9", "0", "1.0-1~bpo1", "1.0-10", "1.0-9"]  # fmt: skip
    for a, b in itertools.combinations(versions, 2):
        lt = subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode == 0
        eq = subprocess.run(["dpkg", "--compare-versions", a, "eq", b], check=False).returncode == 0
        assert compare_versions(a, b) == (-1 if lt else 0 if eq else 1), (a, b)


def test_dpkg_log_actions_and_apt_history() -> None:
    """dpkg.log action lines (not status/startup ones); apt blocks with who and what."""
    log = [
        "2026-05-09 07:29:02 startup archives unpack",
        "2026-05-09 07:29:02 upgrade tzdata:all 2025b-0+deb12u1 2025b-0+deb12u2",
        "2026-05-09 07:29:02 status half-configured tzdata:all 2025b-0+deb12u1",
        "2026-05-09 07:29:03 install vim:amd64 <none> 2:9.0.1378-2+deb12u2",
        "2026-05-09 07:29:04 remove nano:amd64 7.2-1 <none>",
        "garbage line",
    ]
    actions = list(parse_dpkg_log(log))
    assert [(a.action, a.package, a.old, a.new) for a in actions] == [
        ("upgrade", "tzdata:all", "2025b-0+deb12u1", "2025b-0+deb12u2"),
        ("install", "vim:amd64", "", "2:9.0.1378-2+deb12u2"),
        ("remove", "nano:amd64", "7.2-1", ""),
    ]
    history = parse_apt_history(
        "Start-Date: 2026-05-09  07:29:02\nCommandline: apt-get install -y vim\n"
        "Requested-By: alice (1000)\nInstall: vim:amd64 (2:9.0.1378-2+deb12u2), vim-runtime:all "
        "(2:9.0.1378-2+deb12u2, automatic)\nUpgrade: tzdata:all (2025b-0+deb12u1, 2025b-0+deb12u2)\n"
        "End-Date: 2026-05-09  07:29:30\n\nStart-Date: 2026-05-10  01:00:00\nCommandline: apt-get upgrade\n"
    )
    assert [(t.commandline, t.user, t.uid) for t in history] == [
        ("apt-get install -y vim", "alice", 1000),
        ("apt-get upgrade", "", None),
    ]
    assert history[0].actions == [
        ("install", "vim:amd64", "", "2:9.0.1378-2+deb12u2"),
        ("install", "vim-runtime:all", "", "2:9.0.1378-2+deb12u2"),
        ("upgrade", "tzdata:all", "2025b-0+deb12u1", "2025b-0+deb12u2"),
    ]
    assert history[0].end is not None and history[1].end is None  # the second one still runs


@pytest.mark.skipif(not Path("/var/log/apt/history.log").is_file(), reason="no apt history here")
def test_this_machines_apt_history_parses_block_by_block() -> None:
    """Every Start-Date block of the real history.log is one transaction with a command line."""
    text = Path("/var/log/apt/history.log").read_text(encoding="utf-8", errors="replace")
    transactions = parse_apt_history(text)
    assert len(transactions) == text.count("Start-Date:")
    assert all(t.commandline for t in transactions)


@needs_dpkg
def test_database_of_a_built_package_with_usrmerge_paths(tmp_path: Path) -> None:
    """File list and md5sums of a package dpkg installed; `/bin/x` resolves where /bin points."""
    root = DpkgRoot(tmp_path / "root", tmp_path / "work")
    (root.root / "usr" / "bin").mkdir(parents=True)
    (root.root / "bin").symlink_to("usr/bin")
    deb = root.build(
        "sntest-merge", "1.0", {"/bin/sntest-merge": "#!/bin/sh\n", "/usr/share/sntest-merge/a": "a"}
    )
    root.install(deb)
    db = DpkgDatabase(DpkgPaths(root.root, log=root.log))
    [pkg], _ = db.installed()
    assert pkg.key == "sntest-merge:all"
    files = db.files(pkg.key) or []
    assert str(root.root / "usr/bin/sntest-merge") in files  # /bin/sntest-merge in the .list
    sums = db.digests(pkg.key)
    assert set(sums) == {str(root.root / "usr/bin/sntest-merge"), str(root.root / "usr/share/sntest-merge/a")}
    assert db.list_stamp(pkg.key) > 0 and db.list_stamp("absent:all") == 0
    assert parse_md5sums(b"0123456789abcdef0123456789abcdef  usr/x\nbad\n") == {
        "/usr/x": "0123456789abcdef0123456789abcdef"
    }
    assert strip_temp("/usr/bin/x.dpkg-new") == ("/usr/bin/x", True)
    assert strip_temp("/usr/bin/x") == ("/usr/bin/x", False)


def test_lock_holder_reports_the_pid_without_taking_the_lock(tmp_path: Path) -> None:
    """F_GETLK names the process holding dpkg's kind of lock (fcntl write lock), None when free."""
    lock = tmp_path / "lock"
    lock.touch()
    assert lock_holder(lock) is None
    with lock_held(lock) as holder:
        assert lock_holder(lock) == holder.pid
        with open(lock, "r+") as fh:  # and it did not take it: we still cannot
            with pytest.raises(OSError):
                fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert lock_holder(lock) is None
    assert lock_holder(tmp_path / "missing") is None


def test_read_new_follows_appends_and_rotation(tmp_path: Path) -> None:
    """Only whole new lines; a first read starts at the end; a rotated log is read from its start."""
    log = tmp_path / "dpkg.log"
    log.write_text("old line\n")
    text, cursor = read_new(log, None)
    assert text == "" and cursor.offset == len("old line\n")
    with open(log, "a") as fh:
        fh.write("new line\npartial")
    text, cursor = read_new(log, cursor)
    assert text == "new line\n"
    with open(log, "a") as fh:
        fh.write(" done\n")
    text, cursor = read_new(log, cursor)
    assert text == "partial done\n"
    log.rename(tmp_path / "dpkg.log.1")
    log.write_text("after rotation\n")
    text, cursor = read_new(log, cursor)
    assert text == "after rotation\n"
    assert LogCursor.from_json(cursor.to_json()) == cursor and LogCursor.from_json("bad") == LogCursor()
    assert shutil.which("dpkg") is None or read_new(tmp_path / "absent", cursor)[0] == ""
