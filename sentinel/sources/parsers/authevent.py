"""What the auth parsers produce: events and interpretations, and the helpers they share."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from sentinel.core.model import Scalar

SSHD_PROGRAMS = frozenset({"sshd", "sshd-session", "sshd-auth"})
FAMILY = {"sshd-session": "sshd", "sshd-auth": "sshd", "sudoedit": "sudo"}
OLD_PAM_PROGRAM = re.compile(r"^(?P<svc>[^()]+)\((?P<mod>pam_[\w-]+)\)$")
"""Linux-PAM < 0.99 wrote the module into the program tag: `sshd(pam_unix)[pid]:`."""


@dataclass(frozen=True, slots=True)
class AuthEvent:
    """What one record means: `kind` (login_failed, ...), the subject rules group on, fields."""

    kind: str
    subject: str
    fields: dict[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Interpretation:
    """The events of one record, and a note saying why there are none (or what was odd)."""

    events: list[AuthEvent]
    note: str = ""


def no_event(note: str) -> Interpretation:
    """No event, and why."""
    return Interpretation([], note)


def forgery(reason: str, subject: str, text: str) -> AuthEvent:
    """A `log_forgery` event: a line built to mislead a parser."""
    return AuthEvent("log_forgery", subject, {"reason": reason, "message": text[:512]})


def family(program: str) -> str:
    """The program a tag belongs to (sshd-session and sshd-auth are sshd; `sshd(pam_unix)` too)."""
    old = OLD_PAM_PROGRAM.match(program)
    if old:
        program = old["svc"]
    return FAMILY.get(program, program)


def ip_address_of(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `text` spells (brackets allowed), or None."""
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def normalise_source(text: str) -> str:
    """An address in its canonical form (IPv4-mapped IPv6 as IPv4); anything else unchanged."""
    address = ip_address_of(text)
    if address is None:
        return text
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)
