"""Calendar schedules: cron parsing, first-of-period runs, catch-up after downtime."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from sentinel.agent.schedule import Scheduler
from sentinel.config.sections import ScheduleConfig
from sentinel.core.cron import Cron, CronError, next_run
from sentinel.testing import FakeClock


def test_first_working_day_of_the_year() -> None:
    """'0 9 * 1 MON-FRI' once per year: 2027-01-01 is a Friday, 2028-01-03 a Monday."""
    cron = Cron.parse("0 9 * 1 MON-FRI")
    assert next_run(cron, "year", datetime(2026, 12, 31, 12)) == datetime(2027, 1, 1, 9, 0)
    assert next_run(cron, "year", datetime(2027, 1, 1, 9, 0)) == datetime(2028, 1, 3, 9, 0)


def test_first_working_day_of_december() -> None:
    """December 2026 starts on a Tuesday."""
    cron = Cron.parse("0 9 * 12 MON-FRI")
    assert next_run(cron, "year", datetime(2026, 6, 1)) == datetime(2026, 12, 1, 9, 0)


def test_monthly_drill_on_the_first_tuesday() -> None:
    """'0 10 * * TUE' once per month."""
    cron = Cron.parse("0 10 * * TUE")
    runs = []
    moment = datetime(2026, 11, 28)
    for _ in range(3):
        nxt = next_run(cron, "month", moment)
        assert nxt is not None
        runs.append(nxt)
        moment = nxt
    assert runs == [datetime(2026, 12, 1, 10), datetime(2027, 1, 5, 10), datetime(2027, 2, 2, 10)]


def test_plain_cron_semantics() -> None:
    """Steps, lists and cron's day-of-month OR day-of-week rule."""
    assert Cron.parse("*/15 * * * *").minutes == frozenset({0, 15, 30, 45})
    cron = Cron.parse("0 0 13 * FRI")  # the 13th, or any Friday
    assert next_run(cron, "", datetime(2026, 11, 28)) == datetime(2026, 12, 4)  # a Friday before the 13th
    assert Cron.parse("0 0 * * 7").weekdays == frozenset({0})  # 7 is Sunday too


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("* * *", "expected 5 fields"),
        ("61 * * * *", "minute: '61' is not in 0-59"),
        ("0 0 * FOO *", "month: 'FOO'"),
        ("0 0 5-1 * *", "runs backwards"),
        ("*/0 * * * *", "bad step"),
    ],
)
def test_bad_cron_expressions(text: str, message: str) -> None:
    """Errors name the field."""
    with pytest.raises(CronError, match=message):
        Cron.parse(text)


def test_impossible_date_never_runs() -> None:
    """February 30th has no next run (and the search is bounded)."""
    assert next_run(Cron.parse("0 0 30 2 *"), "", datetime(2026, 1, 1)) is None


def make(tmp: Path, clock: FakeClock, ran: list[str], catch_up: bool = True) -> Scheduler:
    schedule = ScheduleConfig(name="daily", run="inspect", cron="0 9 * * *", catch_up=catch_up)
    return Scheduler((schedule,), state_dir=tmp, jobs={"inspect": lambda s: ran.append(s.name)}, clock=clock)


def test_runs_when_due_and_records_the_run(tmp: Path) -> None:
    """Nothing on first start; the 09:00 run happens once it is due, once."""
    clock = FakeClock(start_wall=datetime(2026, 11, 28, 8, 0).timestamp())
    ran: list[str] = []
    scheduler = make(tmp, clock, ran)
    assert scheduler.run_due() == []
    clock.advance(3600 + 30)
    assert scheduler.run_due() == ["daily"]
    assert scheduler.run_due() == []
    assert ran == ["daily"]


def test_missed_run_happens_once_at_the_next_start(tmp: Path) -> None:
    """Down over three 09:00s: one catch-up run at start, not three."""
    clock = FakeClock(start_wall=datetime(2026, 11, 28, 8, 0).timestamp())
    ran: list[str] = []
    make(tmp, clock, ran).run_due()  # first start records "now"
    clock.advance(3 * 86400)
    assert make(tmp, clock, ran).run_due() == ["daily"]
    assert ran == ["daily"]


def test_missed_run_skipped_when_catch_up_is_off(tmp: Path) -> None:
    """catch_up = false: a run missed long ago is dropped."""
    clock = FakeClock(start_wall=datetime(2026, 11, 28, 8, 0).timestamp())
    ran: list[str] = []
    make(tmp, clock, ran, catch_up=False).run_due()
    clock.advance(3 * 86400)
    assert make(tmp, clock, ran, catch_up=False).run_due() == []
    assert ran == []


def test_a_failing_job_is_logged_and_counted_as_run(tmp: Path) -> None:
    """An exception in the job does not escape the scheduler."""
    clock = FakeClock(start_wall=datetime(2026, 11, 28, 8, 0).timestamp())

    def broken(_schedule: ScheduleConfig) -> None:
        raise RuntimeError("boom")

    schedule = ScheduleConfig(name="x", run="inspect", cron="* * * * *")
    scheduler = Scheduler((schedule,), state_dir=tmp, jobs={"inspect": broken}, clock=clock)
    scheduler.run_due()
    clock.advance(120)
    assert scheduler.run_due() == ["x"]


def test_scheduler_thread_starts_and_stops(tmp: Path) -> None:
    """The thread runs a due job and joins on stop."""
    clock = FakeClock(start_wall=datetime(2026, 11, 28, 8, 0).timestamp())
    ran: list[str] = []
    (tmp / "schedules.json").write_text(f'{{"daily": {datetime(2026, 11, 27, 8, 0).timestamp()}}}')
    scheduler = make(tmp, clock, ran)
    scheduler.start()
    scheduler.stop()
    assert ran == ["daily"]
