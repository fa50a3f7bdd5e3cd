"""What an inspection and a baseline check need, built from the config the same way for the agent
and the CLI: one reading of the collectors, the hazards part, the baseline part, and a failed
baseline verification raised as the agent would raise it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sentinel.agent.wiring import build_collectors, open_store
from sentinel.config.schema import Config
from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import Sample
from sentinel.hazards.changes import HazardError
from sentinel.hazards.lifecycle import ACTIVE_STATES
from sentinel.hazards.schema import STORE_FILE
from sentinel.inspect.runner import summarise_hazards
from sentinel.rules.engine import RuleEngine
from sentinel.sources.base import PolledCollector
from sentinel.sources.integrity import check as baseline_check
from sentinel.sources.integrity.baseline import BaselineFiles, tamper_event


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
    """The inspection's hazards part: open and overdue hazards from the store, if there is one,
    and whether its hash-chained trail verifies (`trail`)."""
    if not (config.agent.state_dir / STORE_FILE).exists():
        return {}
    try:
        store = open_store(config)
    except (sqlite3.Error, OSError, HazardError):
        return {"error": "hazard store unreadable"}
    try:
        summary = summarise_hazards(store.records(states=tuple(ACTIVE_STATES)))
        verdict = store.verify()
    finally:
        store.close()
    first = verdict.first
    summary["trail"] = {
        "ok": verdict.ok,
        "rows": verdict.rows,
        "head": {"seq": verdict.head_seq, "hash": verdict.head_hash},
        "summary": f"intact, {verdict.rows} rows" if first is None else f"BROKEN: {first.message}",
    }
    return summary


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
