"""Cron expressions with `once_per`: when a schedule runs (see sentinel.agent.schedule).

A schedule is a cron expression (minute hour day-of-month month day-of-week, local time, with
`*`, ranges, lists, steps and names) plus an optional `once_per` period: the job runs at the
*first* matching time of each day/week/month/year.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

_MONTHS = {
    m: i
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1
    )
}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
_FIELDS: tuple[tuple[str, int, int, Mapping[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
SEARCH_DAYS = 366 * 8  # covers Feb 29 (leap years can be 8 years apart); an impossible date gives None


class CronError(ValueError):
    """An invalid cron expression (the message says which field and why)."""


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed cron expression."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    dom_restricted: bool
    dow_restricted: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        """Parse five fields; raise CronError naming the bad field."""
        parts = text.split()
        if len(parts) != 5:
            raise CronError(f'expected 5 fields "minute hour day month weekday", got {len(parts)}')
        sets = [_parse_field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in sets[4])
        return cls(sets[0], sets[1], sets[2], sets[3], weekdays, parts[2] != "*", parts[4] != "*")

    def day_matches(self, day: datetime) -> bool:
        """Whether the date matches (cron's rule: day-of-month OR day-of-week when both are set)."""
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.dom_restricted and self.dow_restricted:
            return dom or dow
        return dom and dow

    def next_after(self, after: datetime) -> datetime | None:
        """The first matching minute strictly after `after` (naive local time), or None."""
        start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for _ in range(SEARCH_DAYS):
            if self.day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            return candidate
            day += timedelta(days=1)
        return None


def _parse_field(text: str, name: str, low: int, high: int, names: Mapping[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{name}: bad step {step_text!r}")
            step = int(step_text)
        if body == "*":
            first, last = low, high
        else:
            first_text, _, last_text = body.partition("-")
            first = _value(first_text, name, low, high, names)
            last = _value(last_text, name, low, high, names) if last_text else (high if step_text else first)
            if last < first:
                raise CronError(f"{name}: range {body!r} runs backwards")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _value(text: str, name: str, low: int, high: int, names: Mapping[str, int]) -> int:
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit() or not low <= int(text) <= high:
        raise CronError(f"{name}: {text!r} is not in {low}-{high}")
    return int(text)


def check_cron(value: str) -> str | None:
    """Config check: a valid cron expression."""
    try:
        Cron.parse(value)
    except CronError as exc:
        return f"invalid cron expression {value!r}: {exc}"
    return None


Period = Literal["", "day", "week", "month", "year"]


def _period_start(moment: datetime, period: Period) -> datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def _next_period(start: datetime, period: Period) -> datetime:
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    if period == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start.replace(year=start.year + 1)


def next_run(cron: Cron, once_per: Period, after: datetime) -> datetime | None:
    """The next run strictly after `after`, honouring `once_per` (first match of each period)."""
    candidate = cron.next_after(after)
    while candidate is not None and once_per:
        start = _period_start(candidate, once_per)
        first = cron.next_after(start - timedelta(minutes=1))
        if first == candidate:
            return candidate
        # an earlier match already claimed this period: look in the next one
        candidate = cron.next_after(_next_period(start, once_per) - timedelta(minutes=1))
    return candidate
