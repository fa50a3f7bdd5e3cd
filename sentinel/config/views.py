"""Parts of the configuration, for the commands that read only a part of it.

The whole `Config` (sentinel.config.schema) holds a table for every registered collector, and
finding them imports every collector module: right for `run` and `check-config`, which validate
everything, but a third of a second that `sentinel status` and the hazard commands would pay for
sections they never read. These views are built by the same loader (same files, same merge
order, same error lines naming file and key) from only their own sections; the other sections
are neither imported nor validated by them (docs/configuration.md says which command validates
what). Unknown keys *inside* a section they read are still errors. `[agent]` alone is
sentinel.config.sections.AgentView (`sentinel status` needs nothing else); with `[[sinks]]`
sentinel.config.store_view.StoreView (the lifecycle commands ticket their transitions).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sentinel.config.sections import DEFAULT_CONFIG, AgentConfig
from sentinel.core.settings import field
from sentinel.hazards.config import HazardsConfig


@dataclass(frozen=True, slots=True)
class HazardsView:
    """`[agent]` and `[hazards]`: what reading the hazard store needs (`sentinel hazards list`,
    `show`, `export`, `whoami`)."""

    agent: AgentConfig
    hazards: HazardsConfig = field(default_factory=HazardsConfig)
    source: Path = field(default_factory=lambda: DEFAULT_CONFIG, internal=True)
