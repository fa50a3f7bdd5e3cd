"""sudo, su/runuser, login and other local programs' authentication lines.

Formats: sudo 1.9 (sudo-project/sudo SUDO_1_9_16p2 plugins/sudoers/logging.c:295-301/417/555,
lib/eventlog/eventlog.c:156-232: fields `TTY CHROOT PWD USER GROUP TSID ENV COMMAND` in that
order, COMMAND last, arguments with spaces single-quoted since 1.9.13); util-linux v2.40
login-utils/su-common.c:294 and login.c:820-1003; shadow 4.16 src/su.c:203, lib/sulog.c:36,
src/login.c:597-1235; the BSD and older su forms Wazuh's ruleset tests; krb5-appl klogind;
gdm; pam_unix's unix_chkpwd.
"""

from __future__ import annotations

import re

from sentinel.core.model import Scalar
from sentinel.sources.parsers.authevent import AuthEvent, Interpretation, forgery, no_event, normalise_source

_SUDO_HEAD = re.compile(r"^\s*(?P<user>[^\s:]+) : (?P<rest>.*)$", re.DOTALL)
# eventlog.c writes these in this order, each at most once; COMMAND is last and takes the rest
_SUDO_ORDER = ("HOST", "TTY", "CHROOT", "PWD", "CWD", "USER", "GROUP", "TSID", "ENV", "COMMAND")
_SUDO_KEY = re.compile(r"^(?P<key>[A-Z]+)=(?P<value>.*)$", re.DOTALL)
_SUDO_ATTEMPTS = re.compile(r"^(?P<n>\d+) incorrect password attempts?$")
_SUDO_DENIED = (
    "user NOT in sudoers",
    "user NOT authorized on host",
    "command not allowed",
    "setid command rejected in intercept mode",
)
_ROOT_NAMES = ("root", "#0")


def parse_sudo_fields(rest: str) -> tuple[str, dict[str, str], list[tuple[str, str]]]:
    """(reason, fields, extras) of the text after `user : `.

    Fields are taken once each, in sudo's order; COMMAND takes the rest of the line. `extras`
    lists every `KEY=value` segment that does not fit that order (a repeated or out-of-order
    key before COMMAND, or an unquoted ` ; KEY=` inside the command): sudo never writes those
    itself, a directory name or argument built to mislead a parser does.
    """
    segments = rest.split(" ; ")
    reason = ""
    if segments and not _SUDO_KEY.match(segments[0]):
        reason = segments.pop(0)
    fields: dict[str, str] = {}
    extras: list[tuple[str, str]] = []
    position = -1
    for index, segment in enumerate(segments):
        key_match = _SUDO_KEY.match(segment)
        if key_match is None or key_match["key"] not in _SUDO_ORDER:
            if fields and "COMMAND" not in fields:  # a value with " ; " in it (PWD, ENV)
                last = list(fields)[-1]
                fields[last] += " ; " + segment
            continue
        key, value = key_match["key"], key_match["value"]
        if key == "COMMAND":
            fields["COMMAND"] = " ; ".join([value, *segments[index + 1 :]])
            extras += _unquoted_keys(fields["COMMAND"])
            break
        order = _SUDO_ORDER.index(key)
        if key in fields or order <= position:
            extras.append((key, value))
            continue
        fields[key] = value
        position = order
    return reason, fields, extras


def _unquoted_keys(command: str) -> list[tuple[str, str]]:
    """`KEY=value` segments after ` ; ` outside single quotes (sudo >= 1.9.13 quotes arguments
    that contain spaces, so a genuine ` ; ` in an argument is inside quotes)."""
    found: list[tuple[str, str]] = []
    quoted = False
    i = 0
    while i < len(command):
        ch = command[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "'":
            quoted = not quoted
        elif not quoted and command.startswith(" ; ", i):
            match = re.match(r"([A-Z]+)=(\S*)", command[i + 3 :])
            if match and match[1] in _SUDO_ORDER:
                found.append((match[1], match[2]))
        i += 1
    return found


def sudo_meaning(message: str) -> Interpretation:
    match = _SUDO_HEAD.match(message)
    if not match:
        return no_event("sudo: message is not an authentication fact")
    user = match["user"]
    reason, values, extras = parse_sudo_fields(match["rest"])
    candidates = [values.get("USER", "root"), *(v for k, v in extras if k == "USER")]
    target = values.get("USER", "root")
    note = ""
    if extras and any(c in _ROOT_NAMES for c in candidates):
        target = "root"  # fail closed: one of the readings is root, and sudo wrote only one USER
    fields: dict[str, Scalar] = {
        "user": user,
        "target_user": target,
        "tty": values.get("TTY", ""),
        "cwd": values.get("PWD", values.get("CWD", "")),  # not "pwd": a secret's name to redact
        "command": values.get("COMMAND", ""),
    }
    events: list[AuthEvent] = []
    attempts = _SUDO_ATTEMPTS.match(reason)
    if attempts:
        events.append(
            AuthEvent("sudo_auth_failed", user, {**fields, "attempts": int(attempts["n"]), "reason": reason})
        )
    elif reason == "a password is required":
        events.append(AuthEvent("sudo_auth_failed", user, {**fields, "attempts": 0, "reason": reason}))
    elif reason in _SUDO_DENIED or reason.startswith("command not allowed"):
        events.append(AuthEvent("sudo_denied", user, {**fields, "reason": reason}))
    elif not reason and "COMMAND" in values:
        events.append(AuthEvent("sudo_command", user, fields))
    else:
        return no_event(f"sudo: {reason or 'message'} is not an authentication fact")
    if extras:
        keys = ", ".join(sorted({k for k, _ in extras}))
        events.append(forgery(f"sudo line with fields sudo does not write ({keys})", user, match["rest"]))
        note = f"fields taken once each in sudo's order; the target is {target}"
    return Interpretation(events, note)


# -- su / runuser --------------------------------------------------------------------------------

_SU_UTIL = re.compile(
    r"^(?P<failed>FAILED (?:SU|RUNUSER) )?\(to (?P<target>[^)]*)\) (?P<user>\S*) on (?P<tty>\S+)$"
)
_SU_SHADOW = re.compile(r"^(?P<sign>[+-]) (?P<tty>\S+) (?P<user>[^\s:]*):(?P<target>\S+)$")
_SU_SULOG = re.compile(r"^(?P<what>Successful|FAILED) su for (?P<target>\S+) by (?P<user>\S+)$")
_SU_BAD = re.compile(r"^BAD SU (?P<user>\S+) to (?P<target>\S+)(?: on (?P<tty>\S+))?$")
_SU_BSD = re.compile(r"^(?P<user>\S+) to (?P<target>\S+) on (?P<tty>\S+)$")
_SU_FAILED_CHANGING = re.compile(r"^failed: (?P<tty>\S+) changing from (?P<user>\S+) to (?P<target>\S+)$")
_SU_QUOTED = re.compile(r"^'su (?P<target>\S+)' (?P<res>failed|succeeded) for (?P<user>\S+) on (?P<tty>\S+)$")


def su_meaning(message: str, program: str) -> Interpretation:
    ok: bool
    if m := _SU_UTIL.match(message):
        ok = not m["failed"]
    elif m := _SU_SHADOW.match(message):
        ok = m["sign"] == "+"
    elif m := _SU_SULOG.match(message):
        ok = m["what"] == "Successful"
    elif (m := _SU_BAD.match(message)) or (m := _SU_FAILED_CHANGING.match(message)):
        ok = False
    elif m := _SU_QUOTED.match(message):
        ok = m["res"] == "succeeded"
    elif m := _SU_BSD.match(message):
        ok = True
    else:
        return no_event(f"{program}: message is not an authentication fact")
    groups = m.groupdict()
    tty = (groups.get("tty") or "").removeprefix("/dev/")
    fields: dict[str, Scalar] = {
        "user": m["user"],
        "target_user": m["target"],
        "tty": tty,
        "program": program,
    }
    return Interpretation([AuthEvent("su_session" if ok else "su_failed", m["user"], fields)])


# -- login ---------------------------------------------------------------------------------------

_FROM_Q = r"(?: (?:from|FROM) '(?P<host>[^']*)')?"
_LOGIN_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # util-linux login.c:971/997/1003/820/823/826/829
    (
        re.compile(r"^FAILED LOGIN (?P<n>\d+) FROM (?P<host>\S+) FOR (?P<user>.*), (?P<why>.*)$"),
        "login_failed",
    ),
    (re.compile(r"^FAILED LOGIN SESSION FROM (?P<host>\S+) FOR (?P<user>.*), (?P<why>.*)$"), "login_failed"),
    (
        re.compile(r"^TOO MANY LOGIN TRIES \((?P<n>\d+)\) FROM (?P<host>\S+) FOR (?P<user>.*), (?P<why>.*)$"),
        "max_auth_attempts",
    ),
    (re.compile(r"^ROOT LOGIN ON (?P<tty>\S+)(?: FROM (?P<host>\S+))?$"), "root_login"),
    (re.compile(r"^LOGIN ON (?P<tty>\S+) BY (?P<user>\S+)(?: FROM (?P<host>\S+))?$"), "login_accepted"),
    # shadow login.c:597 fromhost " on '%.100s' from '%.200s'", :694/:708/:909/:923/:928/:954/:1233/:1235
    (
        re.compile(
            rf"^FAILED LOGIN \((?P<n>\d+)\) on '(?P<tty>[^']*)'{_FROM_Q} FOR '(?P<user>[^']*)', (?P<why>.*)$"
        ),
        "login_failed",
    ),
    (
        re.compile(
            rf"^TOO MANY LOGIN TRIES \((?P<n>\d+)\) on '(?P<tty>[^']*)'{_FROM_Q} FOR '(?P<user>[^']*)'$"
        ),
        "max_auth_attempts",
    ),
    (re.compile(rf"^ROOT LOGIN +on '(?P<tty>[^']*)'{_FROM_Q}$"), "root_login"),
    (re.compile(rf"^'(?P<user>[^']*)' logged in +on '(?P<tty>[^']*)'{_FROM_Q}$"), "login_accepted"),
    (re.compile(rf"^ILLEGAL ROOT LOGIN +on '(?P<tty>[^']*)'{_FROM_Q}$"), "denied_user"),
    (re.compile(rf"^LOGIN '(?P<user>[^']*)' REFUSED +on '(?P<tty>[^']*)'{_FROM_Q}$"), "denied_user"),
    (re.compile(rf"^invalid password for '(?P<user>[^']*)' +on '(?P<tty>[^']*)'{_FROM_Q}$"), "login_failed"),
    (re.compile(rf"^REPEATED login failures +on '(?P<tty>[^']*)'{_FROM_Q}$"), "max_auth_attempts"),
    (
        re.compile(rf"^exceeded failure limit for '(?P<user>[^']*)' +on '(?P<tty>[^']*)'{_FROM_Q}$"),
        "account_locked",
    ),
)


def login_meaning(message: str) -> Interpretation:
    for pattern, kind in _LOGIN_PATTERNS:
        m = pattern.match(message)
        if m is None:
            continue
        groups = m.groupdict()
        host, tty = groups.get("host") or "", (groups.get("tty") or "").removeprefix("/dev/")
        if host in ("(null)",):
            host = ""
        source = normalise_source(host) if host else tty
        user = (groups.get("user") or "").strip()
        if kind in ("root_login",) or (kind == "denied_user" and "user" not in groups):
            user = "root"
        fields: dict[str, Scalar] = {"source": source, "user": user, "service": "login", "tty": tty}
        if groups.get("why"):
            fields["reason"] = groups["why"]
        elif kind in ("denied_user", "max_auth_attempts", "account_locked"):
            fields["reason"] = message.split(" on '", 1)[0].split(" FROM ", 1)[0]
        if kind == "login_accepted":
            return Interpretation([AuthEvent(kind, f"{user}@{source}", fields)])
        if kind == "account_locked":
            return Interpretation([AuthEvent(kind, user, fields)])
        return Interpretation([AuthEvent(kind, source, fields)])
    return no_event("login: message is not an authentication fact")


_KLOGIN = re.compile(r"^Authentication failed from (?P<addr>\S+) \((?P<host>[^)]*)\): (?P<why>.*?) ?$")


def klogind_meaning(message: str, program: str) -> Interpretation:
    m = _KLOGIN.match(message)
    if m is None:
        return no_event(f"{program}: message is not an authentication fact")
    source = normalise_source(m["addr"])
    fields: dict[str, Scalar] = {"source": source, "user": "", "service": program, "reason": m["why"]}
    return Interpretation([AuthEvent("login_failed", source, fields)])


def gdm_meaning(message: str) -> Interpretation:
    if message.strip() == "Couldn't authenticate user":
        fields: dict[str, Scalar] = {"source": "", "user": "", "service": "gdm"}
        return Interpretation([AuthEvent("login_failed", "", fields)])
    return no_event("gdm: message is not an authentication fact")


_CHKPWD = re.compile(r"^password check failed for user \((?P<user>[^)]*)\)$")


def chkpwd_meaning(message: str) -> Interpretation:
    m = _CHKPWD.match(message)
    if m is None:
        return no_event("unix_chkpwd: message is not an authentication fact")
    fields: dict[str, Scalar] = {
        "service": "unix_chkpwd",
        "user": m["user"],
        "source": "",
        "module": "pam_unix",
    }
    return Interpretation([AuthEvent("pam_auth_failure", m["user"], fields)])
