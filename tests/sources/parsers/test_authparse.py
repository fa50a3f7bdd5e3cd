"""Auth log parsing on real-format lines from Debian and RHEL, and the journal's JSON."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from sentinel.sources.parsers.authparse import (
    LogRecord,
    Malformed,
    classify,
    normalise_source,
    parse_journal_entry,
    parse_syslog_line,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "auth"
NOW = time.mktime((2024, 3, 4, 12, 0, 0, 0, 0, -1))


def events_of(name: str) -> list:
    out = []
    for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
        out += classify(parse_syslog_line(line, now=NOW))
    return out


def record(program: str, message: str) -> LogRecord:
    return LogRecord(NOW, "teller01", program, 1, message)


def test_debian_traditional_header_is_local_time() -> None:
    """`Mar  3 10:15:01 host sshd[1234]: ...` gives host, program, pid and a local timestamp."""
    line = "Mar  3 10:15:01 teller01 sshd[1234]: Invalid user admin from 203.0.113.9 port 52144"
    rec = parse_syslog_line(line, now=NOW)
    assert (rec.host, rec.program, rec.pid) == ("teller01", "sshd", 1234)
    assert rec.time == time.mktime((2024, 3, 3, 10, 15, 1, 0, 0, -1))
    assert rec.message.startswith("Invalid user admin")


def test_december_line_read_in_january_is_last_year() -> None:
    """The traditional stamp has no year: one that would lie in the future belongs to last year."""
    january = time.mktime((2025, 1, 2, 0, 0, 0, 0, 0, -1))
    rec = parse_syslog_line("Dec 31 23:59:59 h sshd[1]: x", now=january)
    assert time.localtime(rec.time).tm_year == 2024


def test_debian12_rfc3339_header() -> None:
    """Debian 12 rsyslog writes RFC 3339 stamps with microseconds and offset."""
    line = (
        "2024-03-03T10:15:05.123456+01:00 teller01 sshd[1234]: Failed password for root from ::1 port 1 ssh2"
    )
    rec = parse_syslog_line(line, now=NOW)
    assert rec.time == pytest.approx(1709457305.123456)
    assert rec.program == "sshd"


@pytest.mark.parametrize("line", ["", "garbage without header", "Foo  3 10:15:01 h p: m", "\x00\x01\x02"])
def test_lines_without_a_syslog_header_are_malformed(line: str) -> None:
    """Anything that is not a syslog record raises Malformed (the caller counts it)."""
    with pytest.raises(Malformed):
        parse_syslog_line(line, now=NOW)


def test_debian11_fixture_yields_the_expected_kinds() -> None:
    """Every sshd/sudo/su/login/PAM line of a real Debian auth.log is classified; noise is not."""
    kinds = Counter(e.kind for e in events_of("debian11_auth.log"))
    assert kinds == {
        "invalid_user": 1,
        "pam_auth_failure": 4,
        "login_failed": 7,  # 5 sshd (one line repeated twice more) + 1 publickey + 1 console
        "login_accepted": 2,
        "root_login": 2,
        "sudo_command": 1,
        "sudo_auth_failed": 1,
        "sudo_denied": 1,
        "su_session": 1,
        "su_failed": 1,
    }


def test_failed_password_for_invalid_user() -> None:
    """Failed password for invalid user X: a login failure with user, source, port, flag."""
    (event,) = classify(
        record("sshd", "Failed password for invalid user admin from 203.0.113.9 port 52144 ssh2")
    )
    assert event.kind == "login_failed"
    assert event.subject == "203.0.113.9"
    assert event.fields == {
        "source": "203.0.113.9",
        "user": "admin",
        "method": "password",
        "port": 52144,
        "service": "sshd",
        "invalid_user": True,
    }


def test_rsyslog_repeated_message_counts_every_attempt() -> None:
    """`message repeated 2 times: [ Failed password ...]` is two more failures."""
    events = classify(
        record(
            "sshd", "message repeated 2 times: [ Failed password for root from 203.0.113.9 port 52150 ssh2]"
        )
    )
    assert [e.kind for e in events] == ["login_failed", "login_failed"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2001:db8::7", "2001:db8::7"),
        ("2001:db8:0:0::7", "2001:db8::7"),
        ("::ffff:198.51.100.4", "198.51.100.4"),
        ("2001:DB8::DEAD:BEEF", "2001:db8::dead:beef"),
        ("203.0.113.9", "203.0.113.9"),
        ("host.example", "host.example"),
    ],
)
def test_sources_are_normalised(raw: str, expected: str) -> None:
    """IPv6 is compressed and lower-case, IPv4-mapped becomes IPv4, host names stay as written."""
    assert normalise_source(raw) == expected


def test_ipv6_source_in_sshd_line() -> None:
    """An IPv6 source is grouped in its canonical spelling."""
    (event,) = classify(record("sshd", "Failed password for root from 2001:db8:0:0::7 port 40022 ssh2"))
    assert event.subject == "2001:db8::7"


def test_a_user_name_cannot_spoof_the_source() -> None:
    """The source is the last ` from ADDR port N`: a crafted user name does not move it."""
    (event,) = classify(
        record(
            "sshd",
            "Failed password for invalid user x from 10.0.0.1 port 1 ssh2 from 203.0.113.66 port 4000 ssh2",
        )
    )
    assert event.fields["source"] == "203.0.113.66"


def test_accepted_root_login_is_also_a_root_login() -> None:
    """Accepted ... for root: login_accepted and root_login."""
    events = classify(record("sshd", "Accepted password for root from 192.0.2.5 port 50100 ssh2"))
    assert [e.kind for e in events] == ["login_accepted", "root_login"]
    assert events[0].subject == "root@192.0.2.5"


def test_openssh_98_sshd_session_program_name() -> None:
    """OpenSSH 9.8 logs as sshd-session; it is still sshd."""
    events = classify(record("sshd-session", "Accepted publickey for alice from 2001:db8::10 port 2 ssh2: X"))
    assert events[0].fields["source"] == "2001:db8::10"


def test_sudo_command_fields() -> None:
    """sudo's `user : TTY=... ; USER=root ; COMMAND=...` keeps the whole command with its spaces."""
    (event,) = classify(
        record("sudo", "   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update")
    )
    assert event.kind == "sudo_command"
    assert event.fields == {
        "user": "alice",
        "target_user": "root",
        "tty": "pts/0",
        "command": "/usr/bin/apt update",
    }


def test_sudo_failed_attempts_and_denied() -> None:
    """`3 incorrect password attempts` and `user NOT in sudoers` are their own kinds."""
    (failed,) = classify(
        record(
            "sudo", "bob : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh"
        )
    )
    (denied,) = classify(
        record("sudo", "eve : user NOT in sudoers ; TTY=pts/2 ; PWD=/ ; USER=root ; COMMAND=/bin/bash")
    )
    assert (failed.kind, failed.fields["attempts"]) == ("sudo_auth_failed", 3)
    assert (denied.kind, denied.subject, denied.fields["command"]) == ("sudo_denied", "eve", "/bin/bash")


def test_su_success_and_failure() -> None:
    """util-linux su: `(to root) alice on pts/0` and `FAILED SU (to root) bob on pts/1`."""
    (ok,) = classify(record("su", "(to root) alice on pts/0"))
    (bad,) = classify(record("su", "FAILED SU (to root) bob on pts/1"))
    assert (ok.kind, ok.fields["user"], ok.fields["target_user"]) == ("su_session", "alice", "root")
    assert (bad.kind, bad.fields["user"]) == ("su_failed", "bob")


def test_console_login_failure_is_grouped_by_tty() -> None:
    """login(1) failures on the console have the tty as their source."""
    (event,) = classify(record("login", "FAILED LOGIN (1) on '/dev/tty1' FOR 'root', Authentication failure"))
    assert (event.kind, event.subject, event.fields["user"]) == ("login_failed", "tty1", "root")


def test_pam_failure_with_remote_host() -> None:
    """pam_unix auth failure: service, user and rhost (empty rhost falls back to the tty)."""
    (remote,) = classify(
        record(
            "sshd",
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
            "rhost=2001:db8::9  user=root",
        )
    )
    (local,) = classify(
        record(
            "su",
            "pam_unix(su:auth): authentication failure; logname=bob uid=1001 euid=0 tty=/dev/pts/1 "
            "ruser=bob rhost=  user=root",
        )
    )
    assert (remote.kind, remote.fields["source"], remote.fields["service"]) == (
        "pam_auth_failure",
        "2001:db8::9",
        "sshd",
    )
    assert (local.fields["source"], local.fields["user"]) == ("pts/1", "root")


def test_debian12_fixture() -> None:
    """The RFC 3339 file: failures with IPv6, sshd-session, sudo and invalid user."""
    kinds = [e.kind for e in events_of("debian12_auth.log")]
    assert kinds == ["login_failed", "login_failed", "login_accepted", "sudo_command", "invalid_user"]


def test_rhel9_secure_fixture() -> None:
    """RHEL's /var/log/secure: sudo[pid], keyboard-interactive/pam and su-l sessions."""
    events = events_of("rhel9_secure")
    kinds = Counter(e.kind for e in events)
    assert kinds == {
        "login_failed": 3,
        "pam_auth_failure": 1,
        "login_accepted": 1,
        "sudo_command": 1,
        "su_failed": 1,
    }
    kbd = next(e for e in events if e.fields.get("method") == "keyboard-interactive/pam")
    assert kbd.subject == "2001:db8:ffff::2"


def test_journal_json_entries() -> None:
    """journalctl -o json: time from __REALTIME_TIMESTAMP, program, pid, cursor."""
    lines = (FIXTURES / "journal.json").read_bytes().splitlines()
    rec, cursor = parse_journal_entry(lines[0])
    assert (rec.program, rec.pid, rec.host) == ("sshd", 1234, "teller01")
    assert rec.time == 1709457305.0
    assert cursor.startswith("s=5b1e;i=100")
    assert classify(parse_journal_entry(lines[1])[0])[0].subject == "2001:db8::dead:beef"


def test_journal_message_as_byte_array_is_decoded() -> None:
    """A MESSAGE that is not UTF-8 comes as an array of bytes; it is decoded with replacement."""
    line = (FIXTURES / "journal.json").read_bytes().splitlines()[3]
    rec, _ = parse_journal_entry(line)
    assert rec.message.startswith("Failed password for r\ufffdoot")


@pytest.mark.parametrize(
    "line",
    [
        b'{"__CURSOR": "s=1", "MESSAGE": "trunc',
        b"[1, 2, 3]",
        b"\xff\xfe\x00binary",
        json.dumps({"__CURSOR": "s=1", "__REALTIME_TIMESTAMP": "1", "MESSAGE": None}).encode(),
        json.dumps({"MESSAGE": "no cursor", "__REALTIME_TIMESTAMP": "1"}).encode(),
        json.dumps({"__CURSOR": "s=1", "MESSAGE": "x", "__REALTIME_TIMESTAMP": "soon"}).encode(),
    ],
)
def test_bad_journal_lines_are_malformed(line: bytes) -> None:
    """Truncated JSON, non-objects, binary, null message, no cursor, bad time: Malformed."""
    with pytest.raises(Malformed):
        parse_journal_entry(line)


def test_unrelated_lines_are_not_events() -> None:
    """Session lines, cron and logind are not authentication events."""
    assert (
        classify(record("CRON", "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"))
        == []
    )
    assert (
        classify(record("sshd", "Disconnected from authenticating user root 1.2.3.4 port 5 [preauth]")) == []
    )
