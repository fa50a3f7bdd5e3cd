"""Auth log parsing on real-format lines from Debian and RHEL, and the journal's JSON."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from sentinel.sources.parsers.authparse import (
    LogRecord,
    Malformed,
    Origin,
    classify,
    interpret,
    normalise_source,
    parse_journal_entry,
    parse_sudo_fields,
    parse_syslog_line,
    verify_origin,
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
    """The source is where sshd writes it: a crafted user name does not move it (and is reported)."""
    event, forged = classify(
        record(
            "sshd",
            "Failed password for invalid user x from 10.0.0.1 port 1 ssh2 from 203.0.113.66 port 4000 ssh2",
        )
    )
    assert event.fields["source"] == "203.0.113.66"
    assert forged.kind == "log_forgery"


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
        "cwd": "/home/alice",
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
    rec, cursor = parse_journal_entry(lines[0], now=NOW)
    assert (rec.program, rec.pid, rec.host) == ("sshd", 1234, "teller01")
    assert rec.time == 1709457305.0
    assert cursor.startswith("s=5b1e;i=100")
    assert classify(parse_journal_entry(lines[1], now=NOW)[0])[0].subject == "2001:db8::dead:beef"


def test_journal_message_as_byte_array_is_decoded() -> None:
    """A MESSAGE that is not UTF-8 comes as an array of bytes; it is decoded with replacement."""
    line = (FIXTURES / "journal.json").read_bytes().splitlines()[3]
    rec, _ = parse_journal_entry(line, now=NOW)
    assert rec.message.startswith("Failed password for r\ufffdoot")


@pytest.mark.parametrize(
    "line",
    [
        b'{"__CURSOR": "s=1", "MESSAGE": "trunc',
        b"[1, 2, 3]",
        b"\xff\xfe\x00binary",
    ],
)
def test_bad_journal_lines_are_malformed(line: bytes) -> None:
    """Truncated JSON, non-objects, binary: Malformed (an entry missing fields is still read)."""
    with pytest.raises(Malformed):
        parse_journal_entry(line, now=NOW)


def test_unrelated_lines_are_not_events() -> None:
    """Session lines, cron and logind are not authentication events."""
    assert (
        classify(record("CRON", "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"))
        == []
    )
    assert (
        classify(record("sshd", "Disconnected from authenticating user root 1.2.3.4 port 5 [preauth]")) == []
    )


# -- issue 17: the forms peers' corpora showed missing, and lines built to mislead ---------------


def rec(program: str, message: str, origin: Origin | None = None) -> LogRecord:
    return LogRecord(NOW, "teller07", program, 4823, message, origin)


def one(program: str, message: str) -> tuple[str, dict[str, object]]:
    (event,) = classify(rec(program, message))
    return event.kind, dict(event.fields)


@pytest.mark.parametrize("program", ["sshd", "sshd-session", "sshd-auth"])
def test_invalid_user_with_and_without_port(program: str) -> None:
    """`Invalid user U from A` (OpenSSH < 7.5) and `... port P` (auth.c:497) are the same fact."""
    kind, fields = one(program, "Invalid user admin from 203.0.113.9")
    assert (kind, fields["user"], fields["source"]) == ("invalid_user", "admin", "203.0.113.9")
    kind, fields = one(program, "Invalid user admin from 203.0.113.9 port 50514")
    assert (kind, fields["port"]) == ("invalid_user", 50514)


def test_a_user_name_cannot_move_the_source() -> None:
    """For password logins nothing follows `ssh2`: the endpoint at the end is sshd's."""
    events = classify(
        rec(
            "sshd",
            "Failed password for invalid user x from 10.0.0.1 port 1 ssh2 from 203.0.113.66 port 4000 ssh2",
        )
    )
    assert [e.kind for e in events] == ["login_failed", "log_forgery"]
    assert events[0].fields["source"] == "203.0.113.66"
    assert events[0].fields["user"] == "x from 10.0.0.1 port 1 ssh2"


def test_hostbased_client_text_cannot_move_the_source() -> None:
    """For key methods sshd's endpoint is followed by ': KEYTYPE fingerprint'."""
    line = (
        "Failed hostbased for dan from 198.51.100.7 port 45785 ssh2: RSA SHA256:abc, client user "
        '"x from 10.9.9.9 port 1 ssh2", client host "h"'
    )
    events = classify(rec("sshd", line))
    assert events[0].fields["source"] == "198.51.100.7"


@pytest.mark.parametrize(
    ("message", "user", "source"),
    [
        (
            "error: maximum authentication attempts exceeded for root from 203.0.113.9 port 34100 ssh2"
            " [preauth]",
            "root",
            "203.0.113.9",
        ),
        (
            "error: maximum authentication attempts exceeded for invalid user bad from 203.0.113.9 port 55146"
            " ssh2 [preauth]",
            "bad",
            "203.0.113.9",
        ),
        (
            "Disconnecting authenticating user root 203.0.113.9 port 50522: Too many authentication failures"
            " [preauth]",
            "root",
            "203.0.113.9",
        ),
        ("Disconnecting: Too many authentication failures for root [preauth]", "root", ""),
    ],
)
def test_maximum_attempts(message: str, user: str, source: str) -> None:
    """One connection used up MaxAuthTries: a new kind, Wazuh 5758."""
    kind, fields = one("sshd", message)
    assert (kind, fields["user"], fields["source"]) == ("max_auth_attempts", user, source)


@pytest.mark.parametrize(
    "why",
    [
        "not listed in AllowUsers",
        "listed in DenyUsers",
        "not in any group",
        "a group is listed in DenyGroups",
        "none of user's groups are listed in AllowGroups",
    ],
)
def test_denied_user(why: str) -> None:
    """auth.c's allowed_user(): the account exists, sshd's policy refused it (Wazuh 5718)."""
    kind, fields = one("sshd-session", f"User root from 203.0.113.9 not allowed because {why}")
    assert (kind, fields["user"], fields["source"], fields["reason"]) == (
        "denied_user",
        "root",
        "203.0.113.9",
        why,
    )


@pytest.mark.parametrize(
    "message",
    [
        "Connection closed by invalid user oracle 203.0.113.9 port 50530 [preauth]",
        "Disconnected from invalid user oracle 203.0.113.9 port 50530 [preauth]",
        "Postponed keyboard-interactive for invalid user oracle from 203.0.113.9 port 50530 ssh2 [preauth]",
    ],
)
def test_later_lines_of_an_invalid_user_connection(message: str) -> None:
    """The connection's other lines state the same fact (the detector emits it once)."""
    kind, fields = one("sshd", message)
    assert (kind, fields["user"], fields["source"]) == ("invalid_user", "oracle", "203.0.113.9")


@pytest.mark.parametrize(
    "message",
    [
        "Connection closed by authenticating user alice 192.0.2.10 port 50534 [preauth]",
        "Disconnected from user alice 192.0.2.10 port 40022",
        "Postponed publickey for git from 192.0.2.1 port 57904 ssh2 [preauth]",
        "error: PAM: Module is unknown for ddp from 172.16.51.1",
        "Received disconnect from 52.80.34.196: 11: Bye Bye [preauth]",
    ],
)
def test_sshd_lines_without_a_fact(message: str) -> None:
    """Steps and endings of connections that did not fail are not events."""
    assert classify(rec("sshd", message)) == []


def test_sshd_pam_error_for_illegal_user() -> None:
    """auth-pam.c:939 `PAM: %s for %s%.100s from %.100s`."""
    kind, fields = one("sshd", "error: PAM: Authentication failure for illegal user admin from 203.0.113.9")
    assert (kind, fields["user"], fields["source"], fields["invalid_user"]) == (
        "pam_auth_failure",
        "admin",
        "203.0.113.9",
        True,
    )


# -- sudo ----------------------------------------------------------------------------------------


def test_sudo_fields_are_taken_once_in_order() -> None:
    """` ; USER=nobody` in the command's arguments does not change the target (the issue's evasion)."""
    events = classify(
        rec(
            "sudo",
            "mallory : TTY=pts/3 ; PWD=/home/mallory ; USER=root ; COMMAND=/usr/bin/echo x ; USER=nobody",
        )
    )
    assert [e.kind for e in events] == ["sudo_command", "log_forgery"]
    assert events[0].fields["target_user"] == "root"
    assert events[0].fields["command"] == "/usr/bin/echo x ; USER=nobody"


def test_sudo_injection_through_the_directory_fails_closed() -> None:
    """A directory named `x ; USER=nobody` precedes the real USER: any root reading wins."""
    for line in (
        "mallory : TTY=pts/3 ; PWD=/tmp/x ; USER=nobody ; USER=root ; COMMAND=/bin/sh",
        "mallory : TTY=pts/3 ; PWD=/tmp/y ; USER=nobody ; COMMAND=/bin/true ; USER=root ; COMMAND=/bin/sh",
    ):
        events = classify(rec("sudo", line))
        assert events[0].fields["target_user"] == "root", line
        assert events[1].kind == "log_forgery"


def test_sudo_quoted_argument_is_not_a_forgery() -> None:
    """sudo >= 1.9.13 quotes an argument with spaces: its ` ; USER=` is the user's text."""
    events = classify(
        rec(
            "sudo",
            "alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; "
            "COMMAND=/usr/bin/sh -c 'echo hi ; USER=nobody'",
        )
    )
    assert [e.kind for e in events] == ["sudo_command"]


def test_sudo_directory_with_semicolons_stays_one_field() -> None:
    """A ` ; ` without a key inside PWD belongs to PWD."""
    reason, fields, extras = parse_sudo_fields("TTY=pts/0 ; PWD=/srv/a ; b ; USER=root ; COMMAND=/bin/ls")
    assert (reason, fields["PWD"], fields["USER"], extras) == ("", "/srv/a ; b", "root", [])


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("user NOT in sudoers", "sudo_denied"),
        ("user NOT authorized on host", "sudo_denied"),
        ("command not allowed", "sudo_denied"),
        ("a password is required", "sudo_auth_failed"),
        ("3 incorrect password attempts", "sudo_auth_failed"),
        ("1 incorrect password attempt", "sudo_auth_failed"),
    ],
)
def test_sudo_reasons(reason: str, kind: str) -> None:
    """logging.c's reasons before the fields."""
    got, fields = one(
        "sudo", f"   bob : {reason} ; TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/bin/id"
    )
    assert (got, fields["user"], fields["target_user"]) == (kind, "bob", "root")


# -- su and login --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("program", "message", "kind", "user", "target"),
    [
        ("su", "(to root) alice on pts/0", "su_session", "alice", "root"),
        ("su", "FAILED SU (to root) bob on pts/1", "su_failed", "bob", "root"),
        ("runuser", "FAILED RUNUSER (to nobody) root on none", "su_failed", "root", "nobody"),
        ("su", "+ /dev/pts/0 alice:root", "su_session", "alice", "root"),
        ("su", "- /dev/pts/1 bob:root", "su_failed", "bob", "root"),
        ("su", "Successful su for root by alice", "su_session", "alice", "root"),
        ("su", "FAILED su for root by bob", "su_failed", "bob", "root"),
        ("su", "BAD SU ger to fwmaster on /dev/ttyp0", "su_failed", "ger", "fwmaster"),
    ],
)
def test_su_forms(program: str, message: str, kind: str, user: str, target: str) -> None:
    """util-linux, shadow (su.c, sulog.c) and older forms."""
    got, fields = one(program, message)
    assert (got, fields["user"], fields["target_user"]) == (kind, user, target)


@pytest.mark.parametrize(
    ("message", "kind", "user", "source"),
    [
        ("FAILED LOGIN 1 FROM tty1 FOR root, Authentication failure", "login_failed", "root", "tty1"),
        (
            "FAILED LOGIN (2) on '/dev/pts/3' from '192.0.2.40' FOR 'alice', Authentication failure",
            "login_failed",
            "alice",
            "192.0.2.40",
        ),
        ("TOO MANY LOGIN TRIES (5) on '/dev/tty1' FOR 'root'", "max_auth_attempts", "root", "tty1"),
        ("ROOT LOGIN ON tty1", "root_login", "root", "tty1"),
        ("ROOT LOGIN  on '/dev/pts/4' from '192.0.2.41'", "root_login", "root", "192.0.2.41"),
        ("LOGIN ON pts/3 BY alice FROM 192.0.2.32", "login_accepted", "alice", "192.0.2.32"),
    ],
)
def test_login_forms(message: str, kind: str, user: str, source: str) -> None:
    """util-linux (upper-case FROM) and shadow (lower-case ` from '…'`)."""
    got, fields = one("login", message)
    assert (got, fields["user"], fields["source"]) == (kind, user, source)


# -- PAM -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("program", "message", "kind"),
    [
        (
            "sshd",
            "pam_sss(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
            "rhost=203.0.113.51 user=alice",
            "pam_auth_failure",
        ),
        (
            "sshd",
            "pam_faillock(sshd:auth): Consecutive login failures for user root account temporarily locked",
            "account_locked",
        ),
        ("sshd", "pam_ldap(sshd:auth): Authentication failure; user=alice", "pam_auth_failure"),
        ("sshd", "pam_tally2(sshd:auth): user root (0) tally 4, deny 3", "account_locked"),
        (
            "su(pam_unix)",
            "authentication failure; logname= uid=1342 euid=0 tty= ruser=dcid rhost=  user=root",
            "pam_auth_failure",
        ),
        ("sshd", "pam_sss(sshd:account): Access denied for user carol: 6 (Permission denied)", "denied_user"),
        ("vsftpd(pam_unix)", "check pass; user unknown", "invalid_user"),
    ],
)
def test_pam_modules(program: str, message: str, kind: str) -> None:
    """Modules other than pam_unix, and Linux-PAM < 0.99's `service(pam_unix)[pid]:` program."""
    assert one(program, message)[0] == kind


def test_pam_key_values_are_taken_once() -> None:
    """A second `rhost=` cannot replace the first."""
    _, fields = one(
        "sshd",
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
        "rhost=203.0.113.9 rhost=10.0.0.1 user=root",
    )
    assert fields["source"] == "203.0.113.9"


# -- journal identity ----------------------------------------------------------------------------


def test_logger_claiming_sshd_is_a_forgery_not_a_root_login() -> None:
    """`logger -t sshd` by uid 1000: journald's _COMM/_EXE say logger (the issue's evasion)."""
    origin = Origin(comm="logger", exe="/usr/bin/logger", uid=1000, identifier="sshd")
    interpretation = interpret(
        rec("sshd", "Accepted password for root from 198.51.100.7 port 40000 ssh2", origin)
    )
    assert [e.kind for e in interpretation.events] == ["log_forgery"]
    assert "logger" in interpretation.note


def test_sshd_entry_from_a_process_journald_could_not_name_must_be_root() -> None:
    """The writer exited before journald read /proc: only _UID is left, and sshd logs as root."""
    origin = Origin(uid=1000, identifier="sshd")
    assert (
        verify_origin(rec("sshd", "Accepted password for root from 198.51.100.7 port 1 ssh2", origin))
        is not None
    )
    assert verify_origin(rec("sshd", "x", Origin(uid=0, identifier="sshd"))) is None


@pytest.mark.parametrize(
    ("program", "origin"),
    [
        ("sshd", Origin(comm="sshd", exe="/usr/sbin/sshd", uid=0)),
        ("sshd-session", Origin(comm="sshd-session", exe="/usr/lib/openssh/sshd-session", uid=0)),
        ("sudo", Origin(comm="sudo", exe="/usr/bin/sudo", uid=1000)),
        ("su", Origin(comm="su", exe="/usr/bin/su", uid=1000)),
        ("lightdm", Origin(comm="lightdm", exe="/usr/sbin/lightdm", uid=0)),
    ],
)
def test_genuine_writers_are_believed(program: str, origin: Origin) -> None:
    """sudo and su log with the invoking user's uid; other programs are not judged."""
    assert verify_origin(rec(program, "x", origin)) is None
