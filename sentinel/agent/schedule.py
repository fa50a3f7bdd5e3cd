"""Calendar schedules for inspections and drills, run by the agent itself.

A schedule is a cron expression (minute hour day-of-month month day-of-week, local time, with
`*`, ranges, lists, steps and names) plus an optional `once_per` period: the job runs at the
*first* matching time of each day/week/month/year. That expresses what a safety programme asks:

    cron = "0 9 * 1 MON-FRI", once_per = "year"   -> 09:00 on the first working day of the year
    cron = "0 9 * 12 MON-FRI", once_per = "year"  -> 09:00 on the first working day of December
    cron = "0 10 * * TUE", once_per = "month"     -> 10:00 on the first Tuesday of each month

Runs are recorded in `state_dir/schedules.json`; a run missed while the agent was down runs once
at the next start.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import structlog

from sentinel.agent.status import write_json_atomic
from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.settings import field

log = structlog.get_logger("sentinel.schedule")

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
STATE_FILE = "schedules.json"


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


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """One `[[schedules]]` entry."""

    name: str
    run: Literal["inspect", "drill"]
    cron: str = field(check=check_cron)
    once_per: Period = ""
    scenario: str = "all"
    catch_up: bool = True

    @property
    def parsed(self) -> Cron:
        """The cron expression, parsed (validated at load)."""
        return Cron.parse(self.cron)


class Scheduler:
    """Runs scheduled jobs on a thread; remembers the last run of each in state_dir."""

    def __init__(
        self,
        schedules: tuple[ScheduleConfig, ...],
        *,
        state_dir: Path,
        jobs: Mapping[str, Callable[[ScheduleConfig], None]],
        clock: Clock = SYSTEM_CLOCK,
        max_wait: float = 60.0,
    ) -> None:
        self.schedules = schedules
        self.state_path = state_dir / STATE_FILE
        self.jobs = jobs
        self.clock = clock
        self.max_wait = max_wait  # re-plan at least this often: the wall clock may be stepped
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_runs = self._load()

    def _load(self) -> dict[str, float]:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
            return {str(k): float(v) for k, v in data.items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def due(self) -> list[ScheduleConfig]:
        """Schedules whose next run (after their last run) is now or past."""
        now = datetime.fromtimestamp(self.clock.time())
        out = []
        for schedule in self.schedules:
            last = self.last_runs.get(schedule.name)
            if last is None:  # never ran: start counting from now, nothing was missed
                self.last_runs[schedule.name] = self.clock.time()
                continue
            upcoming = next_run(schedule.parsed, schedule.once_per, datetime.fromtimestamp(last))
            if upcoming is not None and upcoming <= now:
                missed = (now - upcoming).total_seconds() > self.max_wait * 2
                if missed and not schedule.catch_up:
                    self.last_runs[schedule.name] = self.clock.time()
                    continue
                out.append(schedule)
        return out

    def run_due(self) -> list[str]:
        """Run what is due now; returns the names run. Each job's failure is logged, not raised."""
        ran = []
        for schedule in self.due():
            job = self.jobs.get(schedule.run)
            if job is None:
                log.warning("schedule_job_unavailable", schedule=schedule.name, run=schedule.run)
            else:
                log.info("schedule_run", schedule=schedule.name, run=schedule.run)
                try:
                    job(schedule)
                except Exception:
                    log.exception("schedule_job_failed", schedule=schedule.name)
            self.last_runs[schedule.name] = self.clock.time()
            ran.append(schedule.name)
        try:
            write_json_atomic(self.state_path, self.last_runs)
        except OSError as exc:
            log.error("schedule_state_write_failed", error=str(exc))
        return ran

    def start(self) -> None:
        """Start the scheduler thread (runs missed jobs at once)."""
        if not self.schedules:
            return
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop and join."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            self.run_due()
            if self._stop.wait(self._seconds_to_next()):
                return

    def _seconds_to_next(self) -> float:
        now = datetime.fromtimestamp(self.clock.time())
        upcoming = [
            next_run(
                s.parsed, s.once_per, datetime.fromtimestamp(self.last_runs.get(s.name, self.clock.time()))
            )
            for s in self.schedules
        ]
        times = [(u - now).total_seconds() for u in upcoming if u is not None]
        return max(1.0, min([self.max_wait, *times]))
