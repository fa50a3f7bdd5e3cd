"""Builds the shared pieces the same way for the agent and the CLI, so that a transition made
from the command line is ticketed exactly as one made by the agent."""

from __future__ import annotations

from typing import Any

from sentinel.config.loader import Config
from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.hazards.store import HazardStore

STORE_FILE = "hazards.db"


def open_store(config: Config, *, clock: Clock = SYSTEM_CLOCK) -> HazardStore:
    """The hazard store of `config`, with its ticket routing."""
    sinks = config.sinks

    def sinks_for(record: dict[str, Any], transition: str) -> list[str]:
        return [s.name for s in sinks if s.wants(record, transition)]

    return HazardStore(
        config.agent.state_dir / STORE_FILE,
        config=config.hazards,
        terminal=config.agent.terminal_id,
        branch=config.agent.branch,
        clock=clock,
        sinks_for=sinks_for,
    )


def baseline_summary(config: Config) -> dict[str, Any] | None:
    """A quick file-integrity check for inspections: {"ok": bool, "summary": str}, or None when
    nothing is watched ([integrity] in the config)."""
    from sentinel.sources.integrity.check import summary

    return summary(config)
