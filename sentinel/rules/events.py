"""Event rules: `count` matching events within `window`, grouped by fields, muted after firing.

Like Wazuh's `frequency`/`timeframe`/`ignore` and Sigma's `event_count` correlation: eight failed
passwords from one source within 120 s raise one finding for that source; further failures
during `mute` are counted but raise nothing new. Windows use the events' own timestamps, so a
burst replayed from a log after a restart is judged by when it happened.

Memory is bounded: at most MAX_GROUPS are tracked (the oldest are evicted and counted), and a
group is forgotten once it is idle both by event time (the rule has seen events `window`/`mute`
newer than the group's last) and by arrival (no event reached it for as long, on the monotonic
clock). Neither clock alone will do: a burst whose stamps lag the wall clock (another time zone,
a log read late) would be expired between its own events by the wall clock, and one source's
current events would expire another's lagging burst by event time.
"""

from __future__ import annotations

import fnmatch
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from sentinel.core.model import Event, Finding, Scalar, freeze_fields
from sentinel.rules.config import RuleConfig
from sentinel.rules.text import all_match, render
from sentinel.rules.windows import NO_WINDOWS, WindowLookup

MAX_GROUPS = 10_000
# an exec event: pid, ppid, uid, process, exe, argv, cmdline, parents, loginuid, seen_by, and for a
# deleted executable a package operation replaced, its operation and package
SAMPLE_FIELDS = 12
STRUCTURED = ("details", "rectification")
"""Event fields that are not evidence: `details` (a JSON object the record keeps as its `change`)
and `rectification` (one extra checklist item per line, after the rule's own)."""


@dataclass(slots=True)
class _Group:
    times: deque[float] = field(default_factory=deque)
    muted_until: float = float("-inf")
    last_seen: float = float("-inf")  # newest event time counted
    arrived: float = float("inf")  # monotonic time the last event reached it (inf: not told)


class EventRule:
    """One `[[rules]]` entry with `event = "detector.kind"` (`*` globs allowed)."""

    def __init__(self, config: RuleConfig, windows: WindowLookup = NO_WINDOWS) -> None:
        self.config = config
        self.windows = windows
        self.name = config.name
        detector, _, kind = config.event.partition(".")
        self._detector, self._kind = detector, kind or "*"
        self._groups: OrderedDict[tuple[str, ...], _Group] = OrderedDict()
        self._newest = float("-inf")  # newest event time the rule has counted
        self.evicted = 0

    def wants(self, event: Event) -> bool:
        """Whether the event is one this rule counts."""
        return (
            fnmatch.fnmatchcase(event.detector, self._detector)
            and fnmatch.fnmatchcase(event.kind, self._kind)
            and all_match(self.config.where, {k: event.get(k) for k in self.config.where})
            and self._window_matches(event)
        )

    def _window_matches(self, event: Event) -> bool:
        """`change_window = "inside"` / `"outside"`: whether an approved window covers the event."""
        wanted = self.config.change_window
        if not wanted:
            return True
        return (self.windows.at(event.time) is not None) == (wanted == "inside")

    def observe(self, event: Event, *, arrival: float | None = None) -> Finding | None:
        """Count one event; return a finding when its group reaches `count` outside `mute`.

        `arrival` is the monotonic time the event reached the engine (for expiry)."""
        if not self.wants(event):
            return None
        key = tuple(str(event.get(f, "")) for f in self.config.group_by)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
            self._evict()
        self._groups.move_to_end(key)
        group.last_seen = max(group.last_seen, event.time)
        self._newest = max(self._newest, event.time)
        if arrival is not None:
            group.arrived = arrival
        group.times.append(event.time)
        window = self.config.window
        while group.times and (
            len(group.times) > self.config.count or (window and group.times[0] < event.time - window)
        ):
            group.times.popleft()
        if len(group.times) < self.config.count or event.time < group.muted_until:
            return None
        group.muted_until = event.time + self.config.mute
        count = len(group.times)
        group.times.clear()
        return self._finding(event, key, count)

    def expire(self, now: float) -> None:
        """Forget groups idle for longer than their window and mute, by event time and by arrival.

        `now` is monotonic, the clock `arrival` was read from."""
        horizon = max(self.config.window, self.config.mute)
        stale = [
            k
            for k, g in self._groups.items()
            if g.last_seen < self._newest - horizon and g.arrived < now - horizon
        ]
        for key in stale:
            del self._groups[key]

    def _evict(self) -> None:
        while len(self._groups) > MAX_GROUPS:
            self._groups.popitem(last=False)
            self.evicted += 1

    def _finding(self, event: Event, key: tuple[str, ...], count: int) -> Finding:
        subject = " ".join(key) if key and any(key) else event.subject
        severity = self.config.severity
        assert severity is not None  # validated at load
        values = {
            **event.field_map,
            "subject": subject,
            "count": count,
            "kind": event.kind,
            "detector": event.detector,
            "rule": self.name,
        }
        window = self.windows.at(event.time) if self.config.change_window else None
        values["ticket"] = window.ticket if window is not None and window.ticket else "no ticket"
        title = render(self.config.title or f"{self.name}: {{subject}}", values)
        evidence: dict[str, Scalar] = {
            "event": f"{event.detector}.{event.kind}",
            "count": count,
            "window_seconds": self.config.window,
            "subject": event.subject,
        }
        shown = [(k, v) for k, v in event.fields if k not in STRUCTURED]
        evidence |= dict(shown[:SAMPLE_FIELDS])
        if window is not None:
            evidence |= {"change_window": window.describe(), "change_ticket": window.ticket}
        extra = [line for line in str(event.get("rectification") or "").splitlines() if line.strip()]
        return Finding(
            rule=self.name,
            subject=subject,
            state="firing",
            severity=severity,
            category=self.config.category,
            title=title,
            time=event.time,
            evidence=freeze_fields(evidence),
            rectification=(*(render(r, values) for r in self.config.rectification), *extra),
            auto_resolve=self.config.resolves_automatically,
            drill=self.config.drill or bool(event.get("drill", False)),
            deadline_seconds=self.config.deadline,
            owner=self.config.owner,
            details=str(event.get("details") or ""),
        )

    def adopt(self, previous: EventRule) -> None:
        """Keep counting windows of the same rule across a config reload."""
        if previous.config == self.config:
            self._groups = previous._groups
