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
from datetime import datetime
from pathlib import Path

import structlog

from sentinel.config.sections import ScheduleConfig
from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.cron import next_run
from sentinel.core.files import write_json_atomic

log = structlog.get_logger("sentinel.schedule")

STATE_FILE = "schedules.json"


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
