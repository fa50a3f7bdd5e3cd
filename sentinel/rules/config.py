"""`[[rules]]`: one threshold rule (`metric`) or event rule (`event`) each (docs/configuration.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sentinel.core.model import Category, Severity, severity_levels_check
from sentinel.core.settings import Duration, KeyPath, check_name, field, frozen_map, non_negative, positive
from sentinel.rules.text import matcher_error

_GUARD = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(>=|<=|==|!=|>|<)\s*(-?[0-9]+(?:\.[0-9]+)?)\s*$")


def parse_guard(text: str) -> tuple[str, str, float] | None:
    """ "sentinel_filesystem_used_ratio > 0.6" -> (metric, ">", 0.6); None if it is not that form."""
    found = _GUARD.match(text)
    return (found.group(1), found.group(2), float(found.group(3))) if found else None


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """One `[[rules]]` entry: a threshold rule (`metric`) or an event rule (`event`)."""

    category: Category
    name: str = field(check=check_name)
    title: str = ""
    enabled: bool = True
    # threshold form
    metric: str = ""
    match: Mapping[str, str] = field(default_factory=frozen_map)
    op: Literal[">", ">=", "<", "<=", "==", "!="] = ">"
    threshold: float | None = None
    levels: Mapping[str, float] = field(default_factory=frozen_map, check=severity_levels_check)
    clear: float | None = None
    for_: Duration = field(Duration(0), key="for")
    keep_firing_for: Duration = Duration(0)
    predict: Duration | None = None
    window: Duration = field(Duration(0), check=non_negative)
    # per severity, the metric (same labels, same collector) its level is an offset from
    relative_to: Mapping[str, str] = field(default_factory=frozen_map, check=severity_levels_check)
    # "METRIC OP NUMBER": judge a series only while that metric of the same batch and labels holds
    # it (node-mixin predicts a full filesystem only once it is already below 40 % free)
    only_when: str = ""
    subject: str = ""
    # event form
    event: str = ""
    where: Mapping[str, str] = field(default_factory=frozen_map)
    count: int = field(1, check=positive)
    group_by: tuple[str, ...] = ("subject",)
    mute: Duration = Duration(0)
    # only events an approved change window covers ("inside") or does not ("outside")
    change_window: Literal["", "inside", "outside"] = ""
    # the hazard it raises
    severity: Severity | None = None
    auto_resolve: bool | None = None
    rectification: tuple[str, ...] = ()
    deadline: Duration | None = None
    owner: str = ""
    drill: bool = False  # hazards it raises are drills (routed away from on-call, auto-closed)

    def validate(self) -> list[tuple[KeyPath, str]]:
        """A rule is exactly one of the two forms, with what that form needs."""
        problems = self._matcher_problems() + self._window_problems()
        if bool(self.metric) == bool(self.event):
            problems.append(((), 'needs exactly one of "metric" (threshold) or "event"'))
            return problems
        if self.metric:
            if self.threshold is None and not self.levels:
                problems.append((("threshold",), 'needs "threshold" and "severity", or "levels"'))
            if self.threshold is not None and self.levels:
                problems.append((("levels",), 'use either "threshold" or "levels", not both'))
            if self.threshold is not None and self.severity is None:
                problems.append((("severity",), 'a "threshold" needs a "severity"'))
            if self.predict is not None and self.window <= 0:
                problems.append((("window",), '"predict" needs a "window" to fit over'))
            if self.relative_to and set(self.relative_to) != {s.value for s in self.severity_levels}:
                problems.append((("relative_to",), "needs one reference metric for each severity level"))
            if self.relative_to and self.predict is not None:
                problems.append((("relative_to",), 'cannot be combined with "predict"'))
            if self.only_when and parse_guard(self.only_when) is None:
                problems.append(
                    (("only_when",), 'expected "METRIC OP NUMBER", e.g. "sentinel_x_ratio > 0.6"')
                )
        else:
            if self.severity is None:
                problems.append((("severity",), "required key is missing"))
            if self.count > 1 and self.window <= 0:
                problems.append((("window",), f'"count = {self.count}" needs a "window"'))
        return problems

    def _window_problems(self) -> list[tuple[KeyPath, str]]:
        """`change_window` judges one event at its time: event rules with `count = 1` only."""
        if not self.change_window:
            return []
        if self.metric:
            return [(("change_window",), "is for event rules")]
        if self.count > 1:
            return [(("change_window",), 'needs "count = 1" (one event, one window)')]
        return []

    def _matcher_problems(self) -> list[tuple[KeyPath, str]]:
        """Regex matchers are compiled at load, so a typo fails here and not at the first event."""
        problems: list[tuple[KeyPath, str]] = []
        for table in ("match", "where"):
            for key, pattern in getattr(self, table).items():
                problem = matcher_error(pattern)
                if problem:
                    problems.append(((table, key), problem))
        return problems

    @property
    def guard(self) -> tuple[str, str, float] | None:
        """`only_when` as (metric, operator, number), or None."""
        return parse_guard(self.only_when) if self.only_when else None

    @property
    def severity_levels(self) -> dict[Severity, float]:
        """Threshold per severity, whichever way the rule spelt it."""
        if self.levels:
            return {Severity(k): v for k, v in self.levels.items()}
        if self.threshold is not None and self.severity is not None:
            return {self.severity: self.threshold}
        return {}

    @property
    def resolves_automatically(self) -> bool:
        """Threshold hazards resolve when the condition clears; event hazards by default do not."""
        if self.auto_resolve is not None:
            return self.auto_resolve
        return bool(self.metric)
