"""Rule state across a config reload: changed rules keep their series, removed rules clear."""

from __future__ import annotations

from dataclasses import replace

from sentinel.core.model import Category, Sample, Severity
from sentinel.rules.config import RuleConfig
from sentinel.rules.engine import RuleEngine
from sentinel.testing import FakeClock

RULE = RuleConfig(
    name="disk",
    category=Category.TERMINAL_EQUIPMENT,
    metric="used",
    threshold=0.9,
    severity=Severity.MAJOR,
    subject="{mountpoint}",
)
BATCH = [Sample.of("used", 0.95, mountpoint="/")]


def test_a_changed_rule_keeps_its_firing_series_and_clears_under_the_new_level(clock: FakeClock) -> None:
    """Threshold raised above the value: the next batch clears the hazard instead of orphaning it."""
    old = RuleEngine([RULE], clock=clock)
    assert [f.state for f in old.on_batch({"used"}, BATCH)] == ["firing"]
    new = RuleEngine([replace(RULE, threshold=0.99)], clock=clock)
    assert new.adopt(old) == []
    assert [(f.state, f.subject) for f in new.on_batch({"used"}, BATCH)] == [("cleared", "/")]


def test_an_unchanged_rule_does_not_fire_again(clock: FakeClock) -> None:
    """Same rule after reload: still firing, no duplicate finding."""
    old = RuleEngine([RULE], clock=clock)
    old.on_batch({"used"}, BATCH)
    new = RuleEngine([RULE], clock=clock)
    new.adopt(old)
    assert new.on_batch({"used"}, BATCH) == []


def test_a_removed_rule_clears_what_it_had_firing(clock: FakeClock) -> None:
    """Removing or disabling a rule resolves its hazards rather than leaving them open forever."""
    old = RuleEngine([RULE], clock=clock)
    old.on_batch({"used"}, BATCH)
    new = RuleEngine([replace(RULE, enabled=False)], clock=clock)
    assert [(f.rule, f.state, f.subject) for f in new.adopt(old)] == [("disk", "cleared", "/")]
