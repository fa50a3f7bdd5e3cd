"""Changes between a reference and what is on disk now, as Events the rule engine understands.

Event kinds (detector `fim`): created, deleted, modified, attributes, renamed, replaced,
truncated; plus baseline_tampered, watch_limit and mass_modification from the collector. Every
per-path event carries `policy` (the rules decide on it), what `changed`, the `old` and `new`
attributes and hashes (evidence), and `how` it was found (realtime or a rescan and why).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from sentinel.core.model import Event, Scalar, clean_text, freeze_fields
from sentinel.sources.integrity.config import MassModificationConfig
from sentinel.sources.integrity.entry import Entry, judge
from sentinel.sources.integrity.scanner import WatchSet
from sentinel.sources.integrity.table import EntryTable

DETECTOR = "fim"
PATH_KINDS = ("created", "deleted", "modified", "attributes", "renamed", "replaced", "truncated")


@dataclass(frozen=True, slots=True)
class Change:
    """One path's change, judged under its policy."""

    path: str
    kind: str
    policy: str
    old: Entry | None
    new: Entry | None
    changed: tuple[str, ...] = ()
    to: str = ""  # renamed: where it went

    def event(
        self,
        now: float,
        *,
        how: str,
        checks: frozenset[str] | None,
        burst: bool = False,
        package: Mapping[str, Scalar] | None = None,
    ) -> Event:
        """The Event for this change, with old/new attributes as evidence (and, when the software
        inventory had something to say, `package`, `package_check`, `operation`, `attributed`)."""
        fields: dict[str, Scalar] = {"policy": self.policy, "changed": ",".join(self.changed)}
        fields |= package or {}
        if self.old is not None:
            fields["old"] = self.old.describe(checks)
        if self.new is not None:
            fields["new"] = self.new.describe(checks)
        if self.to:
            fields["to"] = clean_text(self.to)
        fields["how"] = how
        if burst:
            fields["burst"] = "yes"  # part of a mass modification: the rules ticket the burst once
        return Event(DETECTOR, self.kind, clean_text(self.path), now, freeze_fields(fields))


def compare(
    watchset: WatchSet,
    reference: Mapping[str, Entry],
    current: Mapping[str, Entry],
    in_scope: Callable[[str], bool],
    skip: Callable[[str], bool] = lambda _p: False,
) -> list[Change]:
    """Every change between `reference` and `current` for paths `in_scope` and not `skip`ped.

    A deletion and a creation of the same inode with the same content are one rename.
    """
    out: list[Change] = []
    created: list[Change] = []
    deleted: list[Change] = []
    for path, old, new in _differing(reference, current):
        if skip(path):
            continue
        watch = watchset.resolve(path)
        if watch is None:
            continue
        if old is None:
            created.append(Change(path, "created", watch.policy, None, new))
            continue
        verdict = judge(old, new, watch.checks, watch.policy)
        if verdict is not None:
            out.append(Change(path, verdict[0], watch.policy, old, new, tuple(verdict[1])))
    for path in reference:
        if path in current or not in_scope(path) or skip(path):
            continue
        watch = watchset.resolve(path)
        policy = watch.policy if watch is not None else "readonly"
        deleted.append(Change(path, "deleted", policy, reference[path], None))
    out += _pair_renames(created, deleted)
    return out


def _differing(
    reference: Mapping[str, Entry], current: Mapping[str, Entry]
) -> Iterator[tuple[str, Entry | None, Entry]]:
    """(path, old, new) for each path of `current` whose entry is not the reference's.

    Nearly every path is unchanged; between two packed tables that is a bytes comparison, and
    only the paths that differ are unpacked.
    """
    if isinstance(reference, EntryTable) and isinstance(current, EntryTable):
        for path in current:
            if not current.same(path, reference):
                yield path, reference.get(path), current[path]
        return
    for path, new in current.items():
        old = reference.get(path)
        if old != new:
            yield path, old, new


def _pair_renames(created: list[Change], deleted: list[Change]) -> list[Change]:
    def identity(entry: Entry | None) -> tuple[object, ...]:
        assert entry is not None
        return (entry.inode, entry.type, entry.size, entry.sha256)

    gone = {identity(c.old): c for c in deleted}
    out: list[Change] = []
    for c in created:
        match = gone.pop(identity(c.new), None)
        if match is None:
            out.append(c)
        else:
            out.append(Change(match.path, "renamed", match.policy, match.old, c.new, ("path",), to=c.path))
    out += gone.values()
    return out


class MassDetector:
    """Counts changes under data/readonly paths; a burst past a threshold is ONE episode.

    An episode starts when `renames` renames fall within `rename_window` or `changes` changes
    within `change_window`; it emits one `mass_modification` event (phase "started") with the
    counts and sample paths, and one more (phase "ended", the totals) after `cooldown` quiet.
    Both land on the same hazard (same rule and subject). While an episode lasts, per-path events
    carry `burst = "yes"` so the per-path rules stay quiet: one root cause, one hazard.
    """

    SUBJECT = "mass-modification"

    def __init__(self, config: MassModificationConfig) -> None:
        self.config = config
        self._renames: deque[float] = deque()
        self._changes: deque[float] = deque()
        self.active = False
        self._last_activity = 0.0
        self._totals: dict[str, int] = {}
        self._samples: list[str] = []
        self.episodes = 0

    def observe(self, changes: Iterable[Change], now: float) -> Event | None:
        """Count changes seen at `now`; return the episode's start event when one begins."""
        cfg = self.config
        counted = [c for c in changes if c.policy in cfg.policies]
        if not cfg.enabled or not counted:
            return None
        for c in counted:
            self._changes.append(now)
            if c.kind == "renamed":
                self._renames.append(now)
            if self.active:
                self._note(c)
        while self._changes and self._changes[0] < now - cfg.change_window:
            self._changes.popleft()
        while self._renames and self._renames[0] < now - cfg.rename_window:
            self._renames.popleft()
        if self.active:
            self._last_activity = now
            return None
        if len(self._renames) < cfg.renames and len(self._changes) < cfg.changes:
            return None
        self.active, self.episodes, self._last_activity = True, self.episodes + 1, now
        self._totals, self._samples = {}, []
        for c in counted:
            self._note(c)
        trigger = "renames" if len(self._renames) >= cfg.renames else "changes"
        return self._event(now, "started", trigger)

    def tick(self, now: float) -> Event | None:
        """End an episode after `cooldown` without changes; return its closing event."""
        if not self.active or now - self._last_activity < self.config.cooldown:
            return None
        self.active = False
        self._changes.clear()
        self._renames.clear()
        return self._event(now, "ended", "")

    def _note(self, change: Change) -> None:
        self._totals[change.kind] = self._totals.get(change.kind, 0) + 1
        if len(self._samples) < self.config.sample_paths:
            self._samples.append(clean_text(change.path))

    def _event(self, now: float, phase: str, trigger: str) -> Event:
        total = sum(self._totals.values())
        fields: dict[str, Scalar] = {
            "phase": phase,
            "changes": total,
            "renames": self._totals.get("renamed", 0),
            "deletions": self._totals.get("deleted", 0),
            "modifications": self._totals.get("modified", 0) + self._totals.get("replaced", 0),
            "creations": self._totals.get("created", 0),
            "sample_paths": " ".join(self._samples),
        }
        if trigger:
            fields["trigger"] = trigger
        return Event(DETECTOR, "mass_modification", self.SUBJECT, now, freeze_fields(fields))
