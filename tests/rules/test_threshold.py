"""Threshold rule timing with a fake clock: for, clear, keep_firing_for, flapping, severity."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sentinel.config.loader import load
from sentinel.core.model import Category, Finding, Sample, Severity
from sentinel.core.settings import Duration
from sentinel.rules.config import RuleConfig
from sentinel.rules.threshold import ThresholdRule, linear_fit
from sentinel.testing import FakeClock
from tests.support.agent import write_config


def rule(**overrides: Any) -> RuleConfig:
    base: dict[str, Any] = {
        "name": "disk",
        "category": Category.TERMINAL_EQUIPMENT,
        "metric": "used",
        "levels": {"major": 0.90, "critical": 0.97},
        "subject": "{mountpoint}",
        "title": "{mountpoint} at {value:.0%}",
        "rectification": ("clean {mountpoint}",),
    }
    base.update(overrides)
    return RuleConfig(**base)


def feed(r: ThresholdRule, clock: FakeClock, values: list[float | None], step: float = 10) -> list[Finding]:
    """One batch per value (None: the series is absent from the batch), `step` seconds apart."""
    out: list[Finding] = []
    for v in values:
        batch = [] if v is None else [Sample.of("used", v, mountpoint="/")]
        out += r.evaluate(batch)
        clock.advance(step)
    return out


def test_for_delays_firing_until_the_condition_held(clock: FakeClock) -> None:
    """With for=60s, a crossing fires only after it held for 60 s."""
    r = ThresholdRule(rule(for_=Duration(60)), clock=clock)
    assert feed(r, clock, [0.95] * 6) == []  # t = 0..50
    (finding,) = feed(r, clock, [0.95])  # t = 60
    assert finding.state == "firing" and finding.severity is Severity.MAJOR
    assert finding.subject == "/" and finding.title == "/ at 95%"
    assert finding.rectification == ("clean /",)


def test_a_dip_during_for_resets_the_timer(clock: FakeClock) -> None:
    """Pending resets when the value drops back before `for` elapsed."""
    r = ThresholdRule(rule(for_=Duration(30)), clock=clock)
    assert feed(r, clock, [0.95, 0.95, 0.5, 0.95, 0.95, 0.95]) == []
    assert [f.state for f in feed(r, clock, [0.95])] == ["firing"]


def test_oscillating_around_the_threshold_gives_one_hazard(clock: FakeClock) -> None:
    """With hysteresis, 89.9/90.1 flapping yields one firing finding and no clearing."""
    r = ThresholdRule(rule(clear=0.85), clock=clock)
    findings = feed(r, clock, [0.901, 0.899, 0.901, 0.899, 0.88, 0.901, 0.86] * 20)
    assert [f.state for f in findings] == ["firing"]
    (cleared,) = feed(r, clock, [0.84])
    assert cleared.state == "cleared"


def test_without_hysteresis_flapping_would_fire_repeatedly(clock: FakeClock) -> None:
    """The control case: no clear level, so each crossing is a new episode."""
    r = ThresholdRule(rule(), clock=clock)
    findings = feed(r, clock, [0.91, 0.89] * 3)
    assert [f.state for f in findings] == ["firing", "cleared"] * 3


def test_keep_firing_for_holds_through_short_gaps(clock: FakeClock) -> None:
    """keep_firing_for=60s: a 30 s dip does not clear; a 60 s one does."""
    r = ThresholdRule(rule(keep_firing_for=Duration(60)), clock=clock)
    assert [f.state for f in feed(r, clock, [0.95])] == ["firing"]
    assert feed(r, clock, [0.5, 0.5, 0.5, 0.95]) == []  # 30 s below, then back
    assert feed(r, clock, [0.5] * 6) == []  # t = 0..50 s below
    assert [f.state for f in feed(r, clock, [0.5])] == ["cleared"]  # 60 s below


def test_severity_escalates_and_de_escalates_on_one_series(clock: FakeClock) -> None:
    """major at 90 %, critical at 97 %, back to major: same subject, three findings."""
    r = ThresholdRule(rule(clear=0.85), clock=clock)
    findings = feed(r, clock, [0.92, 0.98, 0.98, 0.91, 0.80])
    assert [(f.state, f.severity.value) for f in findings] == [
        ("firing", "major"),
        ("firing", "critical"),
        ("firing", "major"),
        ("cleared", "major"),
    ]
    assert {f.subject for f in findings} == {"/"}


def test_de_escalation_uses_the_hysteresis_gap(clock: FakeClock) -> None:
    """Dropping just below the critical level stays critical (gap 0.05)."""
    r = ThresholdRule(rule(clear=0.85), clock=clock)
    findings = feed(r, clock, [0.98, 0.96, 0.95, 0.93, 0.91])
    assert [f.severity.value for f in findings] == ["critical", "major"]


def test_vanished_series_clears(clock: FakeClock) -> None:
    """A series missing from a complete batch counts as not crossed (interface removed)."""
    r = ThresholdRule(rule(), clock=clock)
    assert [f.state for f in feed(r, clock, [0.95, None])] == ["firing", "cleared"]


def test_for_uses_the_monotonic_clock_not_the_wall_clock(clock: FakeClock) -> None:
    """A wall-clock jump of a day neither fires nor clears a pending rule."""
    r = ThresholdRule(rule(for_=Duration(300)), clock=clock)
    feed(r, clock, [0.95])
    clock.jump_wall(86400)
    assert feed(r, clock, [0.95]) == []


def test_label_matchers_select_series(clock: FakeClock) -> None:
    """match = {mountpoint = "!~/boot.*"} skips /boot."""
    r = ThresholdRule(rule(match={"mountpoint": "!~/boot.*"}), clock=clock)
    batch = [
        Sample.of("used", 0.99, mountpoint="/boot/efi"),
        Sample.of("used", 0.5, mountpoint="/"),
    ]
    assert r.evaluate(batch) == []


def test_predict_linear_fires_before_the_disk_is_full(clock: FakeClock) -> None:
    """A disk filling 1 % a minute from 50 % is predicted full within an hour."""
    r = ThresholdRule(
        rule(
            levels={},
            threshold=1.0,
            severity=Severity.MAJOR,
            op=">=",
            predict=Duration(3600),
            window=Duration(600),
        ),
        clock=clock,
    )
    values: list[float | None] = [0.50 + 0.01 * i for i in range(12)]
    findings = feed(r, clock, values, step=60)
    assert findings and findings[0].state == "firing"
    assert max(values) < 0.7  # it fired long before the disk was actually full


def test_predict_needs_enough_history(clock: FakeClock) -> None:
    """Two points are not a trend."""
    r = ThresholdRule(
        rule(
            levels={},
            threshold=1.0,
            severity=Severity.MAJOR,
            predict=Duration(3600),
            window=Duration(600),
        ),
        clock=clock,
    )
    assert feed(r, clock, [0.5, 0.9], step=60) == []


def test_linear_fit() -> None:
    """Least squares of an exact line returns it."""
    assert linear_fit([(0, 1), (1, 3), (2, 5)]) == (2.0, 1.0)
    assert linear_fit([(1, 1), (1, 2)]) is None


def test_only_when_guards_the_fill_prediction_like_node_mixin(clock: FakeClock, tmp: Path) -> None:
    """The shipped `filesystem_fill_predicted`: a straight fall to 0 within 24 h raises nothing
    while the disk is more than 40 % free, and fires (after `for`) once it is below."""
    shutil.copytree(Path(__file__).resolve().parents[2] / "config" / "rules.d", tmp / "rules.d")
    shipped = {r.name: r for r in load(write_config(tmp)).rules}
    config = shipped["filesystem_fill_predicted"]
    assert config.guard == ("sentinel_filesystem_used_ratio", ">", 0.6)
    r = ThresholdRule(config, clock=clock)
    size = 100e9
    fired: list[tuple[float, Finding]] = []
    for minute in range(0, 12 * 60, 5):  # 12 h losing 5 GB an hour: full in 20 h from the start
        avail = size * 0.9 - 5e9 * minute / 60
        labels = {"device": "/dev/sda2", "mountpoint": "/", "fstype": "ext4"}
        batch = [
            Sample.of("sentinel_filesystem_avail_bytes", avail, **labels),
            Sample.of("sentinel_filesystem_used_ratio", 1 - avail / size, **labels),
        ]
        by_name = {s.name: [s] for s in batch}
        for finding in r.evaluate(by_name["sentinel_filesystem_avail_bytes"], by_name):
            fired.append((1 - avail / size, finding))
        clock.advance(300)
    assert fired, "the guarded prediction never fired"
    used, first = fired[0]
    assert first.state == "firing" and first.subject == "/"
    assert used > 0.6  # never while the disk was over 40 % free
