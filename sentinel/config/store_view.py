"""`[agent]`, `[hazards]` and `[[sinks]]`: what a hazard lifecycle command needs (it opens the
whole store, which tickets its transitions to the sinks), built by sentinel.config.loader.load_part
like the other views (sentinel.config.views), and the checks the whole config shares with it."""

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
