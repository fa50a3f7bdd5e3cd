"""Log records from every common syslog header and from the journal's JSON export."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from sentinel.sources.parsers.logrecord import (
    Malformed,
    clean_message,
    parse_journal_entry,
    parse_syslog_line,
)

NOW = time.mktime((2024, 3, 12, 12, 0, 0, 0, 0, -1))
LOCAL_0914 = time.mktime((2024, 3, 12, 9, 14, 3, 0, 0, -1))
UTC_0814 = datetime(2024, 3, 12, 8, 14, 3, tzinfo=UTC).timestamp()
MSG = "Failed password for root from 203.0.113.41 port 50522 ssh2"


@pytest.mark.parametrize(
    ("line", "host", "program", "pid", "stamp"),
    [
        (f"Mar 12 09:14:03 teller07 sshd[4823]: {MSG}", "teller07", "sshd", 4823, LOCAL_0914),
        (f"<38>Mar 12 09:14:03 teller07 sshd[4823]: {MSG}", "teller07", "sshd", 4823, LOCAL_0914),
        (f"Mar 12 09:14:03 sshd[4823]: {MSG}", "", "sshd", 4823, LOCAL_0914),
        (f"Mar 12 09:14:03 [sshd]: {MSG}", "", "sshd", None, LOCAL_0914),
        (f"Mar 12 09:14:03 teller07 sshd-session[4823]: {MSG}", "teller07", "sshd-session", 4823, LOCAL_0914),
        (f"2024-03-12T09:14:03+01:00 teller07 sshd[4823]: {MSG}", "teller07", "sshd", 4823, UTC_0814),
        (f"2024-03-12T08:14:03Z teller07 sshd[4823]: {MSG}", "teller07", "sshd", 4823, UTC_0814),
        (f"2024-03-12T09:14:03.000000+0100 teller07 sshd[4823]: {MSG}", "teller07", "sshd", 4823, UTC_0814),
        (f"2024-03-12 01:14:03.000000-0700  teller07 sshd[4823]: {MSG}", "teller07", "sshd", 4823, UTC_0814),
        (f"2024-03-12 09:14:03 teller07 sshd[4823]: {MSG}", "teller07", "sshd", 4823, LOCAL_0914),
        (f"2024 Mar 12 09:14:03 teller07 sshd[4823]: {MSG}", "teller07", "sshd", 4823, LOCAL_0914),
        (f"<38>1 2024-03-12T09:14:03+01:00 teller07 sshd 4823 - - {MSG}", "teller07", "sshd", 4823, UTC_0814),
        (
            f'<38>1 2024-03-12T08:14:03Z teller07 sshd 4823 ID47 [x@1 a="[b\\"]"][y@2] {MSG}',
            "teller07",
            "sshd",
            4823,
            UTC_0814,
        ),
    ],
)
def test_headers(line: str, host: str, program: str, pid: int | None, stamp: float) -> None:
    """RFC 3164 (PRI, no host, bracketed tag), RFC 3339/ISO variants, syslog-ng, RFC 5424."""
    record = parse_syslog_line(line, now=NOW)
    assert (record.host, record.program, record.pid) == (host, program, pid)
    assert record.time == pytest.approx(stamp)
    assert record.message == MSG


def test_solaris_message_id_is_dropped() -> None:
    """`[ID 800047 auth.notice]` before the message is Solaris' message id, not the message."""
    record = parse_syslog_line(
        f"Aug 18 07:30:25 192.168.1.5 sshd[20247]: [ID 800047 auth.notice] {MSG}", now=NOW
    )
    assert record.message == MSG


def test_a_header_without_a_tag_is_a_record_of_no_program() -> None:
    """`host syslogd 1.4.1: restart.` has a header but no tag: a record nobody reads, not garbage."""
    record = parse_syslog_line("Jul 17 04:08:23 combo syslogd 1.4.1: restart.", now=NOW)
    assert record.program == ""


@pytest.mark.parametrize(
    "line", ["", "garbage without header", "Foo  3 10:15:01 h p: m", "Mar 42 10:15:01 h p: m"]
)
def test_lines_without_a_syslog_header_are_malformed(line: str) -> None:
    """Anything that is not a syslog record raises Malformed (the caller counts it)."""
    with pytest.raises(Malformed):
        parse_syslog_line(line, now=NOW)


def test_control_characters_become_visible() -> None:
    """NUL and escape sequences cannot cut a value short or reach a terminal."""
    assert clean_message("ev\x00il\x1b[31m") == "ev\\x00il\\x1b[31m"
    record = parse_syslog_line("Mar 12 09:14:03 h sshd[1]: Invalid user ev\x00il from 203.0.113.9", now=NOW)
    assert "\x00" not in record.message


def _entry(**fields: object) -> str:
    base: dict[str, object] = {
        "__CURSOR": "s=1;i=2",
        "__REALTIME_TIMESTAMP": "1710231243000000",
        "MESSAGE": MSG,
        "SYSLOG_IDENTIFIER": "sshd",
        "SYSLOG_PID": "4823",
        "_PID": "4823",
        "_COMM": "sshd",
        "_EXE": "/usr/sbin/sshd",
        "_UID": "0",
        "_HOSTNAME": "teller07",
        "_SYSTEMD_UNIT": "ssh.service",
        "_TRANSPORT": "syslog",
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None})


def test_journal_entry_keeps_the_trusted_fields() -> None:
    """The writer's _COMM, _EXE, _UID, _SYSTEMD_UNIT come with the record, apart from its claim."""
    record, cursor = parse_journal_entry(_entry(), now=NOW)
    assert cursor == "s=1;i=2"
    assert (record.program, record.pid, record.host, record.time) == ("sshd", 4823, "teller07", 1710231243.0)
    assert record.origin is not None
    assert (record.origin.comm, record.origin.exe, record.origin.uid) == ("sshd", "/usr/sbin/sshd", 0)
    assert record.origin.identifier == "sshd"


def test_journal_entry_without_a_timestamp_is_stamped_when_read() -> None:
    """No __REALTIME_TIMESTAMP: the entry is kept, with the read time, and says so."""
    record, _ = parse_journal_entry(_entry(__REALTIME_TIMESTAMP=None), now=NOW)
    assert record.time == NOW and record.stamped_at_read


def test_journal_byte_array_message_is_decoded_with_replacement() -> None:
    """journalctl prints a non-UTF-8 field as bytes: the line is kept, the bad byte replaced."""
    raw = list(b"Invalid user adm" + b"\xff" + b"in from 203.0.113.9")
    record, _ = parse_journal_entry(_entry(MESSAGE=raw), now=NOW)
    assert record.message == "Invalid user adm\ufffdin from 203.0.113.9"


def test_journal_nul_in_message_is_cleaned() -> None:
    """A NUL (only a direct journal client can send one) becomes a visible escape."""
    record, _ = parse_journal_entry(_entry(MESSAGE=list(b"Invalid user ev\x00il from 203.0.113.9")), now=NOW)
    assert record.message == "Invalid user ev\\x00il from 203.0.113.9"


def test_journal_null_message_is_an_empty_record() -> None:
    """A field over journalctl's size limit is null: a record with no message, not an error."""
    entry = json.loads(_entry())
    entry["MESSAGE"] = None
    record, _ = parse_journal_entry(json.dumps(entry), now=NOW)
    assert record.message == ""


def test_journal_multi_valued_field_takes_the_first() -> None:
    """A field logged twice arrives as an array of values."""
    record, _ = parse_journal_entry(_entry(SYSLOG_IDENTIFIER=["sshd", "other"]), now=NOW)
    assert record.program == "sshd"


@pytest.mark.parametrize("line", [b"", b"{", b"[1, 2]", b"\xff\xfe", b'"text"'])
def test_bad_journal_lines_are_malformed(line: bytes) -> None:
    """Not a JSON object: Malformed."""
    with pytest.raises(Malformed):
        parse_journal_entry(line, now=NOW)
