"""What one sshd connection already said: its source, and the facts it states more than once.

sshd writes the same fact several times per connection: an unknown user appears in `Invalid
user U from A port P`, then `input_userauth_request: invalid user U`, PAM's `check pass; user
unknown`, `Postponed ... for invalid user U` and finally `Connection closed by invalid user U A
port P`. Each line is recognised (logtest shows it), but the detector emits a once-per-connection
fact once, so "5 unknown users from one source" counts users, not lines. Lines that name no
source (`Disconnecting: Too many authentication failures for root`, `input_userauth_request`) get
the one their process logged before.

A connection is known by its process (host, program family, pid) and by its endpoint (source,
port) — OpenSSH 10 splits a connection between sshd-session and sshd-auth, two pids. A later line
repeats a fact only if it does not contradict it: the same kind, and a user and a source that are
the same or not named (a process that logs other users or sources is not one connection). Memory
is bounded (oldest forgotten first) and an entry older than `ttl` seconds of event time is
ignored (pids are reused).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, replace

from sentinel.sources.parsers.authevent import AuthEvent, family
from sentinel.sources.parsers.logrecord import LogRecord

ONCE_PER_CONNECTION = frozenset({"invalid_user", "max_auth_attempts", "denied_user"})
TTL = 600.0  # LoginGraceTime is 120 s by default; a connection's preauth lines are within it
SIZE = 8192


@dataclass(frozen=True, slots=True)
class Sorted:
    """A record's events split into the ones to emit and the repeats of a connection's fact."""

    emit: list[AuthEvent]
    repeats: list[AuthEvent]


_Table = OrderedDict[Hashable, tuple[str, float]]
_Fact = tuple[str, str, float]  # user, source, event time
FACTS_PER_KEY = 8


class Connections:
    """Bounded memory of recent connections (see the module docstring)."""

    def __init__(self, *, ttl: float = TTL, size: int = SIZE) -> None:
        self.ttl = ttl
        self.size = size
        self._sources: _Table = OrderedDict()  # process -> (source, time)
        self._facts: OrderedDict[Hashable, list[_Fact]] = OrderedDict()  # (process | endpoint, kind)

    def sort(self, record: LogRecord, events: list[AuthEvent]) -> Sorted:
        """Fill missing sources from the process, and separate repeated facts."""
        proc = (record.host, family(record.program), record.pid) if record.pid is not None else None
        emit: list[AuthEvent] = []
        repeats: list[AuthEvent] = []
        for original in events:
            event = original
            source = str(event.fields.get("source", "") or "")
            if not source and proc is not None and "source" in event.fields:
                known = self._get(self._sources, proc, record.time)
                if known is not None:
                    source = known
                    fields = {**event.fields, "source": source, "source_from": "process"}
                    event = replace(event, subject=event.subject or source, fields=fields)
            if source and proc is not None:
                self._put(self._sources, proc, source, record.time)
            if event.kind not in ONCE_PER_CONNECTION:
                emit.append(event)
                continue
            keys = self._fact_keys(record, proc, event, source)
            user = str(event.fields.get("user", "") or "")
            seen = any(self._seen(key, user, source, record.time) for key in keys)
            (repeats if seen else emit).append(event)
            for key in keys:
                self._remember(key, (user, source, record.time))
        return Sorted(emit, repeats)

    @staticmethod
    def _fact_keys(record: LogRecord, proc: Hashable | None, event: AuthEvent, source: str) -> list[Hashable]:
        keys: list[Hashable] = []
        if proc is not None:
            keys.append(("proc", proc, event.kind))
        port = event.fields.get("port")
        if source and isinstance(port, int):
            keys.append(("endpoint", record.host, source, port, event.kind))
        return keys

    def _seen(self, key: Hashable, user: str, source: str, now: float) -> bool:
        """Whether a fact under `key` that this one does not contradict was stated recently."""
        for known_user, known_source, when in self._facts.get(key, ()):
            if abs(now - when) > self.ttl:
                continue
            if user and known_user and user != known_user:
                continue
            if source and known_source and source != known_source:
                continue
            return True
        return False

    def _remember(self, key: Hashable, fact: _Fact) -> None:
        facts = self._facts.setdefault(key, [])
        facts.append(fact)
        del facts[:-FACTS_PER_KEY]
        self._facts.move_to_end(key)
        while len(self._facts) > self.size:
            self._facts.popitem(last=False)

    def _get(self, table: _Table, key: Hashable, now: float) -> str | None:
        """The value under `key` unless it is older (or newer) than `ttl` of event time."""
        entry = table.get(key)
        if entry is None or abs(now - entry[1]) > self.ttl:
            return None
        return entry[0]

    def _put(self, table: _Table, key: Hashable, value: str, when: float) -> None:
        table[key] = (value, when)
        table.move_to_end(key)
        while len(table) > self.size:
            table.popitem(last=False)
