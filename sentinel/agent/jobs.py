"""What the agent's schedules run: an inspection on the samples it already holds, and drills
against itself, as `sentinel inspect` and `sentinel drill` would."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from sentinel.agent.inspection import baseline_summary, hazards_summary
from sentinel.agent.wiring import open_store
from sentinel.config.schema import Config
from sentinel.config.sections import ScheduleConfig
from sentinel.core.clock import Clock
from sentinel.core.files import write_json_atomic, write_text_atomic
from sentinel.core.model import Sample
from sentinel.drills.runner import DrillRunner
from sentinel.drills.scenarios import SCENARIOS
from sentinel.drills.scrape import scraper
from sentinel.inspect import report as render
from sentinel.inspect.runner import findings_for, run_inspection
from sentinel.pipeline.writer import Pipeline

log = structlog.get_logger("sentinel.agent")


class ScheduledJobs:
    """The `inspect` and `drill` jobs of `[[schedules]]` (the config is read when a job runs: a
    reload may have replaced it)."""

    def __init__(
        self,
        config: Callable[[], Config],
        *,
        clock: Clock,
        pipeline: Pipeline,
        held_samples: Callable[[], list[Sample]],
        address: Callable[[], tuple[str, int] | None],
    ) -> None:
        self.config = config
        self.clock = clock
        self.pipeline = pipeline
        self.held_samples = held_samples
        self.address = address

    def table(self) -> dict[str, Callable[[ScheduleConfig], None]]:
        """Job name -> job, for the Scheduler."""
        return {"inspect": self.inspection, "drill": self.drill}

    def inspection(self, schedule: ScheduleConfig) -> None:
        """Run an inspection on the samples the agent already holds; keep its report in state_dir;
        raise hazards through the writer."""
        cfg = self.config()
        report = run_inspection(
            cfg,
            collect_samples=self.held_samples,
            hazards_summary=lambda: hazards_summary(cfg),
            baseline_check=lambda: baseline_summary(cfg),
            now=self.clock.time(),
        )
        state_dir = cfg.agent.state_dir
        write_json_atomic(state_dir / "inspection-latest.json", report.as_dict())
        write_text_atomic(state_dir / "inspection-latest.md", render.to_markdown(report))
        if cfg.inspect.raise_hazards and self.pipeline is not None:
            self.pipeline.submit_findings(findings_for(report.checks, now=report.started_at))
        log.info(
            "inspection_done", schedule=schedule.name, failed=len(report.failed), problems=report.problems
        )

    def drill(self, schedule: ScheduleConfig) -> None:
        """Run the schedule's drill scenarios against this agent, as `sentinel drill` would."""
        cfg = self.config()
        address = self.address()
        assert address is not None  # drills are scheduled only once /metrics is bound
        names = list(SCENARIOS) if schedule.scenario == "all" else [schedule.scenario]
        scrape = scraper(address[0], address[1], tls=bool(cfg.metrics.tls_cert_file))
        store = open_store(cfg, clock=self.clock)
        try:
            runner = DrillRunner(cfg, store, scrape=scrape, clock=self.clock, trigger="schedule")
            for name in names:
                scenario = SCENARIOS.get(name)
                if scenario is None:
                    log.error("drill_unknown_scenario", schedule=schedule.name, scenario=name)
                    continue
                runner.run(scenario)
        finally:
            store.close()
