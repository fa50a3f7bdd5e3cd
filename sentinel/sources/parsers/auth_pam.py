"""PAM modules' authentication lines, whoever loaded the module.

Formats: Linux-PAM v1.7.2 modules/pam_unix/support.c:315/762/830 (`authentication failure;
logname= uid= euid= tty= ruser= rhost= user=`, `N more authentication failure(s)`, `check pass;
user unknown`), pam_faillock.c:167/394, pam_tally2.c:598 (v1.4.0), SSSD pam_sss.c (`received for
user %s: %d (%s)`, `Access denied for user %s: %d (%s)`), nss-pam-ldapd pam.c (`%s; user=%s`),
PADL pam_ldap (`error trying to bind as user "DN" (reason)`); the prefix `pam_X(service:type): `,
the bare `pam_X: ` and Linux-PAM 0.7x's `(pam_unix) `.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sentinel.core.model import Scalar
from sentinel.sources.parsers.authevent import AuthEvent, Interpretation, family, no_event, normalise_source

_PAM_PREFIX = re.compile(
    r"^(?:(?P<mod>pam_[\w-]+)(?:\((?P<svc>[^:()]*):(?P<type>\w+)\))?|\((?P<oldmod>pam_[\w-]+)\)): "
    r"(?P<body>.*)$",
    re.DOTALL,
)
_PAM_OLD_SPACE = re.compile(r"^\((?P<mod>pam_[\w-]+)\) (?P<body>.*)$", re.DOTALL)
_PAM_FAILURE = re.compile(r"^authentication failure; ?(?P<kv>.*)$", re.DOTALL)
_PAM_MORE = re.compile(r"^(?:PAM )?(?P<n>\d+) more authentication failures?; ?(?P<kv>.*)$", re.DOTALL)
_PAM_KEYS = ("logname", "uid", "euid", "tty", "ruser", "rhost", "user")
_SSS_RECEIVED = re.compile(r"^received for user (?P<user>.*): (?P<code>\d+) \((?P<why>[^)]*)\)$")
_SSS_DENIED = re.compile(r"^Access denied for user (?P<user>.*): (?P<code>\d+) \((?P<why>[^)]*)\)$")
_FAILLOCK = re.compile(r"^Consecutive login failures for user (?P<user>\S+) account temporarily locked$")
_FAILLOCK_UNKNOWN = re.compile(r"^User unknown(?:: (?P<user>.*))?$")
_TALLY = re.compile(r"^user (?P<user>\S+) \((?P<uid>\d+)\) tally (?P<tally>\d+), deny (?P<deny>\d+)$")
_NSLCD = re.compile(r"^(?P<why>[A-Z][^;]*); user=(?P<user>.*)$")
_PADL_BIND = re.compile(r'^error trying to bind as user "(?P<dn>[^"]*)" \((?P<why>[^)]*)\)$')


def parse_pam_kv(text: str) -> dict[str, str]:
    """`logname=.. uid=.. euid=.. tty=.. ruser=.. rhost=..  user=..` as pam_unix writes it:
    each key once, in that order; values have no spaces except `user`, which is last."""
    values: dict[str, str] = {}
    for match in re.finditer(r"(?:^|\s)(\w+)=(\S*)", text):
        key = match[1]
        if key in _PAM_KEYS and key not in values:
            values[key] = match[2]
    return values


def pam_meaning(message: str, program: str) -> Interpretation | None:
    m = _PAM_PREFIX.match(message) or _PAM_OLD_SPACE.match(message)
    if m is None:
        if program == "sshd" or family(program) == "sshd":
            more = _PAM_MORE.match(message)  # sshd's own "PAM N more authentication failures"
            if more:
                return pam_body("pam_unix", "sshd", "auth", message)
        return None
    groups = m.groupdict()
    module = groups.get("mod") or groups.get("oldmod") or ""
    service = groups.get("svc") or program
    return pam_body(module, service, groups.get("type") or "", m["body"])


def _pam_event(kind: str, module: str, service: str, user: str, source: str, **extra: Scalar) -> AuthEvent:
    fields: dict[str, Scalar] = {"service": service, "module": module, "user": user, "source": source}
    fields.update({k: v for k, v in extra.items() if v is not None})
    subject = user if kind == "account_locked" else source or user
    return AuthEvent(kind, subject, fields)


class _Line:
    """One PAM message: which module wrote it for which service."""

    __slots__ = ("module", "ptype", "service")

    def __init__(self, module: str, service: str, ptype: str) -> None:
        self.module, self.service, self.ptype = module, service, ptype

    def event(self, kind: str, user: str, source: str = "", **extra: Scalar) -> Interpretation:
        return Interpretation([_pam_event(kind, self.module, self.service, user, source, **extra)])


def pam_body(module: str, service: str, ptype: str, body: str) -> Interpretation:
    """The meaning of the text after a PAM module's prefix."""
    line = _Line(module, service, ptype)
    body = body.rstrip()
    if body == "check pass; user unknown":
        return line.event("invalid_user", "")
    for pattern, handler in _HANDLERS:
        match = pattern.match(body)
        if match:
            result = handler(line, match)
            if result is not None:
                return result
    where = f"{module}({service}:{ptype})" if ptype else module
    return no_event(f"{where}: message is not an authentication fact")


def _failure(line: _Line, m: re.Match[str]) -> Interpretation:
    return _pam_failure(line.module, line.service, m["kv"], None)


def _more(line: _Line, m: re.Match[str]) -> Interpretation:
    return _pam_failure(line.module, line.service, m["kv"], int(m["n"]))


def _sss_received(line: _Line, m: re.Match[str]) -> Interpretation:
    code = int(m["code"])
    if code == _PAM_AUTH_ERR:
        return line.event("pam_auth_failure", m["user"], reason=m["why"])
    if code == _PAM_USER_UNKNOWN:
        return line.event("invalid_user", m["user"], reason=m["why"])
    return no_event(f"{line.module}: result {code} ({m['why']}) is not an authentication failure")


def _sss_denied(line: _Line, m: re.Match[str]) -> Interpretation:
    return line.event("denied_user", m["user"], reason=m["why"])


def _faillock(line: _Line, m: re.Match[str]) -> Interpretation:
    return line.event("account_locked", m["user"])


def _faillock_unknown(line: _Line, m: re.Match[str]) -> Interpretation | None:
    if line.module != "pam_faillock":
        return None
    return line.event("invalid_user", m["user"] or "")


def _tally(line: _Line, m: re.Match[str]) -> Interpretation:
    tally, deny = int(m["tally"]), int(m["deny"])
    if tally >= deny > 0:
        return line.event("account_locked", m["user"], tally=tally, deny=deny)
    return no_event(f"{line.module}: tally below the limit")


def _padl_bind(line: _Line, m: re.Match[str]) -> Interpretation:
    if m["why"] != "Invalid credentials":
        return no_event(f"{line.module}: bind error {m['why']!r} is not an authentication failure")
    uid = re.search(r"(?:^|,)uid=([^,]+)", m["dn"])
    return line.event("pam_auth_failure", uid[1] if uid else m["dn"], reason=m["why"])


def _nslcd(line: _Line, m: re.Match[str]) -> Interpretation | None:
    if line.module != "pam_ldap":
        return None
    why = m["why"]
    if why == "Authentication failure":
        return line.event("pam_auth_failure", m["user"], reason=why)
    if why == "User not known to the underlying authentication module":
        return line.event("invalid_user", m["user"], reason=why)
    return no_event(f"{line.module}: {why!r} is not an authentication failure")


_PAM_AUTH_ERR = 7  # Linux-PAM's PAM_AUTH_ERR, as pam_sss prints it
_PAM_USER_UNKNOWN = 10
_HANDLERS: tuple[tuple[re.Pattern[str], Callable[[_Line, re.Match[str]], Interpretation | None]], ...] = (
    (_PAM_FAILURE, _failure),
    (_PAM_MORE, _more),
    (_SSS_RECEIVED, _sss_received),
    (_SSS_DENIED, _sss_denied),
    (_FAILLOCK, _faillock),
    (_FAILLOCK_UNKNOWN, _faillock_unknown),
    (_TALLY, _tally),
    (_PADL_BIND, _padl_bind),
    (_NSLCD, _nslcd),
)


def _pam_failure(module: str, service: str, kv_text: str, more: int | None) -> Interpretation:
    kv = parse_pam_kv(kv_text)
    rhost = kv.get("rhost", "")
    tty = kv.get("tty", "").removeprefix("/dev/")
    source = normalise_source(rhost) if rhost else tty
    user = kv.get("user", "") or kv.get("ruser", "")
    event = _pam_event(
        "pam_auth_failure", module, service, user, source, logname=kv.get("logname", ""), repeats=more
    )
    return Interpretation([event])
