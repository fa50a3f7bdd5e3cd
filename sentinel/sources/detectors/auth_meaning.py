"""What an auth record means on this terminal: the parser's events, once per connection, plus
the events that need this terminal's memory. Shared by the auth detector and `sentinel logtest`
so that logtest shows exactly what the agent emits.

Memory: the recent connections (`authconn.Connections`), and per user the sources they logged in
from (`login_new_source`; bounded, persisted by the detector). Derived kinds:
`login_outside_hours` (an accepted login outside `login_hours`), `login_new_source` (a user who
logged in before, now from a source never seen for them) and `sudo_root_unlisted` /
`su_root_unlisted` (becoming root by a user not in `root_allowlist`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from sentinel.core.model import Event, Scalar, clean_text, clean_value, freeze_fields
from sentinel.core.redact import redact_field, redact_text
from sentinel.sources.parsers.authconn import Connections
from sentinel.sources.parsers.authparse import AuthEvent, interpret
from sentinel.sources.parsers.logrecord import LogRecord

NAME = "auth"
SOURCES_PER_USER = 50
USERS_REMEMBERED = 2000
_HOURS = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")


@dataclass(frozen=True, slots=True)
class Meaning:
    """The events of one record: `events` to emit, `repeats` recognised but already emitted for
    the connection, and a note (why there is no event, or what was odd)."""

    events: list[Event]
    repeats: list[Event] = field(default_factory=list)
    note: str = ""


def parse_hours(text: str) -> tuple[int, int] | None:
    """`"HH:MM-HH:MM"` as minutes of the day (start, end); None for "" (any time)."""
    match = _HOURS.match(text) if text else None
    if not match:
        return None
    return int(match[1]) * 60 + int(match[2]), int(match[3]) * 60 + int(match[4])


def within(hours: tuple[int, int], when: float) -> bool:
    """Whether local time `when` falls in [start, end) minutes of the day (may wrap midnight)."""
    local = time.localtime(when)
    minute = local.tm_hour * 60 + local.tm_min
    start, end = hours
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end


class AuthMeaning:
    """Turns records into the detector's events, remembering what it must (see module doc)."""

    def __init__(
        self,
        *,
        login_hours: str = "",
        root_allowlist: Sequence[str] = (),
        known_sources: dict[str, list[str]] | None = None,
    ) -> None:
        self._hours = parse_hours(login_hours)
        self._allowlist = frozenset(root_allowlist)
        self.known_sources: dict[str, list[str]] = known_sources if known_sources is not None else {}
        self.connections = Connections()
        self.dirty = False  # known_sources changed since the detector last saved it

    def of(self, record: LogRecord) -> Meaning:
        """The events of one record, in the order the agent emits them."""
        interpretation = interpret(record)
        sorted_ = self.connections.sort(record, interpretation.events)
        out: list[Event] = []
        for auth in sorted_.emit:
            out.append(self._event(auth, record))
            out += [self._event(extra, record) for extra in self._derived(auth, record.time)]
        repeats = [self._event(auth, record) for auth in sorted_.repeats]
        note = interpretation.note
        if repeats and not out:
            note = note or "a fact this connection already stated: counted once"
        return Meaning(out, repeats, note)

    def _derived(self, auth: AuthEvent, when: float) -> list[AuthEvent]:
        fields = auth.fields
        user, source = str(fields.get("user", "")), str(fields.get("source", ""))
        if auth.kind == "login_accepted":
            extra = []
            if self._hours and not within(self._hours, when):
                extra.append(AuthEvent("login_outside_hours", auth.subject, fields))
            if self._remember_source(user, source):
                extra.append(AuthEvent("login_new_source", auth.subject, fields))
            return extra
        becomes_root = auth.kind in ("sudo_command", "su_session") and fields.get("target_user") == "root"
        if becomes_root and user not in self._allowlist and user != "root":
            kind = "sudo_root_unlisted" if auth.kind == "sudo_command" else "su_root_unlisted"
            return [AuthEvent(kind, user, fields)]
        return []

    def _remember_source(self, user: str, source: str) -> bool:
        """Note a login source; True when the user logged in before but never from here."""
        known = self.known_sources.get(user)
        if known is None:
            self.known_sources[user] = [source]
            while len(self.known_sources) > USERS_REMEMBERED:
                self.known_sources.pop(next(iter(self.known_sources)))
            self.dirty = True
            return False
        if source in known:
            return False
        known.append(source)
        del known[:-SOURCES_PER_USER]
        self.dirty = True
        return True

    @staticmethod
    def _event(auth: AuthEvent, record: LogRecord) -> Event:
        # a sudo command line or a forged message may hold a password: masked as it is read
        fields: dict[str, Scalar] = {k: redact_field(k, clean_value(v)) for k, v in auth.fields.items()}
        fields["host"] = clean_text(record.host)
        if record.stamped_at_read:
            fields["stamped_at_read"] = True
        subject = redact_text(clean_text(auth.subject))
        return Event(NAME, auth.kind, subject, record.time, freeze_fields(fields))
