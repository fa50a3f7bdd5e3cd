"""Event rules: count in window, grouping, mute."""

from __future__ import annotations

from typing import Any

from sentinel.core.model import Category, Event, Severity, freeze_fields
from sentinel.core.settings import Duration
from sentinel.rules.config import RuleConfig
from sentinel.rules.events import EventRule


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
    """Groups older than window and mute are forgotten."""
    r = EventRule(rule())
    r.observe(failure(1000))
    r.expire(now=1000 + 121)
    assert not r._groups
