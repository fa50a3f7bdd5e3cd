"""Opening the hazard store with the ticketing of the config's sinks: the same for the agent and
every CLI command, so that a transition made from the command line is ticketed exactly as one
made by the agent. Apart from the composition root (agent/wiring.py) so that the hazard
commands open the store without importing the collectors."""

from __future__ import annotations

from typing import Protocol

from sentinel import __version__
from sentinel.config.sections import AgentConfig
from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.schema import STORE_FILE
from sentinel.hazards.store import HazardStore
from sentinel.tickets.config import SinkConfig
from sentinel.tickets.ticketing import Ticketing, sinks_wanting


class StoreSettings(Protocol):
    """What opening the store reads: the whole Config, or sentinel.config.store_view.StoreView."""

    @property
    def agent(self) -> AgentConfig: ...

    @property
    def hazards(self) -> HazardsConfig: ...

    @property
    def sinks(self) -> tuple[SinkConfig, ...]: ...


def open_store(config: StoreSettings, *, clock: Clock = SYSTEM_CLOCK) -> HazardStore:
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
