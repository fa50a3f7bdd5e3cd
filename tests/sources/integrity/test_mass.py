"""The mass-modification detector: the peers' thresholds, one episode, counted by policy."""

from __future__ import annotations

from sentinel.sources.integrity.changes import Change, MassDetector
from sentinel.sources.integrity.config import MassModificationConfig
from sentinel.sources.integrity.entry import Entry

FILE = Entry("file", 0o644, 0, 0, 1, 1, 1, 1, 1, None, "a" * 64, None)


def renamed(i: int, policy: str = "data") -> Change:
    return Change(f"/docs/f{i}.doc", "renamed", policy, FILE, FILE, ("path",), to=f"/docs/f{i}.locked")


def test_renames_within_the_window_start_one_episode_and_quiet_ends_it() -> None:
    """24 renames in a second: nothing; the 25th starts the episode (trigger renames); more renames
    add to it without a second start; `cooldown` of quiet ends it with the totals."""
    mass = MassDetector(MassModificationConfig())
    assert all(mass.observe([renamed(i)], 100 + i * 0.03) is None for i in range(24))
    started = mass.observe([renamed(24)], 100.75)
    assert started is not None and started.kind == "mass_modification"
    assert (started.get("phase"), started.get("trigger")) == ("started", "renames")
    assert mass.observe([renamed(i) for i in range(25, 40)], 101.0) is None
    assert mass.tick(101.0 + 59) is None  # not yet quiet for the 60 s cooldown
    ended = mass.tick(101.0 + 60)
    assert ended is not None and ended.get("phase") == "ended"
    assert ended.get("renames") == 16 and mass.episodes == 1 and not mass.active


def test_slow_renames_and_critical_paths_never_start_one() -> None:
    """The same renames two seconds apart, or under a critical policy, are no mass modification."""
    slow = MassDetector(MassModificationConfig())
    assert all(slow.observe([renamed(i)], 100 + i * 2.0) is None for i in range(100))
    critical = MassDetector(MassModificationConfig())
    assert critical.observe([renamed(i, "critical") for i in range(100)], 100) is None
    assert slow.episodes == critical.episodes == 0
