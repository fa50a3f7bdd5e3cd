"""Log records from syslog text (every common header) and from the journal's JSON export.

`parse_syslog_line` and `parse_journal_entry` turn raw input into a `LogRecord` (time, host,
program, pid, message; for the journal also what journald itself recorded about the writer).
Input that is not a log record at all raises `Malformed`. Control characters in a message
become visible `\\xNN` escapes (`clean_message`).
"""

from __future__ import annotations

import calendar
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

MONTHS = {m: i for i, m in enumerate(calendar.month_abbr) if m}


class Malformed(ValueError):
    """Input that is not a log record (binary, truncated JSON, no syslog header)."""


@dataclass(frozen=True, slots=True)
class Origin:
    """What journald itself recorded about the writer of an entry (absent fields are None).

    `comm`, `exe`, `uid` and `unit` come from the kernel through journald (`_COMM`, `_EXE`,
    `_UID`, `_SYSTEMD_UNIT`); `identifier` is `SYSLOG_IDENTIFIER`, what the writer *says* it is.
    """

    comm: str | None = None
    exe: str | None = None
    uid: int | None = None
    unit: str | None = None
    transport: str | None = None
    identifier: str | None = None


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One log record, whatever its source. `time` is epoch seconds.

    `stamped_at_read` is True when the input had no time of its own (a journal entry without
    __REALTIME_TIMESTAMP) and `time` is when it was read. `origin` is set for journal records.
    """

    time: float
    host: str
    program: str
    pid: int | None
    message: str
    origin: Origin | None = None
    stamped_at_read: bool = False


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def clean_message(text: str) -> str:
    """Control characters (NUL, escape sequences, newlines) as visible `\\xNN` escapes.

    The programs we read never log raw control bytes (sshd and sudo escape them); one in a line
    came from some other writer, and must neither cut a value short nor reach a terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


_PRI = r"(?:<(?P<pri>\d{1,3})>)?"
# prog[pid]: / prog: / "-- root[pid]:" (old login) / [prog]: with no host (seen in fail2ban's corpus)
_TAG = r"(?P<tag>(?:-- )?[^\s\[\]:]+\]*)(?:\[(?P<pid>\d+)\])?:(?: (?P<msg>.*))?"
_TRAD_STAMP = r"(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<hms>\d\d:\d\d:\d\d)"
_ISO_STAMP = (
    r"(?P<date>\d{4}-\d\d-\d\d)[T ](?P<time>\d\d:\d\d:\d\d)(?P<frac>\.\d+)?"
    r"(?P<tz>Z|[+-]\d\d:?\d\d)?"
)
_TRADITIONAL = re.compile(rf"^{_PRI}{_TRAD_STAMP} +(?P<rest>.*)$", re.DOTALL)
_YEAR_FIRST = re.compile(rf"^{_PRI}(?P<year>\d{{4}}) {_TRAD_STAMP} +(?P<rest>.*)$", re.DOTALL)
_ISO = re.compile(rf"^{_PRI}{_ISO_STAMP} +(?P<rest>.*)$", re.DOTALL)
_RFC5424 = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?:(?P<ts>\S+)) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    r"(?P<rest>.*)$",
    re.DOTALL,
)
_SD_ELEMENT = re.compile(r'\[[^\s\]=]+(?: [^\s=\]"]+="(?:[^"\\]|\\.)*")*\]')
_HOST_TAG = re.compile(rf"^(?P<host>[^\s\[\]:]+) +{_TAG}$", re.DOTALL)
_NO_HOST_TAG = re.compile(rf"^{_TAG}$", re.DOTALL)
_BRACKET_TAG = re.compile(r"^\[(?P<tag>[^\s\]]+)\]:? (?P<msg>.*)$", re.DOTALL)
_ASL = re.compile(
    r"^\[Time (?P<ts>\d{4}\.\d\d\.\d\d \d\d:\d\d:\d\d) UTC\] \[Facility \S+\] \[Sender (?P<tag>[^\]]+)\] "
    r"\[PID (?P<pid>-?\d+)\] \[Message (?P<msg>.*)\] \[Level [^\]]*\] \[UID [^\]]*\] \[GID [^\]]*\] "
    r"\[Host (?P<host>[^\]]*)\]$",
    re.DOTALL,
)
_SOLARIS_ID = re.compile(r"^\[ID \d+ [a-z0-9]+\.[a-z]+\] ")
_FUTURE_SLACK = 2 * 86400  # a traditional stamp further ahead than this belongs to last year


def parse_syslog_line(line: str, *, now: float) -> LogRecord:
    """Parse one syslog line in any of the headers Linux systems write.

    RFC 3164 (`Mar  3 10:15:01 host prog[pid]: msg`, local time, year inferred: the one that
    puts the stamp closest before `now`), with or without `<PRI>`, with or without the host;
    RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`); ISO/RFC 3339 stamps with or
    without fraction and offset, `T` or a space, one or more spaces before the host (rsyslog,
    syslog-ng `YYYY-MM-DD HH:MM:SS`); syslog-ng's `YYYY Mon DD`; macOS ASL brackets. A Solaris
    `[ID 800047 auth.notice]` message prefix is dropped.
    """
    line = line.rstrip("\r\n")
    if line.startswith("<") and (match := _RFC5424.match(line)):
        return _rfc5424(match, now)
    if match := _ISO.match(line):
        return _tagged(match["rest"], _iso_time(match), now)
    if match := _TRADITIONAL.match(line):
        if match["mon"] not in MONTHS:
            raise Malformed(f"bad month {match['mon']!r}")
        stamp = _traditional_time(match["mon"], match["day"], match["hms"], now)
        return _tagged(match["rest"], stamp, now)
    if match := _YEAR_FIRST.match(line):
        if match["mon"] not in MONTHS:
            raise Malformed(f"bad month {match['mon']!r}")
        stamp = _local_time(int(match["year"]), MONTHS[match["mon"]], match["day"], match["hms"])
        return _tagged(match["rest"], stamp, now)
    if match := _ASL.match(line):
        try:
            dt = datetime.strptime(match["ts"], "%Y.%m.%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError as exc:
            raise Malformed(f"bad timestamp {match['ts']!r}") from exc
        pid = int(match["pid"]) if match["pid"].isdigit() else None
        return LogRecord(dt.timestamp(), match["host"], match["tag"], pid, clean_message(match["msg"]))
    raise Malformed("no syslog header")


def _tagged(rest: str, stamp: float, now: float) -> LogRecord:
    """`host tag: msg` (or `tag: msg` / `[tag] msg` without a host) after the time stamp."""
    match = _HOST_TAG.match(rest)
    host = ""
    if match is None:
        match = _NO_HOST_TAG.match(rest) or _BRACKET_TAG.match(rest)
    else:
        host = match["host"]
    if match is None:  # a header without a recognisable tag is still a record, just not ours
        head, _, msg = rest.partition(" ")
        return LogRecord(stamp, head, "", None, clean_message(msg))
    pid = match.groupdict().get("pid")
    message = _SOLARIS_ID.sub("", match["msg"] or "", count=1)
    return LogRecord(stamp, host, match["tag"], int(pid) if pid else None, clean_message(message))


def _rfc5424(match: re.Match[str], now: float) -> LogRecord:
    ts = match["ts"]
    if ts == "-":
        stamp = now
    else:
        iso = re.fullmatch(_ISO_STAMP, ts)
        if iso is None:
            raise Malformed(f"bad RFC 5424 timestamp {ts!r}")
        stamp = _iso_time(iso)
    rest = match["rest"]
    if rest.startswith("-"):
        msg = rest[2:] if rest.startswith("- ") else rest[1:]
    else:
        pos = 0
        while (sd := _SD_ELEMENT.match(rest, pos)) is not None:
            pos = sd.end()
        if pos == 0:
            raise Malformed("bad RFC 5424 structured data")
        msg = rest[pos + 1 :] if rest[pos : pos + 1] == " " else rest[pos:]
    msg = msg.removeprefix("\ufeff")  # BOM before a UTF-8 MSG
    host = "" if match["host"] == "-" else match["host"]
    app = "" if match["app"] == "-" else match["app"]
    procid = match["procid"]
    return LogRecord(stamp, host, app, int(procid) if procid.isdigit() else None, clean_message(msg))


def _iso_time(match: re.Match[str]) -> float:
    text = f"{match['date']}T{match['time']}{(match['frac'] or '')[:7]}"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise Malformed(f"bad timestamp {text!r}") from exc
    tz = match["tz"]
    if tz is None:
        return time.mktime(dt.timetuple()) + dt.microsecond / 1e6  # local time, as syslog-ng writes it
    if tz == "Z":
        return dt.replace(tzinfo=UTC).timestamp()
    sign = 1 if tz[0] == "+" else -1
    digits = tz[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return dt.replace(tzinfo=timezone(sign * offset)).timestamp()


def _local_time(year: int, month: int, day: str, hms: str) -> float:
    hour, minute, second = (int(x) for x in hms.split(":"))
    try:
        return time.mktime((year, month, int(day), hour, minute, second, 0, 0, -1))
    except (OverflowError, ValueError) as exc:
        raise Malformed(f"bad date {year}-{month}-{day} {hms}") from exc


def _traditional_time(mon: str, day: str, hms: str, now: float) -> float:
    if not 1 <= int(day) <= 31:
        raise Malformed(f"bad day {day!r}")
    year = time.localtime(now).tm_year
    stamp = 0.0
    for candidate in (year, year - 1):
        stamp = _local_time(candidate, MONTHS[mon], day, hms)
        if stamp <= now + _FUTURE_SLACK:
            return stamp
    return stamp


def parse_journal_entry(line: bytes | str, *, now: float) -> tuple[LogRecord, str | None]:
    """One line of `journalctl -o json`: (record, cursor). Raise Malformed on anything else.

    journalctl prints a field that is not valid UTF-8 as an array of byte values (decoded here
    with replacement), a field over its size limit as null (without `--all`), and a field with
    several values as an array of them (the first is used). An entry without
    `__REALTIME_TIMESTAMP` is stamped with `now`, the time it was read, rather than lost.
    """
    try:
        entry = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Malformed("not JSON") from exc
    if not isinstance(entry, dict):
        raise Malformed("not a JSON object")
    cursor = _journal_text(entry.get("__CURSOR"))
    message = _journal_text(entry.get("MESSAGE"))
    stamp_text = _journal_text(entry.get("__REALTIME_TIMESTAMP")) or ""
    stamped_at_read = not stamp_text.isdigit()
    stamp = now if stamped_at_read else int(stamp_text) / 1e6
    identifier = _journal_text(entry.get("SYSLOG_IDENTIFIER"))
    comm = _journal_text(entry.get("_COMM"))
    program = identifier or comm or ""
    pid_text = _journal_text(entry.get("SYSLOG_PID")) or _journal_text(entry.get("_PID")) or ""
    uid_text = _journal_text(entry.get("_UID")) or ""
    origin = Origin(
        comm=comm,
        exe=_journal_text(entry.get("_EXE")),
        uid=int(uid_text) if uid_text.isdigit() else None,
        unit=_journal_text(entry.get("_SYSTEMD_UNIT")),
        transport=_journal_text(entry.get("_TRANSPORT")),
        identifier=identifier,
    )
    record = LogRecord(
        stamp,
        _journal_text(entry.get("_HOSTNAME")) or "",
        program,
        int(pid_text) if pid_text.isdigit() else None,
        clean_message(message) if message is not None else "",
        origin,
        stamped_at_read,
    )
    return record, cursor


def _journal_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, list) and value:  # a field with several values: the first one
        return _journal_text(value[0])
    return None
