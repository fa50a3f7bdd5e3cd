"""The rule engine: routes each collector batch to its threshold rules and each event to its
event rules. Owned by the writer thread alone, so it needs no locks."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from sentinel.core.clock import Clock
from sentinel.core.model import Event, Finding, Sample
from sentinel.rules.config import RuleConfig
from sentinel.rules.events import EventRule
from sentinel.rules.threshold import ThresholdRule
from sentinel.rules.windows import NO_WINDOWS, WindowLookup


class RuleEngine:
    """All enabled rules of the current config."""

    def __init__(
        self,
        rules: Sequence[RuleConfig],
        *,
        clock: Clock,
        terminal: str = "",
        windows: WindowLookup = NO_WINDOWS,
    ) -> None:
        self._clock = clock
        self.windows = windows
        self.threshold_rules: list[ThresholdRule] = []
        self.event_rules: list[EventRule] = []
        self._by_metric: dict[str, list[ThresholdRule]] = defaultdict(list)
        for rule in rules:
            if not rule.enabled:
                continue
            if rule.metric:
                t = ThresholdRule(rule, clock=clock, terminal=terminal)
                self.threshold_rules.append(t)
                self._by_metric[rule.metric].append(t)
            else:
                self.event_rules.append(EventRule(rule, windows))

    def on_batch(self, declared: Iterable[str], samples: Sequence[Sample]) -> list[Finding]:
        """Evaluate the threshold rules on the metrics a collector declares, with its full batch."""
        findings: list[Finding] = []
        by_name: dict[str, list[Sample]] = defaultdict(list)
        for sample in samples:
            by_name[sample.name].append(sample)
        for metric in declared:
            for rule in self._by_metric.get(metric, ()):
                findings += rule.evaluate(by_name.get(metric, []), by_name)
        return findings

    def on_event(self, event: Event) -> list[Finding]:
        """Count one event in every event rule that wants it."""
        out = []
        arrival = self._clock.monotonic()
        for rule in self.event_rules:
            finding = rule.observe(event, arrival=arrival)
            if finding:
                out.append(finding)
        return out

    def housekeeping(self) -> None:
        """Drop idle event groups (called by the writer between batches); by event time and by
        arrival on the monotonic clock, never by the wall clock against event times."""
        now = self._clock.monotonic()
        for rule in self.event_rules:
            rule.expire(now)

    def adopt(self, previous: RuleEngine) -> list[Finding]:
        """Carry rule state over from the engine this one replaces (reload, on the writer thread).

        Returns cleared findings for what the removed or disabled threshold rules had firing, so
        their hazards auto-resolve instead of staying open forever.
        """
        old_t = {r.name: r for r in previous.threshold_rules}
        kept = {t.name for t in self.threshold_rules}
        for t in self.threshold_rules:
            if t.name in old_t:
                t.adopt(old_t[t.name])
        cleared = [f for name, rule in old_t.items() if name not in kept for f in rule.firing_subjects()]
        old_e = {r.name: r for r in previous.event_rules}
        for e in self.event_rules:
            if e.name in old_e:
                e.adopt(old_e[e.name])
        return cleared

    @property
    def evicted_groups(self) -> int:
        """Event groups dropped because MAX_GROUPS was reached."""
        return sum(r.evicted for r in self.event_rules)
