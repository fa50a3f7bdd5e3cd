"""The composition root: builds the collectors, the hazard store and the inspection parts the same
way for the agent and the CLI, so that a transition made from the command line is ticketed
exactly as one made by the agent, and a one-shot inspection reads what the agent would."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sentinel import __version__
from sentinel.config.schema import Config
from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import Sample
from sentinel.hazards.changes import HazardError
from sentinel.hazards.lifecycle import ACTIVE_STATES
from sentinel.hazards.schema import STORE_FILE
from sentinel.hazards.store import HazardStore
from sentinel.inspect.runner import summarise_hazards
from sentinel.rules.engine import RuleEngine
from sentinel.sources.base import Collector, Context, PolledCollector
from sentinel.sources.integrity import check as baseline_check
from sentinel.sources.integrity.baseline import BaselineFiles, tamper_event
from sentinel.sources.registry import registrations
from sentinel.tickets.ticketing import Ticketing, sinks_wanting

Built = Collector | Exception


def open_store(config: Config, *, clock: Clock = SYSTEM_CLOCK) -> HazardStore:
    """The hazard store of `config`, ticketing to the config's sinks."""
    ticketing = Ticketing(
        terminal=config.agent.terminal_id,
        branch=config.agent.branch,
        agent_version=__version__,
        sinks_for=sinks_wanting(config.sinks),
    )
    return HazardStore(
        config.agent.state_dir / STORE_FILE,
        config=config.hazards,
        terminal=config.agent.terminal_id,
        branch=config.agent.branch,
        clock=clock,
        ticketer=ticketing,
    )


def build_collectors(config: Config, *, clock: Clock) -> list[tuple[str, Built]]:
    """(name, collector or the error that prevented building it) for every enabled collector.

    A collector whose constructor fails is returned as the exception, so the agent can log it,
    show it as disabled in /metrics and `sentinel status`, and keep running (DESIGN §4.1).
    """
    context = Context(state_dir=config.agent.state_dir, clock=clock)
    out: list[tuple[str, Built]] = []
    for registration in registrations():
        settings = config.section(registration.path)
        if not registration.enabled(settings):
            continue
        try:
            out.append((registration.name, registration.build(settings, context)))
        except Exception as exc:  # contained: a broken collector must not stop the agent
            out.append((registration.name, exc))
    return out


def collect_health(config: Config) -> Sequence[Sample]:
    """For a one-shot inspection: one reading of every polled collector a threshold rule reads.

    (The agent's scheduled inspections read the samples it already holds instead.)
    """
    wanted = {r.metric for r in config.enabled_rules if r.metric}
    samples: list[Sample] = []
    for _name, built in build_collectors(config, clock=SYSTEM_CLOCK):
        if not isinstance(built, PolledCollector) or not wanted & {m.name for m in built.metrics}:
            continue
        samples += [i for i in built.collect() if isinstance(i, Sample)]
    return samples


def hazards_summary(config: Config) -> dict[str, Any]:
    """The inspection's hazards part: open and overdue hazards from the store, if there is one."""
    if not (config.agent.state_dir / STORE_FILE).exists():
        return {}
    try:
        store = open_store(config)
    except (sqlite3.Error, OSError, HazardError):
        return {"error": "hazard store unreadable"}
    try:
        return summarise_hazards(store.records(states=tuple(ACTIVE_STATES)))
    finally:
        store.close()


def baseline_summary(config: Config) -> dict[str, Any] | None:
    """A quick file-integrity check for inspections: {"ok": bool, "summary": str}, or None when
    nothing is watched ([integrity] in the config)."""
    return baseline_check.summary(config.integrity, config.agent.state_dir)


def raise_tamper_hazard(
    config: Config, result: baseline_check.CheckResult, *, clock: Clock = SYSTEM_CLOCK
) -> list[int]:
    """Raise a failed baseline verification through the configured rules into the hazard store,
    exactly as the agent would; the hazard ids."""
    files = BaselineFiles(config.agent.state_dir)
    event = tamper_event(files, result.problem, result.detail, clock.time())
    engine = RuleEngine(config.enabled_rules, clock=clock, terminal=config.agent.terminal_id)
    findings = engine.on_event(event)
    if not findings:
        return []
    store = open_store(config, clock=clock)
    try:
        return [c.hazard_id for c in store.apply_many(findings) if c is not None]
    finally:
        store.close()
