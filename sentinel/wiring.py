"""Builds the shared pieces the same way for the agent and the CLI, so that a transition made
from the command line is ticketed exactly as one made by the agent."""

from __future__ import annotations

from sentinel.clock import SYSTEM_CLOCK, Clock
from sentinel.config import Config
from sentinel.hazards.store import HazardStore

STORE_FILE = "hazards.db"


def open_store(config: Config, *, clock: Clock = SYSTEM_CLOCK) -> HazardStore:
    """The hazard store of `config`, with its ticket routing."""
    return HazardStore(
        config.agent.state_dir / STORE_FILE,
        config=config.hazards,
        terminal=config.agent.terminal_id,
        branch=config.agent.branch,
        clock=clock,
    )
