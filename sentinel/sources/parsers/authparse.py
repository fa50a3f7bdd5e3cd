"""Parsers for authentication log lines: syslog files (Debian auth.log, RHEL secure) and the
journal's JSON export, and the classification of sshd, sudo, su, login and PAM messages.

Two steps, both pure functions:

1. `parse_syslog_line` / `parse_journal_entry` turn raw input into a `LogRecord` (time, host,
   program, pid, message). Input that is not a log record at all raises `Malformed`.
2. `classify` turns a record into zero or more `AuthEvent`s. Lines it does not recognise (most
   of a busy auth log: session opened, cron, systemd-logind) are simply not events.

Sources are normalised so that rules group correctly: `::ffff:203.0.113.9` is `203.0.113.9`,
IPv6 is compressed. A user name cannot move the source: the source is taken from the *last*
` from ADDR port N` of an sshd line, which an attacker-chosen user name precedes.
"""

from __future__ import annotations

import calendar
import ipaddress
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sentinel.core.model import Scalar

MONTHS = {m: i for i, m in enumerate(calendar.month_abbr) if m}
SSHD_PROGRAMS = frozenset({"sshd", "sshd-session", "sshd-auth"})


class Malformed(ValueError):
    """Input that is not a log record (binary, truncated JSON, no syslog header)."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One log record, whatever its source. `time` is epoch seconds from the record itself."""

    time: float
    host: str
    program: str
    pid: int | None
    message: str


@dataclass(frozen=True, slots=True)
class AuthEvent:
    """What one record means: `kind` (login_failed, ...), the subject rules group on, fields."""

    kind: str
    subject: str
    fields: dict[str, Scalar] = field(default_factory=dict)


# -- step 1: records ------------------------------------------------------------------------------

_TAG = r"(?P<tag>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)"
_TRADITIONAL = re.compile(
    r"^(?P<mon>[A-Z][a-z]{2}) (?P<day>[ \d]?\d) (?P<hms>\d\d:\d\d:\d\d) (?P<host>\S+) " + _TAG + r"$",
    re.DOTALL,
)
_RFC3339 = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)) (?P<host>\S+) " + _TAG + r"$",
    re.DOTALL,
)
_FUTURE_SLACK = 2 * 86400  # a traditional stamp further ahead than this belongs to last year


def parse_syslog_line(line: str, *, now: float) -> LogRecord:
    """Parse `Mar  3 10:15:01 host prog[pid]: msg` (local time) or the RFC 3339 form Debian 12
    rsyslog writes. The traditional form has no year: the one that puts the stamp closest
    before `now` is chosen (a December line read in January is last year's)."""
    match = _RFC3339.match(line)
    if match:
        try:
            stamp = datetime.fromisoformat(match["ts"].replace("Z", "+00:00")).timestamp()
        except ValueError as exc:
            raise Malformed(f"bad timestamp {match['ts']!r}") from exc
        return _record(match, stamp)
    match = _TRADITIONAL.match(line)
    if not match or match["mon"] not in MONTHS:
        raise Malformed("no syslog header")
    return _record(match, _traditional_time(match["mon"], match["day"], match["hms"], now))


def _traditional_time(mon: str, day: str, hms: str, now: float) -> float:
    hour, minute, second = (int(x) for x in hms.split(":"))
    year = time.localtime(now).tm_year
    for candidate in (year, year - 1):
        try:
            stamp = time.mktime((candidate, MONTHS[mon], int(day), hour, minute, second, 0, 0, -1))
        except (OverflowError, ValueError) as exc:
            raise Malformed(f"bad date {mon} {day} {hms}") from exc
        if stamp <= now + _FUTURE_SLACK:
            return stamp
    return stamp


def _record(match: re.Match[str], stamp: float) -> LogRecord:
    pid = match["pid"]
    return LogRecord(stamp, match["host"], match["tag"], int(pid) if pid else None, match["msg"])


def parse_journal_entry(line: bytes | str) -> tuple[LogRecord, str]:
    """One line of `journalctl -o json`: (record, cursor). Raise Malformed on anything else.

    journalctl prints a field that is not valid UTF-8 as an array of byte values, and a field
    over its size limit as null; the first is decoded with replacement, the second skipped.
    """
    try:
        entry = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Malformed("not JSON") from exc
    if not isinstance(entry, dict):
        raise Malformed("not a JSON object")
    cursor = entry.get("__CURSOR")
    message = _journal_text(entry.get("MESSAGE"))
    if not isinstance(cursor, str) or message is None:
        raise Malformed("no cursor or message")
    try:
        stamp = int(entry["__REALTIME_TIMESTAMP"]) / 1e6
    except (KeyError, TypeError, ValueError) as exc:
        raise Malformed("no timestamp") from exc
    program = _journal_text(entry.get("SYSLOG_IDENTIFIER")) or _journal_text(entry.get("_COMM")) or ""
    pid_text = _journal_text(entry.get("SYSLOG_PID")) or _journal_text(entry.get("_PID")) or ""
    host = _journal_text(entry.get("_HOSTNAME")) or ""
    pid = int(pid_text) if pid_text.isdigit() else None
    return LogRecord(stamp, host, program, pid, message), cursor


def _journal_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return bytes(value).decode("utf-8", "replace")
    return None


# -- step 2: meaning ------------------------------------------------------------------------------

_REPEATED = re.compile(r"^message repeated (?P<n>\d+) times: \[ ?(?P<msg>.*)\]$", re.DOTALL)
_ENDPOINT = r" from (?P<source>\S+) port (?P<port>\d+)(?: ssh2)?(?:: .*|\s*\[preauth\])?$"
_SSHD_FAILED = re.compile(
    r"^Failed (?P<method>\S+) for (?P<invalid>invalid user )?(?P<user>.*)" + _ENDPOINT, re.DOTALL
)
_SSHD_ACCEPTED = re.compile(r"^Accepted (?P<method>\S+) for (?P<user>.*)" + _ENDPOINT, re.DOTALL)
_SSHD_INVALID = re.compile(r"^Invalid user (?P<user>.*)" + _ENDPOINT, re.DOTALL)
_PAM_FAILURE = re.compile(
    r"^pam_unix\((?P<service>[^:)]+):auth\): authentication failure;(?P<kv>.*)$", re.DOTALL
)
_PAM_KV = re.compile(r"(\w+)=(\S*)")
_SUDO = re.compile(r"^\s*(?P<user>\S+) : (?P<rest>.*)$", re.DOTALL)
_SUDO_ATTEMPTS = re.compile(r"^(?P<n>\d+) incorrect password attempts?$")
_SU_OK = re.compile(r"^\(to (?P<target>\S+)\) (?P<user>\S+) on (?P<tty>\S+)$")
_SU_FAILED = re.compile(r"^FAILED SU \(to (?P<target>\S+)\) (?P<user>\S+) on (?P<tty>\S+)$")
_LOGIN_FAILED = re.compile(
    r"^FAILED LOGIN \(\d+\) on '(?P<tty>[^']*)' (?:FROM '(?P<host>[^']*)' )?"
    r"FOR '(?P<user>[^']*)', (?P<why>.*)$"
)
_LOGIN_ROOT = re.compile(r"^ROOT LOGIN +on '(?P<tty>[^']*)'(?: FROM '(?P<host>[^']*)')?$")
_LOGIN_OK = re.compile(r"^LOGIN ON (?P<tty>\S+) BY (?P<user>\S+)(?: FROM (?P<host>\S+))?$")


def normalise_source(text: str) -> str:
    """An address in its canonical form (IPv4-mapped IPv6 as IPv4); anything else unchanged."""
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return text
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def classify(record: LogRecord) -> list[AuthEvent]:
    """The auth events in one record (none for lines that are not about authentication)."""
    message = record.message.rstrip("\r\n")
    repeated = _REPEATED.match(message)
    times = 1
    if repeated:  # rsyslog's "last message repeated": each repetition was one real attempt
        times, message = min(int(repeated["n"]), 10_000), repeated["msg"]
    program = record.program
    if program in SSHD_PROGRAMS:
        events = _sshd(message)
    elif program == "sudo":
        events = _sudo(message)
    elif program == "su":
        events = _su(message)
    elif program == "login":
        events = _login(message)
    else:
        events = []
    if not events:
        events = _pam(message)
    return events * times


def _sshd(message: str) -> list[AuthEvent]:
    match = _SSHD_FAILED.match(message)
    if match:
        source = normalise_source(match["source"])
        return [
            AuthEvent(
                "login_failed",
                source,
                {
                    "source": source,
                    "user": match["user"],
                    "method": match["method"],
                    "port": int(match["port"]),
                    "service": "sshd",
                    "invalid_user": bool(match["invalid"]),
                },
            )
        ]
    match = _SSHD_ACCEPTED.match(message)
    if match:
        source = normalise_source(match["source"])
        fields: dict[str, Scalar] = {
            "source": source,
            "user": match["user"],
            "method": match["method"],
            "port": int(match["port"]),
            "service": "sshd",
        }
        return _accepted(match["user"], source, fields)
    match = _SSHD_INVALID.match(message)
    if match:
        source = normalise_source(match["source"])
        fields = {"source": source, "user": match["user"], "service": "sshd"}
        return [AuthEvent("invalid_user", source, fields)]
    return []


def _accepted(user: str, source: str, fields: dict[str, Scalar]) -> list[AuthEvent]:
    events = [AuthEvent("login_accepted", f"{user}@{source}", fields)]
    if user == "root":
        events.append(AuthEvent("root_login", source, fields))
    return events


def _sudo(message: str) -> list[AuthEvent]:
    match = _SUDO.match(message)
    if not match:
        return []
    user = match["user"]
    parts = [p.strip() for p in match["rest"].split(" ; ")]
    values = dict(p.split("=", 1) for p in parts if "=" in p and not p.startswith("COMMAND="))
    command = next((p.split("=", 1)[1] for p in parts if p.startswith("COMMAND=")), "")
    fields: dict[str, Scalar] = {
        "user": user,
        "target_user": values.get("USER", "root"),
        "tty": values.get("TTY", ""),
        "command": command,
    }
    head = parts[0]
    attempts = _SUDO_ATTEMPTS.match(head)
    if attempts:
        return [AuthEvent("sudo_auth_failed", user, {**fields, "attempts": int(attempts["n"])})]
    if head == "user NOT in sudoers" or head.startswith("command not allowed"):
        return [AuthEvent("sudo_denied", user, {**fields, "reason": head})]
    if head.startswith("TTY=") and command:
        return [AuthEvent("sudo_command", user, fields)]
    return []


def _su(message: str) -> list[AuthEvent]:
    match = _SU_FAILED.match(message)
    if match:
        return [
            AuthEvent(
                "su_failed",
                match["user"],
                {"user": match["user"], "target_user": match["target"], "tty": match["tty"]},
            )
        ]
    match = _SU_OK.match(message)
    if match:
        return [
            AuthEvent(
                "su_session",
                match["user"],
                {"user": match["user"], "target_user": match["target"], "tty": match["tty"]},
            )
        ]
    return []


def _login(message: str) -> list[AuthEvent]:
    match = _LOGIN_FAILED.match(message)
    if match:
        source = normalise_source(match["host"]) if match["host"] else _tty(match["tty"])
        return [
            AuthEvent(
                "login_failed",
                source,
                {"source": source, "user": match["user"], "service": "login", "reason": match["why"]},
            )
        ]
    match = _LOGIN_ROOT.match(message)
    if match:
        source = normalise_source(match["host"]) if match["host"] else _tty(match["tty"])
        return [AuthEvent("root_login", source, {"source": source, "user": "root", "service": "login"})]
    match = _LOGIN_OK.match(message)
    if match:
        source = normalise_source(match["host"]) if match["host"] else _tty(match["tty"])
        fields: dict[str, Scalar] = {"source": source, "user": match["user"], "service": "login"}
        return [AuthEvent("login_accepted", f"{match['user']}@{source}", fields)]
    return []


def _tty(text: str) -> str:
    return text.removeprefix("/dev/")


def _pam(message: str) -> list[AuthEvent]:
    match = _PAM_FAILURE.match(message)
    if not match:
        return []
    kv = dict(_PAM_KV.findall(match["kv"]))
    rhost = kv.get("rhost", "")
    source = normalise_source(rhost) if rhost else _tty(kv.get("tty", ""))
    user = kv.get("user", "") or kv.get("ruser", "")
    return [
        AuthEvent(
            "pam_auth_failure",
            source or user,
            {"service": match["service"], "user": user, "source": source, "logname": kv.get("logname", "")},
        )
    ]
