"""The monitor's reference: the baseline plus the changes already reported, and how to take back
the changes of a batch the pipeline dropped.

Every change is applied to the reference only together with its event; if the pipeline drops
the batch, the reference (and the record of what was reported, `observed.fim`) is rolled back
and a rescan finds the changes again: a change can be late, never lost.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

from sentinel.sources.integrity.changes import Change
from sentinel.sources.integrity.entry import Entry
from sentinel.sources.integrity.table import EntryTable


@dataclass
class Undo:
    """How to put the reference, and the record of what was reported, back if the batch carrying
    these changes is dropped: a change rolled out of the reference but left in `observed.fim`
    would be taken as reported at the next start, and never be."""

    previous: list[tuple[str, Entry | None]] = dataclasses.field(default_factory=list)
    observed: dict[str, Entry | None] = dataclasses.field(default_factory=dict)  # first value seen
    unobserved: set[str] = dataclasses.field(default_factory=set)  # paths observed had no value for

    def remember(self, path: str, reference: EntryTable, observed: dict[str, Entry | None]) -> None:
        """Note `path`'s state before it changes (call before every change to it)."""
        self.previous.append((path, reference.get(path)))
        if path in self.observed or path in self.unobserved:
            return
        if path in observed:
            self.observed[path] = observed[path]
        else:
            self.unobserved.add(path)

    def roll_back(self, reference: EntryTable, observed: dict[str, Entry | None]) -> None:
        """Put both back as they were before the first remembered change."""
        for path, entry in reversed(self.previous):
            if entry is None:
                reference.pop(path, None)
            else:
                reference[path] = entry
        observed.update(self.observed)
        for path in self.unobserved:
            observed.pop(path, None)


class Reference:
    """What every change is judged against, what was reported since the baseline, and when each
    path was last judged in real time. `lock` guards all of it (callers hold it around reads
    and writes that must agree)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.table = EntryTable()  # the reference (compact)
        self.observed: dict[str, Entry | None] = {}  # reported since the baseline (observed.fim)
        self.stamps: dict[str, float] = {}  # path -> monotonic time it was last judged in real time
        self.adopt_roots: set[str] = set()  # roots new to the config: the next scan adopts them
        self.dirty = False  # observed changed since it was last persisted

    def apply(self, change: Change, undo: Undo) -> None:
        """Apply one change to the reference and the observed record (lock held)."""

        def put(path: str, entry: Entry | None) -> None:
            undo.remember(path, self.table, self.observed)
            if entry is None:
                self.table.pop(path, None)
            else:
                self.table[path] = entry
            self.observed[path] = entry
            self.dirty = True

        if change.kind == "renamed":
            put(change.path, None)
            put(change.to, change.new)
        else:
            put(change.path, change.new)

    def keep(self, path: str, entry: Entry) -> None:
        """Remember a state that is not a change (a touch, a log that grew) (lock held)."""
        self.table[path] = self.observed[path] = entry
        self.dirty = True

    def roll_back(self, undo: Undo) -> None:
        """Take back the changes `undo` remembers (their batch was dropped)."""
        with self.lock:
            undo.roll_back(self.table, self.observed)
            self.dirty = True
            for path, _ in undo.previous:
                self.stamps.pop(path, None)
