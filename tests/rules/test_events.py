"""Event rules: count in window, grouping, mute."""

from __future__ import annotations

from typing import Any

from sentinel.core.model import Category, Event, Severity, freeze_fields
from sentinel.core.settings import Duration
from sentinel.rules.config import RuleConfig
from sentinel.rules.engine import RuleEngine
from sentinel.rules.events import MAX_GROUPS, EventRule
from sentinel.testing import FakeClock


def rule(**overrides: Any) -> RuleConfig:
    base: dict[str, Any] = {
        "name": "ssh_bruteforce",
        "category": Category.CYBER_ATTACK,
        "event": "auth.login_failed",
        "count": 8,
        "window": Duration(120),
        "group_by": ("source",),
        "mute": Duration(60),
        "severity": Severity.MAJOR,
        "title": "{count} failed logins from {source}",
    }
    base.update(overrides)
    return RuleConfig(**base)


def failure(t: float, source: str = "203.0.113.9", user: str = "root") -> Event:
    return Event("auth", "login_failed", source, t, freeze_fields({"source": source, "user": user}))


def test_eight_failures_in_two_minutes_fire_once() -> None:
    """Wazuh 5720: 8 failures from one source within 120 s is one finding."""
    r = EventRule(rule())
    findings = [f for t in range(8) if (f := r.observe(failure(1000 + t * 10)))]
    assert len(findings) == 1
    assert findings[0].subject == "203.0.113.9"
    assert findings[0].title == "8 failed logins from 203.0.113.9"
    assert findings[0].evidence_map["count"] == 8


def test_failures_spread_over_hours_never_fire() -> None:
    """The same eight failures one hour apart stay below the rate."""
    r = EventRule(rule())
    assert not [f for t in range(50) if (f := r.observe(failure(1000 + t * 3600)))]


def test_groups_are_counted_separately() -> None:
    """Four failures each from two sources fire nothing."""
    r = EventRule(rule())
    events = [failure(1000 + i, source=f"198.51.100.{i % 2}") for i in range(8)]
    assert not [f for e in events if (f := r.observe(e))]


def test_mute_suppresses_refiring() -> None:
    """During mute a continuing burst adds nothing; after mute it fires again."""
    r = EventRule(rule())
    fired = [f for t in range(40) if (f := r.observe(failure(1000 + t)))]
    assert len(fired) == 1  # 40 failures in 40 s: one finding, then muted for 60 s
    fired = [f for t in range(70, 80) if (f := r.observe(failure(1000 + t)))]
    assert len(fired) == 1


def test_matchers_on_fields() -> None:
    """where = {user = "!~(backup|monitor)"} ignores service accounts."""
    r = EventRule(rule(count=1, window=Duration(0), where={"user": "!~(backup|monitor)"}))
    assert r.observe(failure(1, user="backup")) is None
    assert r.observe(failure(2, user="alice")) is not None


def test_idle_groups_expire() -> None:
    """A group idle by event time and by arrival for longer than window and mute is forgotten."""
    r = EventRule(rule())
    r.observe(failure(1000), arrival=0.0)
    r.observe(failure(1000 + 121, source="198.51.100.1"), arrival=121.0)
    r.expire(now=121.5)
    assert list(r._groups) == [("198.51.100.1",)]


def test_a_lagging_burst_is_not_expired_between_its_events() -> None:
    """8 failures 5 s apart stamped an hour behind, housekeeping between them: it still fires."""
    r = EventRule(rule())
    behind = 1_800_000_000 - 3600
    findings = []
    for i in range(8):
        findings += [f for f in [r.observe(failure(behind + 5 * i), arrival=float(5 * i))] if f]
        r.expire(now=5.0 * i + 1)  # the writer's housekeeping, every few seconds
    assert len(findings) == 1


def test_current_events_elsewhere_do_not_expire_a_lagging_burst() -> None:
    """Another source's current events move event time on; the lagging group still arrives."""
    r = EventRule(rule())
    behind, now = 1_800_000_000 - 3600, 1_800_000_000
    findings = []
    for i in range(8):
        r.observe(failure(now + i, source="192.0.2.50"), arrival=float(5 * i))
        findings += [f for f in [r.observe(failure(behind + 5 * i), arrival=float(5 * i))] if f]
        r.expire(now=5.0 * i + 1)
    assert [f.subject for f in findings] == ["203.0.113.9"]


def test_groups_stay_bounded() -> None:
    """However groups arrive, at most MAX_GROUPS are tracked (the oldest are evicted, counted)."""
    r = EventRule(rule())
    for i in range(MAX_GROUPS + 5):
        r.observe(failure(1000.0, source=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"), arrival=0.0)
    assert len(r._groups) == MAX_GROUPS and r.evicted == 5


def test_the_engine_expires_by_event_time_not_the_wall_clock() -> None:
    """The issue's case: 8 failures 5 s apart stamped -1 h, housekeeping every 5 s: one finding."""
    clock = FakeClock()  # wall clock 1_800_000_000
    engine = RuleEngine([rule()], clock=clock)
    behind = clock.time() - 3600
    findings = []
    for i in range(8):
        findings += engine.on_event(failure(behind + 5 * i))
        clock.advance(5)
        engine.housekeeping()
    assert len(findings) == 1
