"""sshd's authentication lines (OpenSSH up to 10.x: sshd, sshd-session, sshd-auth).

Formats from openssh-portable V_9_9_P1 / V_10_0_P1: auth.c:296 `%s %s%s%s for %s%.100s from
%.200s port %d ssh2%s%s` (Accepted/Failed/Postponed/Partial, info only for key methods),
auth.c:497 `Invalid user %.100s from %.100s port %d` (no port before 7.5), auth.c:337 `maximum
authentication attempts exceeded for ...`, auth.c:111-207 `User %.100s [from %.100s] not allowed
because ...`, auth.c:369 `ROOT LOGIN REFUSED FROM %.200s port %d`, auth-pam.c:939 `PAM: %s for
%s%.100s from %.100s`, packet.c:1996/2003/2076 `Connection closed by` / `Disconnected from` /
`Disconnecting` with the auth2.c:311 preamble `[authenticating |invalid ]user U ADDR port N`.

A user name and a hostbased client's info are the client's text: the source is the endpoint
where sshd writes it, and a line with more than one look-alike is also a `log_forgery`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sentinel.core.model import Scalar
from sentinel.sources.parsers.authevent import (
    AuthEvent,
    Interpretation,
    forgery,
    ip_address_of,
    no_event,
    normalise_source,
)

_VERB = re.compile(
    r"^(?P<verb>Failed|Accepted|Postponed|Partial) (?P<method>\S+) for "
    r"(?P<invalid>(?:invalid|illegal) user )?(?P<rest>.*)$",
    re.DOTALL,
)
# " from ADDR[ port N][ sshN]" as auth.c:296 writes it; what follows is "", " [preauth]" or ": info"
_ENDPOINT = re.compile(r" from (?P<addr>[^\s]+)(?: port (?P<port>\d+))?(?: (?P<proto>ssh[12]))?")
_TAIL_OK = re.compile(r"^(?:| \[preauth\]|: .*)$", re.DOTALL)
_KEY_INFO = re.compile(r"^: (?:[A-Z0-9-]+(?:-CERT)?(?:@openssh\.com)?) \S+")
_NO_INFO_METHODS = ("password", "keyboard-interactive", "none", "unknown", "gssapi", "challenge-response")
_INVALID_LINE = re.compile(r"^(?:Invalid|Illegal) user (?P<rest>.*)$", re.DOTALL)
_INVALID_TAIL = re.compile(r" from (?P<addr>\S+)(?: port (?P<port>\d+))?(?: \[preauth\])?$")
_USERAUTH_REQUEST = re.compile(
    r"^input_userauth_request: (?:invalid|illegal) user (?P<user>.*?)(?: \[preauth\])?$"
)
_MAXTRIES = re.compile(
    r"^error: maximum authentication attempts exceeded for (?P<invalid>invalid user )?(?P<rest>.*)$",
    re.DOTALL,
)
_TOO_MANY_OLD = re.compile(
    r"^Disconnecting: Too many authentication failures(?: for (?P<user>.*?))?(?: \[preauth\])?$"
)
# the packet.c connection id: "[authenticating |invalid ]user U ADDR port N" (auth2.c:311 preamble)
_PREAMBLE = re.compile(
    r"^(?P<what>Connection closed by|Disconnected from|Connection reset by|Disconnecting|"
    r"Timeout before authentication for) (?P<role>authenticating |invalid )?user "
    r"(?P<body>.*?)(?: \[preauth\])?$",
    re.DOTALL,
)
_CONN_ID = re.compile(r" (?P<addr>\S+) port (?P<port>\d+)")
_NOT_ALLOWED = re.compile(r"^User (?P<rest>.*) not allowed because (?P<why>.*)$", re.DOTALL)
_ROOT_REFUSED = re.compile(
    r"^ROOT LOGIN REFUSED FROM (?P<addr>\S+)(?: port (?P<port>\d+))?(?: \[preauth\])?$"
)
_PAM_ERROR = re.compile(
    r"^error: PAM: (?P<msg>.+?) for (?P<illegal>illegal user )?(?P<user>.*) from (?P<host>\S+)"
    r"(?: via (?P<via>\S+))? ?$",
    re.DOTALL,
)
_PAM_FAILURE_MESSAGES = {
    "authentication failure": "pam_auth_failure",
    "authentication error": "pam_auth_failure",
    "user not known to the underlying authentication module": "pam_auth_failure",
    "unknown user": "pam_auth_failure",
}


def _sshd_fields(user: str, source: str, **extra: Scalar) -> dict[str, Scalar]:
    fields: dict[str, Scalar] = {"source": source, "user": user, "service": "sshd"}
    fields.update({k: v for k, v in extra.items() if v is not None})
    return fields


def _pick_endpoint(rest: str, method: str) -> tuple[int, re.Match[str], bool] | None:
    """The endpoint auth.c:296 wrote into `rest` ("<user> from A port P ssh2[: info]").

    A user name and a hostbased client's info are the client's text and may contain look-alike
    endpoints. The real one is followed by the end, " [preauth]" or ": info"; for methods that
    log no info, by the end; for key methods, by ": KEYTYPE fingerprint". The third value says
    whether more than one look-alike with an address and port was present (a forged line).
    """
    candidates = [m for m in _ENDPOINT.finditer(rest) if _TAIL_OK.match(rest[m.end() :])]
    if not candidates:
        return None
    literal = [m for m in candidates if ip_address_of(m["addr"]) is not None]
    pool = literal or candidates
    with_port = sum(1 for m in _ENDPOINT.finditer(rest) if m["port"] and ip_address_of(m["addr"]) is not None)
    chosen = pool[0]
    if len(pool) > 1:
        if method.startswith(_NO_INFO_METHODS):
            ends = [m for m in pool if rest[m.end() :] in ("", " [preauth]")]
            chosen = ends[-1] if ends else pool[-1]
        else:
            keyed = [m for m in pool if _KEY_INFO.match(rest[m.end() :])]
            chosen = keyed[0] if keyed else pool[0]
    return chosen.start(), chosen, with_port > 1


def sshd_meaning(message: str) -> Interpretation:
    """The meaning of one sshd message (sshd, sshd-session, sshd-auth)."""
    for pattern, handler in _HANDLERS:
        match = pattern.match(message)
        if match:
            return handler(match)
    return no_event("sshd: message is not an authentication fact")


def _invalid_line(match: re.Match[str]) -> Interpretation:
    rest = match["rest"]
    tail = _INVALID_TAIL.search(rest)  # nothing follows the address: the first fit from the left
    if tail is None:
        return no_event("sshd: 'Invalid user' without a source")
    source = normalise_source(tail["addr"])
    port = int(tail["port"]) if tail["port"] else None
    fields = _sshd_fields(rest[: tail.start()], source, port=port)
    return Interpretation([AuthEvent("invalid_user", source, fields)])


def _userauth_request(match: re.Match[str]) -> Interpretation:
    return Interpretation([AuthEvent("invalid_user", "", _sshd_fields(match["user"], ""))])


def _maxtries(match: re.Match[str]) -> Interpretation:
    picked = _pick_endpoint(match["rest"], "password")
    if picked is None:
        return no_event("sshd: maximum attempts without a source")
    start, endpoint, forged = picked
    source = normalise_source(endpoint["addr"])
    fields = _sshd_fields(
        match["rest"][:start],
        source,
        port=int(endpoint["port"]) if endpoint["port"] else None,
        invalid_user=bool(match["invalid"]),
    )
    events = [AuthEvent("max_auth_attempts", source, fields)]
    if forged:
        events.append(forgery("several 'from ADDR port N' in one sshd line", source, match["rest"]))
    return Interpretation(events)


def _too_many_old(match: re.Match[str]) -> Interpretation:
    return Interpretation([AuthEvent("max_auth_attempts", "", _sshd_fields(match["user"] or "", ""))])


def _not_allowed(match: re.Match[str]) -> Interpretation:
    rest, why = match["rest"], match["why"]
    user, sep, host = rest.rpartition(" from ")
    if not sep:
        user, host = rest, ""
    source = normalise_source(host) if host else ""
    return Interpretation([AuthEvent("denied_user", source, _sshd_fields(user, source, reason=why.rstrip()))])


def _root_refused(match: re.Match[str]) -> Interpretation:
    source = normalise_source(match["addr"])
    port = int(match["port"]) if match["port"] else None
    fields = _sshd_fields("root", source, port=port, reason="PermitRootLogin")
    return Interpretation([AuthEvent("denied_user", source, fields)])


def _pam_error(match: re.Match[str]) -> Interpretation:
    kind = _PAM_FAILURE_MESSAGES.get(match["msg"].lower())
    if kind is None:
        return no_event(f"sshd: PAM error {match['msg']!r} is not an authentication failure")
    source = normalise_source(match["host"])
    invalid = bool(match["illegal"]) or None
    fields = _sshd_fields(match["user"], source, reason=match["msg"], invalid_user=invalid)
    return Interpretation([AuthEvent(kind, source or match["user"], fields)])


def _sshd_verb(match: re.Match[str]) -> Interpretation:
    verb, method, rest = match["verb"], match["method"], match["rest"]
    invalid = bool(match["invalid"])
    picked = _pick_endpoint(rest, method)
    if picked is None:
        return no_event(f"sshd: {verb} line without a source")
    start, endpoint, forged = picked
    user = rest[:start]
    source = normalise_source(endpoint["addr"])
    port = int(endpoint["port"]) if endpoint["port"] else None
    fields = _sshd_fields(user, source, method=method, port=port)
    events: list[AuthEvent] = []
    note = ""
    if verb == "Failed":
        fields["invalid_user"] = invalid
        events.append(AuthEvent("login_failed", source, fields))
    elif verb == "Accepted":
        events.append(AuthEvent("login_accepted", f"{user}@{source}", fields))
        if user == "root":
            events.append(AuthEvent("root_login", source, fields))
    elif verb == "Postponed" and invalid:
        events.append(AuthEvent("invalid_user", source, fields))
    else:
        note = f"sshd: {verb.lower()} authentication step, not a result"
    if forged:
        events.append(forgery("several 'from ADDR port N' in one sshd line", source, rest))
        note = f"source {source} is the endpoint where sshd writes it; the line holds look-alikes"
    return Interpretation(events, note)


def _sshd_preamble(match: re.Match[str]) -> Interpretation:
    what, role, body = match["what"], match["role"], match["body"]
    # "U ADDR port N" (logdie in packet.c: nothing follows) or "U ADDR port N: reason"
    # (Disconnecting); the user is the client's text, and so is a new name in a reason
    if what == "Disconnecting":
        fits = [m for m in _CONN_ID.finditer(body) if body.startswith(": ", m.end())]
        real = fits[0] if fits else None
    else:
        fits = [m for m in _CONN_ID.finditer(body) if m.end() == len(body)]
        real = fits[-1] if fits else None
    if real is None:
        return no_event(f"sshd: {what.lower()} line without a source")
    reason = body[real.end() + 2 :]
    source = normalise_source(real["addr"])
    fields = _sshd_fields(body[: real.start()], source, port=int(real["port"]))
    events: list[AuthEvent] = []
    if "Too many authentication failures" in reason:
        events.append(AuthEvent("max_auth_attempts", source, fields))
    elif role == "invalid ":
        if reason:
            fields["reason"] = reason
        events.append(AuthEvent("invalid_user", source, fields))
    else:
        return no_event(f"sshd: {what.lower()} a connection that had not authenticated")
    if sum(1 for m in _CONN_ID.finditer(body) if ip_address_of(m["addr"]) is not None) > 1:
        events.append(forgery("several 'ADDR port N' in one sshd line", source, body))
    return Interpretation(events)


_HANDLERS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], Interpretation]], ...] = (
    (_VERB, _sshd_verb),
    (_INVALID_LINE, _invalid_line),
    (_USERAUTH_REQUEST, _userauth_request),
    (_MAXTRIES, _maxtries),
    (_TOO_MANY_OLD, _too_many_old),
    (_PREAMBLE, _sshd_preamble),
    (_NOT_ALLOWED, _not_allowed),
    (_ROOT_REFUSED, _root_refused),
    (_PAM_ERROR, _pam_error),
)
