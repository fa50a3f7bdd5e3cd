"""Parts of the configuration, for the commands that read only a part of it.

The whole `Config` (sentinel.config.schema) holds a table for every registered collector, and
finding them imports every collector module: right for `run` and `check-config`, which validate
everything, but a third of a second that `sentinel status` and the hazard commands would pay for
sections they never read. These views are built by the same loader (same files, same merge
order, same error lines naming file and key) from only their own sections; the other sections
are neither imported nor validated by them (docs/configuration.md says which command validates
what). Unknown keys *inside* a section they read are still errors. `[agent]` alone is
sentinel.config.sections.AgentView (`sentinel status` needs nothing else).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sentinel.config.sections import DEFAULT_CONFIG, AgentConfig
from sentinel.core.settings import KeyPath, field
from sentinel.hazards.config import HazardsConfig
from sentinel.tickets.config import SinkConfig


@dataclass(frozen=True, slots=True)
class StoreView:
    """`[agent]`, `[hazards]` and `[[sinks]]`: what opening the hazard store and ticketing its
    transitions need (`sentinel hazards ...`)."""

    agent: AgentConfig
    hazards: HazardsConfig = field(default_factory=HazardsConfig)
    sinks: tuple[SinkConfig, ...] = ()
    source: Path = field(default_factory=lambda: DEFAULT_CONFIG, internal=True)

    def validate(self) -> list[tuple[KeyPath, str]]:
        """What the whole config checks about these sections together."""
        return sink_problems(self.sinks, self.hazards)


def sink_problems(sinks: tuple[SinkConfig, ...], hazards: HazardsConfig) -> list[tuple[KeyPath, str]]:
    """Sink names are unique, and every sink level is a level of the escalation chain."""
    return duplicate_names("sinks", [s.name for s in sinks]) + level_problems(sinks, hazards)


def duplicate_names(section: str, names: list[str]) -> list[tuple[KeyPath, str]]:
    """Names that others refer to must be unique within their section."""
    problems: list[tuple[KeyPath, str]] = []
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            problems.append(((section, i, "name"), f'another entry is already named "{name}"'))
        seen.add(name)
    return problems


def level_problems(sinks: tuple[SinkConfig, ...], hazards: HazardsConfig) -> list[tuple[KeyPath, str]]:
    """Every level a sink delivers at is a level of `[hazards] escalation_chain`."""
    problems: list[tuple[KeyPath, str]] = []
    chain = hazards.escalation_chain or ("owner",)
    for i, sink in enumerate(sinks):
        for level in sink.levels:
            if level not in chain:
                message = f"{level!r} is not a level of [hazards] escalation_chain ({', '.join(chain)})"
                problems.append((("sinks", i, "levels"), message))
    return problems
