"""`relative_to`: levels as offsets from each series' own reference metric (sensor marks)."""

from __future__ import annotations

from typing import Any

import pytest

from sentinel.core.model import Category, Finding, Sample, Severity
from sentinel.core.settings import Duration
from sentinel.rules.config import RuleConfig
from sentinel.rules.engine import RuleEngine
from sentinel.rules.threshold import ThresholdRule
from sentinel.testing import FakeClock

TEMP, HIGH, CRIT = (
    "sentinel_temperature_celsius",
    "sentinel_temperature_high_celsius",
    "sentinel_temperature_critical_celsius",
)


def rule(**overrides: Any) -> RuleConfig:
    base: dict[str, Any] = {
        "name": "temperature_high",
        "category": Category.TERMINAL_EQUIPMENT,
        "metric": TEMP,
        "relative_to": {"major": HIGH, "critical": CRIT},
        "levels": {"major": 0, "critical": -3},
        "clear": -5,
        "subject": "{sensor}",
        "title": "{sensor} at {value:.0f} (mark {threshold:.0f})",
    }
    base.update(overrides)
    return RuleConfig(**base)


def batch(
    temp: float, sensor: str = "cpu", high: float | None = 80, crit: float | None = 100
) -> dict[str, list[Sample]]:
    out = {TEMP: [Sample.of(TEMP, temp, sensor=sensor)], HIGH: [], CRIT: []}
    if high is not None:
        out[HIGH].append(Sample.of(HIGH, high, sensor=sensor))
    if crit is not None:
        out[CRIT].append(Sample.of(CRIT, crit, sensor=sensor))
    return out


def feed(r: ThresholdRule, clock: FakeClock, temps: list[float], **marks: Any) -> list[Finding]:
    out: list[Finding] = []
    for t in temps:
        b = batch(t, **marks)
        out += r.evaluate(b[TEMP], b)
        clock.advance(10)
    return out


def test_each_sensor_is_judged_against_its_own_marks(clock: FakeClock) -> None:
    """85 °C is hot for a chip marked 80 °C and fine for one marked 90 °C."""
    r = ThresholdRule(rule(), clock=clock)
    hot = batch(85, sensor="a", high=80)
    cool = batch(85, sensor="b", high=90)
    samples = hot[TEMP] + cool[TEMP]
    others = {TEMP: samples, HIGH: hot[HIGH] + cool[HIGH], CRIT: hot[CRIT] + cool[CRIT]}
    (finding,) = r.evaluate(samples, others)
    assert (finding.subject, finding.severity, finding.title) == ("a", Severity.MAJOR, "a at 85 (mark 80)")


def test_escalates_near_the_critical_mark_and_back(clock: FakeClock) -> None:
    """major at the high mark, critical 3 °C below critical, back to major with hysteresis."""
    r = ThresholdRule(rule(), clock=clock)
    findings = feed(r, clock, [81, 98, 96, 90])  # 96 stays critical: within the 5 °C gap
    assert [(f.state, f.severity) for f in findings] == [
        ("firing", Severity.MAJOR),
        ("firing", Severity.CRITICAL),
        ("firing", Severity.MAJOR),
    ]
    assert findings[1].evidence_map["threshold"] == 97


def test_hovering_at_the_mark_is_one_hazard(clock: FakeClock) -> None:
    """79.5/80.5 around an 80 °C mark with clear 5 °C below: one firing, then cleared at 74."""
    r = ThresholdRule(rule(), clock=clock)
    findings = feed(r, clock, [80.5, 79.5] * 20 + [74])
    assert [f.state for f in findings] == ["firing", "cleared"]


def test_a_sensor_without_marks_is_never_judged(clock: FakeClock) -> None:
    """No reference: no level, no hazard, however hot."""
    r = ThresholdRule(rule(), clock=clock)
    assert feed(r, clock, [150, 150], high=None, crit=None) == []


def test_only_the_marks_a_sensor_has_are_used(clock: FakeClock) -> None:
    """A sensor with only a critical mark goes straight to critical near it."""
    r = ThresholdRule(rule(), clock=clock)
    (finding,) = feed(r, clock, [98], high=None)
    assert finding.severity is Severity.CRITICAL


def test_marks_disappearing_clear_the_hazard(clock: FakeClock) -> None:
    """A firing sensor whose marks vanish counts as absent and clears."""
    r = ThresholdRule(rule(), clock=clock)
    feed(r, clock, [85])
    assert [f.state for f in feed(r, clock, [85], high=None, crit=None)] == ["cleared"]


def test_engine_passes_the_whole_batch(clock: FakeClock) -> None:
    """Through the rule engine, with `for`, references come from the same collector batch."""
    engine = RuleEngine([rule(for_=Duration(20))], clock=clock)
    b = batch(85)
    samples = [s for group in b.values() for s in group]
    declared = {TEMP, HIGH, CRIT}
    assert engine.on_batch(declared, samples) == []
    clock.advance(20)
    (finding,) = engine.on_batch(declared, samples)
    assert finding.severity is Severity.MAJOR


def test_judge_for_inspections(clock: FakeClock) -> None:
    """judge() uses the series' references too."""
    r = ThresholdRule(rule(), clock=clock)
    b = batch(98)
    assert r.judge(98, b[TEMP][0].labels, b) is Severity.CRITICAL
    assert r.judge(98, b[TEMP][0].labels) is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"relative_to": {"major": HIGH}}, "one reference metric for each severity level"),
        ({"relative_to": {"major": HIGH, "critical": CRIT, "minor": CRIT}}, "one reference metric"),
        ({"predict": Duration(3600), "window": Duration(600)}, 'cannot be combined with "predict"'),
    ],
)
def test_config_validation(overrides: dict[str, Any], message: str) -> None:
    """A reference per level, and no predict."""
    problems = rule(**overrides).validate()
    assert any(message in text for _, text in problems), problems
