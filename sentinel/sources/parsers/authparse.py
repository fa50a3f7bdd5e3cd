"""What an authentication log record means: sshd, sudo, su, login and PAM, checked against the
programs' own sources and public corpora (tests/data/auth-corpus, docs/logs.md).

Two steps on a `LogRecord` (sentinel.sources.parsers.logrecord):

1. `verify_origin`: for journal records, is the process journald saw the program the entry
   claims to be? (`SYSLOG_IDENTIFIER` is whatever the writer says; `_COMM`, `_EXE`, `_UID` are
   not.) A record that fails is not interpreted: it is a `log_forgery` event.
2. `interpret` / `classify`: zero or more `AuthEvent`s, or why there are none. Lines that are
   not about authentication (most of a busy auth log) are simply not events.

Sources are normalised so that rules group correctly (`::ffff:203.0.113.9` is `203.0.113.9`,
IPv6 compressed). A crafted user name, command argument or directory name cannot move a fact:
see auth_sshd and auth_local.
"""

from __future__ import annotations

import re

from sentinel.core.model import Scalar
from sentinel.sources.parsers.auth_local import (
    chkpwd_meaning,
    gdm_meaning,
    klogind_meaning,
    login_meaning,
    parse_sudo_fields,
    su_meaning,
    sudo_meaning,
)
from sentinel.sources.parsers.auth_pam import pam_body, pam_meaning
from sentinel.sources.parsers.auth_sshd import sshd_meaning
from sentinel.sources.parsers.authevent import (
    OLD_PAM_PROGRAM,
    SSHD_PROGRAMS,
    AuthEvent,
    Interpretation,
    family,
    no_event,
    normalise_source,
)
from sentinel.sources.parsers.logrecord import (
    LogRecord,
    Malformed,
    Origin,
    parse_journal_entry,
    parse_syslog_line,
)

__all__ = [
    "AuthEvent",
    "Interpretation",
    "LogRecord",
    "Malformed",
    "Origin",
    "classify",
    "family",
    "interpret",
    "normalise_source",
    "parse_journal_entry",
    "parse_sudo_fields",
    "parse_syslog_line",
    "verify_origin",
]

SU_PROGRAMS = frozenset({"su", "runuser"})
LOGIN_PROGRAMS = frozenset({"login"})


# The executables that write each program's lines, by basename, and whether they log as root.
_IDENTITIES: dict[str, tuple[frozenset[str], bool]] = {
    "sshd": (SSHD_PROGRAMS, True),
    "sudo": (frozenset({"sudo", "sudoedit"}), False),
    "su": (frozenset({"su"}), False),
    "runuser": (frozenset({"runuser"}), True),
    "login": (frozenset({"login"}), True),
    "unix_chkpwd": (frozenset({"unix_chkpwd"}), False),
}


def verify_origin(record: LogRecord) -> str | None:
    """Why a journal record's claimed program is not the process that wrote it, or None.

    Only the programs whose lines we give meaning to are checked: the executable journald saw
    (`_EXE`, else `_COMM`) must be that program, and sshd, login and runuser log as root. When
    journald could not read the writer's name (it exited at once), the uid still has to fit.
    Syslog files carry no such facts: there, any local user can write any line (`logger -t sshd`).
    """
    origin = record.origin
    if origin is None:
        return None
    claimed = family(record.program)
    identity = _IDENTITIES.get(claimed)
    if identity is None:
        return None
    names, as_root = identity
    exe_name = origin.exe.rsplit("/", 1)[-1] if origin.exe else None
    actual = exe_name or origin.comm
    if actual is not None and not any(actual == n or actual == n[:15] for n in names):
        return f"entry claims to be {record.program} but was written by {actual} (uid {origin.uid})"
    if as_root and origin.uid not in (0, None):
        return f"entry claims to be {record.program} but was written by uid {origin.uid}"
    return None


_REPEATED = re.compile(r"^message repeated (?P<n>\d+) times: \[ ?(?P<msg>.*)\]$", re.DOTALL)
_KERBEROS_LOGIN = frozenset({"klogind", "kshd", "eklogind", "ekshd"})


def classify(record: LogRecord) -> list[AuthEvent]:
    """The auth events in one record (none for lines that are not about authentication)."""
    return interpret(record).events


def interpret(record: LogRecord) -> Interpretation:
    """The events of one record and, when there are none, why."""
    forged = verify_origin(record)
    if forged is not None:
        fields: dict[str, Scalar] = {
            "reason": forged,
            "claimed": record.program,
            "comm": record.origin.comm if record.origin else None,
            "exe": record.origin.exe if record.origin else None,
            "uid": record.origin.uid if record.origin else None,
            "message": record.message[:512],
        }
        return Interpretation([AuthEvent("log_forgery", record.program, fields)], forged)
    message = record.message.rstrip("\r\n")
    repeated = _REPEATED.match(message)
    times = 1
    if repeated:  # rsyslog's "last message repeated": each repetition was one real attempt
        times, message = min(int(repeated["n"]), 10_000), repeated["msg"]
    program = record.program
    pam_module = None
    if old := OLD_PAM_PROGRAM.match(program):
        program, pam_module = old["svc"], old["mod"]
    result = _by_program(program, pam_module, message)
    if result is None or not result.events:
        pam = pam_meaning(message, program)
        if pam is not None:
            result = pam
    if result is None:
        if not program:
            return no_event("no program tag in the line")
        return no_event(f"program {program!r} is not one whose messages the auth detector reads")
    if times > 1 and result.events:
        return Interpretation(result.events * times, result.note or f"repeated {times} times (rsyslog)")
    return result


def _by_program(program: str, pam_module: str | None, message: str) -> Interpretation | None:
    """The program's own meaning of a message; None for programs we read only PAM lines of."""
    fam = family(program)
    if pam_module is not None:
        return pam_body(pam_module, program, "", message)
    if fam == "sshd":
        return sshd_meaning(message)
    if fam == "sudo":
        return sudo_meaning(message)
    if fam in SU_PROGRAMS:
        return su_meaning(message, program)
    if fam in LOGIN_PROGRAMS or program.startswith("-- "):  # util-linux < 2.x tagged "-- root"
        return login_meaning(message)
    if fam in _KERBEROS_LOGIN:
        return klogind_meaning(message, fam)
    if fam in ("gdm", "gdm-binary"):
        return gdm_meaning(message)
    if fam == "unix_chkpwd":
        return chkpwd_meaning(message)
    return None
