"""Threshold rules over samples: `for`, hysteresis (`clear`), `keep_firing_for`, severity levels.

Each matching series (one label set) has its own small state machine:

    inactive --crossed--> pending --held for `for`--> firing --not active--> keeping
       ^                    |                          ^  |                     |
       +----not crossed-----+                          |  +-- (keep_firing_for = 0)
       +-------------------- cleared ------------------+------ held clear for keep_firing_for

"Not active" uses the `clear` level when one is set (hysteresis): a disk at 90.1 % / 89.9 % /
90.1 % stays one firing hazard instead of flapping. Severity follows the highest level crossed;
de-escalation also waits for the value to pass the level by the hysteresis gap. All timing uses
the monotonic clock, so a wall-clock jump can neither fire nor clear a rule.

A `predict` rule compares the linear fit of the series over `window`, projected `predict` ahead
(Prometheus's predict_linear), instead of the current value.

A `relative_to` rule reads each level as an offset from another metric of the same batch with the
same labels: `relative_to = {major = "sentinel_temperature_high_celsius"}` with `levels = {major =
-5}` fires 5 °C below each sensor's own high mark. A series whose reference is missing has no
level for that severity; with none at all it counts as absent (a sensor without marks).
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sentinel.core.clock import Clock
from sentinel.core.model import Finding, Labels, Sample, Scalar, Severity, freeze_fields
from sentinel.rules.config import RuleConfig
from sentinel.rules.text import all_match, render

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
MIN_FIT_POINTS = 3


@dataclass(slots=True)
class _Series:
    phase: str = "inactive"  # inactive | pending | firing | keeping
    since: float = 0.0  # monotonic time the current phase began
    severity: Severity | None = None
    points: deque[tuple[float, float]] = field(default_factory=deque)
    last_value: float = 0.0
    levels: list[tuple[Severity, float]] = field(default_factory=list)  # effective, last reading


def linear_fit(points: Iterable[tuple[float, float]]) -> tuple[float, float] | None:
    """Least-squares (slope, intercept) of (t, v) points, or None when it is undefined."""
    pts = list(points)
    n = len(pts)
    if n < 2:
        return None
    mean_t = sum(t for t, _ in pts) / n
    mean_v = sum(v for _, v in pts) / n
    var = sum((t - mean_t) ** 2 for t, _ in pts)
    if var == 0:
        return None
    slope = sum((t - mean_t) * (v - mean_v) for t, v in pts) / var
    return slope, mean_v - slope * mean_t


class ThresholdRule:
    """One `[[rules]]` entry with `metric = ...`, evaluated on every batch of its metric."""

    def __init__(self, config: RuleConfig, *, clock: Clock, terminal: str = "") -> None:
        self.config = config
        self.name = config.name
        self.metric = config.metric
        self._clock = clock
        self._terminal = terminal
        self._op = _OPS[config.op]
        self._levels = sorted(config.severity_levels.items(), key=lambda kv: kv[0].rank)
        self._relative = {Severity(k): v for k, v in config.relative_to.items()}
        self._guard = config.guard
        lowest = self._levels[0][1]
        self._gap = abs(lowest - config.clear) if config.clear is not None else 0.0
        self._series: dict[Labels, _Series] = {}

    # -- evaluation ---------------------------------------------------------------------------

    @property
    def references(self) -> tuple[str, ...]:
        """The other metrics this rule reads: its levels' references and its `only_when` guard."""
        guard = {self._guard[0]} if self._guard else set()
        return tuple(sorted(set(self._relative.values()) | guard))

    def evaluate(
        self, samples: Iterable[Sample], others: Mapping[str, Sequence[Sample]] | None = None
    ) -> list[Finding]:
        """Feed one complete batch of the metric; series missing from it count as not crossed.

        `others` holds the rest of the batch by metric name, for `relative_to` references.
        """
        now = self._clock.monotonic()
        seen: set[Labels] = set()
        findings: list[Finding] = []
        refs = self._reference_values(others or {})
        for sample in samples:
            if sample.name != self.metric or not all_match(self.config.match, sample.label_map):
                continue
            series = self._series.setdefault(sample.labels, _Series())
            series.levels = self._levels_for(sample.labels, refs)
            if not series.levels:
                continue  # nothing to compare with (no reference): as if absent
            seen.add(sample.labels)
            value = self._value(series, sample.value, now)  # the fit keeps its history regardless
            if not self._guarded(sample.labels, refs):
                value = None  # outside the guard: not crossed (a firing hazard clears)
            finding = self._step(series, sample.labels, value, now)
            if finding:
                findings.append(finding)
        for labels in [k for k in self._series if k not in seen]:
            series = self._series[labels]
            finding = self._step(series, labels, None, now)
            if finding:
                findings.append(finding)
            if series.phase == "inactive":
                del self._series[labels]  # vanished and settled: forget it (bounded memory)
        return findings

    def _guarded(self, labels: Labels, refs: Mapping[str, Mapping[Labels, float]]) -> bool:
        """Whether `only_when` holds for this series (always, without one; never, without data)."""
        if self._guard is None:
            return True
        metric, op, number = self._guard
        value = refs.get(metric, {}).get(labels)
        return value is not None and _OPS[op](value, number)

    def _reference_values(self, others: Mapping[str, Sequence[Sample]]) -> dict[str, dict[Labels, float]]:
        return {m: {s.labels: s.value for s in others.get(m, ())} for m in self.references}

    def _levels_for(
        self, labels: Labels, refs: Mapping[str, Mapping[Labels, float]]
    ) -> list[tuple[Severity, float]]:
        """The levels of one series: the configured ones, or offsets from its references."""
        if not self._relative:
            return self._levels
        out: list[tuple[Severity, float]] = []
        for severity, offset in self._levels:
            base = refs.get(self._relative[severity], {}).get(labels)
            if base is not None:
                out.append((severity, base + offset))
        return out

    def _value(self, series: _Series, value: float, now: float) -> float | None:
        series.last_value = value
        if self.config.predict is None:
            return value
        series.points.append((now, value))
        while series.points and series.points[0][0] < now - self.config.window:
            series.points.popleft()
        span = series.points[-1][0] - series.points[0][0]
        if len(series.points) < MIN_FIT_POINTS or span < self.config.window / 4:
            return None  # too little history to extrapolate: neither fire nor clear on noise
        fit = linear_fit(series.points)
        if fit is None:
            return value
        slope, intercept = fit
        return slope * (now + self.config.predict) + intercept

    def judge(
        self, value: float, labels: Labels = (), others: Mapping[str, Sequence[Sample]] | None = None
    ) -> Severity | None:
        """The severity one reading would have on its own (no `for`, no hysteresis): inspections."""
        refs = self._reference_values(others or {})
        if not self._guarded(labels, refs):
            return None
        return self._crossed(value, None, self._levels_for(labels, refs))

    def _crossed(
        self, value: float, current: Severity | None, levels: list[tuple[Severity, float]]
    ) -> Severity | None:
        """The highest severity whose level the value crosses (with hysteresis when firing)."""
        found: Severity | None = None
        for severity, level in levels:
            held = current is not None and severity.rank <= current.rank
            if self._op(value, level) or (held and self._within_gap(value, level)):
                found = severity
        return found

    def _within_gap(self, value: float, level: float) -> bool:
        if not self._gap:
            return False
        if self.config.op in (">", ">="):
            return value > level - self._gap
        if self.config.op in ("<", "<="):
            return value < level + self._gap
        return False

    def _step(self, s: _Series, labels: Labels, value: float | None, now: float) -> Finding | None:
        firing = s.phase in ("firing", "keeping")
        level = None if value is None else self._crossed(value, s.severity if firing else None, s.levels)
        if s.phase == "inactive":
            if level is not None:
                s.phase, s.since, s.severity = "pending", now, level
                return self._promote(s, labels, now)
            return None
        if s.phase == "pending":
            if level is None:
                s.phase, s.severity = "inactive", None
                return None
            s.severity = level
            return self._promote(s, labels, now)
        if level is not None:
            s.phase = "firing"
            if level != s.severity:
                s.severity = level
                return self._finding(labels, "firing", s)
            return None
        if s.phase == "firing":
            s.phase, s.since = "keeping", now
        if now - s.since >= self.config.keep_firing_for:
            finding = self._finding(labels, "cleared", s)
            s.phase, s.severity = "inactive", None
            return finding
        return None

    def _promote(self, s: _Series, labels: Labels, now: float) -> Finding | None:
        if now - s.since >= self.config.for_:
            s.phase = "firing"
            return self._finding(labels, "firing", s)
        return None

    # -- findings -----------------------------------------------------------------------------

    def subject(self, labels: Labels) -> str:
        """The hazard subject of one series: the rule's template, else its labels."""
        values = dict(labels)
        if self.config.subject:
            return render(self.config.subject, values)
        return ",".join(f"{k}={v}" for k, v in labels) or self._terminal or self.name

    def _finding(self, labels: Labels, state: str, s: _Series) -> Finding:
        severity = s.severity or self._levels[0][0]
        threshold = dict(s.levels or self._levels).get(severity, dict(self._levels)[severity])
        subject = self.subject(labels)
        values = {
            **dict(labels),
            "subject": subject,
            "value": s.last_value,
            "threshold": threshold,
            "severity": severity.value,
            "rule": self.name,
        }
        title = render(self.config.title or f"{self.name} on {{subject}}", values)
        evidence: dict[str, Scalar] = {
            "metric": self.metric,
            "value": s.last_value,
            "op": self.config.op,
            "threshold": threshold,
            **dict(labels),
        }
        return Finding(
            rule=self.name,
            subject=subject,
            state="firing" if state == "firing" else "cleared",
            severity=severity,
            category=self.config.category,
            title=title,
            time=self._clock.time(),
            evidence=freeze_fields(evidence),
            rectification=tuple(render(r, values) for r in self.config.rectification),
            auto_resolve=self.config.resolves_automatically,
            drill=self.config.drill,
            deadline_seconds=self.config.deadline,
            owner=self.config.owner,
        )

    # -- reload -------------------------------------------------------------------------------

    def adopt(self, previous: ThresholdRule) -> None:
        """Keep the series state of the rule across a config reload, even when it changed.

        A firing series must stay known: the next batch judges it against the new levels and, if
        it no longer crosses, clears it — otherwise its open hazard would never auto-resolve.
        """
        self._series = previous._series
        if previous.config.predict != self.config.predict or previous.config.window != self.config.window:
            for series in self._series.values():
                series.points.clear()  # a different fit: start the history again

    def firing_subjects(self) -> list[Finding]:
        """Cleared findings for every series this rule has firing (used when the rule is removed)."""
        out = []
        for labels, series in self._series.items():
            if series.phase in ("firing", "keeping"):
                out.append(self._finding(labels, "cleared", series))
        return out
