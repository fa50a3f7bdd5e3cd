"""Emergency drills: prove, stage by stage, that an alarm really rings.

A drill applies a harmless stimulus to the *running* agent and watches each stage of the chain:

    detected   the agent's detector saw the stimulus (its own metric moved)
    recorded   a hazard marked `drill` was raised in the store
    ticket:S   the hazard's ticket reached sink S (one stage per sink that routes it)
    metrics    the hazard is visible in /metrics (sentinel_hazard_open_info{drill="true"})

Each stage passes with its latency from the stimulus, or fails at the drill's timeout. Then the
stimulus is removed and the drill hazard is closed with a note, so drills never pile up as
work. The result is kept in the store (`drill_runs`) and exported as metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import structlog

from sentinel.config.schema import Config
from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.files import UnsafePathError
from sentinel.hazards.changes import HazardError
from sentinel.hazards.identity import agent_actor
from sentinel.hazards.lifecycle import ACTIVE_STATES, Action
from sentinel.hazards.store import HazardStore

log = structlog.get_logger("sentinel.drills")

DRILL_ACTOR = "drill"
VERIFIER = "drill-verifier"
POLL = 0.1


class Scenario(Protocol):
    """One kind of drill."""

    name: str
    description: str

    def target(self, config: Config) -> tuple[str, str | None]:
        """The rule whose hazard proves the chain, and the subject it will have (None: any)."""
        ...

    def unavailable(self, config: Config) -> str:
        """Why this scenario cannot run with this config ("" when it can)."""
        ...

    def stimulate(self, config: Config, clock: Clock) -> None:
        """Apply the harmless stimulus."""
        ...

    def detected(self, before: str, now: str) -> bool:
        """Whether the detector saw it, from two /metrics scrapes (before the stimulus and now)."""
        ...

    def cleanup(self, config: Config) -> None:
        """Remove the stimulus (always called, even after a failure)."""
        ...


@dataclass
class Stage:
    """One stage's outcome."""

    name: str
    passed: bool = False
    latency_seconds: float | None = None
    detail: str = ""


@dataclass
class DrillResult:
    """One scenario's run."""

    scenario: str
    passed: bool
    started_at: float
    finished_at: float
    stages: list[Stage] = field(default_factory=list)
    hazard_id: int | None = None
    skipped: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The documented JSON form."""
        return asdict(self)

    @property
    def failed_stages(self) -> list[str]:
        """Names of the stages that did not pass."""
        return [s.name for s in self.stages if not s.passed]


class DrillRunner:
    """Runs scenarios against the running agent through its store and its /metrics."""

    def __init__(
        self,
        config: Config,
        store: HazardStore,
        *,
        scrape: Callable[[], str],
        sinks: Callable[[int, int], list[str]] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        timeout: float = 30.0,
        trigger: str = "cli",
    ) -> None:
        self.config = config
        self.store = store
        self.scrape = scrape
        self.clock = clock
        self.timeout = timeout
        self.trigger = trigger
        self._sinks = sinks

    def run(self, scenario: Scenario) -> DrillResult:
        """Run one scenario end to end and record the result."""
        started = self.clock.time()
        reason = scenario.unavailable(self.config)
        if reason:
            return DrillResult(scenario.name, False, started, started, skipped=reason)
        rule, subject = scenario.target(self.config)
        self._close_leftovers(rule, note="closed before a new drill")
        before = self._safe_scrape()
        t0 = time.monotonic()
        stimulated_at = self.clock.time()
        stages = {name: Stage(name) for name in ("detected", "recorded")}
        result = DrillResult(scenario.name, False, started, started)
        try:
            if self._stimulate(scenario, stages):
                self._watch(scenario, (rule, subject), before, stimulated_at, t0, stages, result)
        finally:
            scenario.cleanup(self.config)
        if result.hazard_id is not None:
            self._close(result.hazard_id, scenario.name)
        result.stages = list(stages.values())
        result.passed = all(s.passed for s in result.stages)
        result.finished_at = self.clock.time()
        self.store.drills.record(
            scenario=scenario.name,
            started_at=result.started_at,
            finished_at=result.finished_at,
            passed=result.passed,
            trigger=self.trigger,
            stages=[asdict(s) for s in result.stages],
        )
        log.info("drill_done", scenario=scenario.name, passed=result.passed, failed=result.failed_stages)
        return result

    def _stimulate(self, scenario: Scenario, stages: dict[str, Stage]) -> bool:
        """Apply the stimulus; a refused or failed write fails the drill with a clear line."""
        try:
            scenario.stimulate(self.config, self.clock)
        except UnsafePathError as exc:  # e.g. a link planted where the drill writes
            log.error("drill_stimulus_refused", scenario=scenario.name, path=exc.path, reason=exc.reason)
            stages["detected"].detail = str(exc)
            return False
        except OSError as exc:
            log.error("drill_stimulus_failed", scenario=scenario.name, error=str(exc))
            stages["detected"].detail = f"the stimulus could not be written: {exc}"
            return False
        return True

    def _watch(
        self,
        scenario: Scenario,
        target: tuple[str, str | None],
        before: str,
        since: float,
        t0: float,
        stages: dict[str, Stage],
        result: DrillResult,
    ) -> None:
        deadline = t0 + self.timeout
        history_id: int | None = None
        while True:
            elapsed = time.monotonic() - t0
            now_text = self._safe_scrape()
            if not stages["detected"].passed and scenario.detected(before, now_text):
                _pass(stages["detected"], elapsed)
            if result.hazard_id is None:
                found = self.store.drills.hazard_since(target[0], since, subject=target[1])
                if found:
                    result.hazard_id, history_id = found
                    _pass(stages["recorded"], elapsed, f"hazard #{result.hazard_id}")
                    for sink in self._sink_names(result.hazard_id, history_id):
                        stages[f"ticket:{sink}"] = Stage(f"ticket:{sink}")
                    stages["metrics"] = Stage("metrics")
            if result.hazard_id is not None and history_id is not None:
                self._check_tickets(result.hazard_id, history_id, stages, elapsed)
                metrics = stages["metrics"]
                marker = f'hazard_id="{result.hazard_id}"'
                if not metrics.passed and any(
                    line.startswith("sentinel_hazard_open_info{")
                    and marker in line
                    and 'drill="true"' in line
                    for line in now_text.splitlines()
                ):
                    _pass(metrics, elapsed)
            if all(s.passed for s in stages.values()) and "metrics" in stages:
                return
            if time.monotonic() >= deadline:
                for stage in stages.values():
                    if not stage.passed and not stage.detail:
                        stage.detail = f"not reached within {self.timeout:g}s"
                if "metrics" not in stages:
                    stages["metrics"] = Stage("metrics", detail="no hazard to look for")
                return
            time.sleep(POLL)

    def _sink_names(self, hazard_id: int, history_id: int) -> list[str]:
        if self._sinks is not None:
            return self._sinks(hazard_id, history_id)
        return [str(r["sink"]) for r in self.store.drills.deliveries(hazard_id, history_id)]

    def _check_tickets(
        self, hazard_id: int, history_id: int, stages: dict[str, Stage], elapsed: float
    ) -> None:
        for row in self.store.drills.deliveries(hazard_id, history_id):
            stage = stages.get(f"ticket:{row['sink']}")
            if stage is None or stage.passed:
                continue
            if row["delivered_at"] is not None:
                _pass(stage, elapsed)
            elif row["dead"]:
                stage.detail = f"dead-lettered: {row['last_error']}"
            elif row["last_error"]:
                stage.detail = f"{row['attempts']} attempt(s), last error: {row['last_error']}"

    def _safe_scrape(self) -> str:
        try:
            return self.scrape()
        except OSError as exc:
            log.warning("drill_scrape_failed", error=str(exc))
            return ""

    # -- closing drill hazards ----------------------------------------------------------------

    def _close_leftovers(self, rule: str, note: str) -> None:
        for hazard_id in self.store.drills.live_hazards(rule):
            self._close(hazard_id, "leftover", note=note)

    def _close(self, hazard_id: int, scenario: str, note: str = "") -> None:
        """Tick, resolve and close a drill hazard: the agent's own move (shown as the drill and its
        verifier), which the store allows on drill hazards only."""
        record = self.store.get(hazard_id)
        if record is None or not record.drill:
            return
        text = note or f"closed automatically after the {scenario} drill"
        for item in record.rectification:
            if not item.done:
                with suppress(HazardError):
                    self.store.tick(hazard_id, item.item, actor=agent_actor(DRILL_ACTOR), note="drill")
        try:
            if record.state in ACTIVE_STATES:
                self.store.act(hazard_id, Action.RESOLVE, actor=agent_actor(DRILL_ACTOR), note="drill over")
            self.store.act(hazard_id, Action.CLOSE, actor=agent_actor(VERIFIER), note=text)
        except HazardError as exc:
            log.warning("drill_close_failed", hazard_id=hazard_id, error=str(exc))


def _pass(stage: Stage, elapsed: float, detail: str = "") -> None:
    stage.passed = True
    stage.latency_seconds = round(elapsed, 3)
    stage.detail = detail
