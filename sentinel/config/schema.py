"""The whole configuration: every section, each owned by the package that uses it.

`[collectors.<name>]` tables come from the collector registry (each collector module declares its
own settings); the agent, metrics, inspect and schedule sections from `sentinel.config.sections`;
rules, hazards, integrity and sinks from their packages. This layer sits between those packages
and the ones that read the whole config (pipeline, exposition, inspect, drills, agent, cli).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentinel.config.sections import (
    DEFAULT_CONFIG,
    AgentConfig,
    HubClientConfig,
    InspectConfig,
    MetricsConfig,
    ScheduleConfig,
)
from sentinel.config.store_view import duplicate_names, level_problems
from sentinel.core.settings import KeyPath, field
from sentinel.hazards.config import HazardsConfig
from sentinel.rules.config import RuleConfig
from sentinel.rules.windows import ChangesConfig
from sentinel.sources.integrity.config import IntegrityConfig
from sentinel.sources.registry import registrations
from sentinel.tickets.config import SinkConfig

__all__ = ["DEFAULT_CONFIG", "CollectorsConfig", "Config"]


def _collectors_table() -> type:
    """`[collectors]`: one field per registered collector configured under it."""
    fields = [
        (r.name, r.settings, dataclasses.field(default_factory=r.settings))
        for r in registrations()
        if r.path == f"collectors.{r.name}"
    ]
    table = dataclasses.make_dataclass("CollectorsConfig", fields, frozen=True, slots=True)
    table.__module__ = __name__
    return table


if TYPE_CHECKING:

    class CollectorsConfig:
        """`[collectors.*]`: one table per registered collector (built from the registry)."""

        def __init__(self, **sections: Any) -> None: ...

        def __getattr__(self, name: str) -> Any: ...

else:
    CollectorsConfig = _collectors_table()


@dataclass(frozen=True, slots=True)
class Config:
    """The whole, validated configuration."""

    agent: AgentConfig
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    hazards: HazardsConfig = field(default_factory=HazardsConfig)
    collectors: CollectorsConfig = field(default_factory=CollectorsConfig)
    rules: tuple[RuleConfig, ...] = ()
    inspect: InspectConfig = field(default_factory=InspectConfig)
    integrity: IntegrityConfig = field(default_factory=IntegrityConfig)
    schedules: tuple[ScheduleConfig, ...] = ()
    sinks: tuple[SinkConfig, ...] = ()
    hub: HubClientConfig = field(default_factory=HubClientConfig)  # the fleet ledger (docs/hub.md)
    changes: ChangesConfig = field(default_factory=ChangesConfig)
    source: Path = field(default_factory=lambda: DEFAULT_CONFIG, internal=True)

    @property
    def enabled_rules(self) -> tuple[RuleConfig, ...]:
        """The rules that are switched on."""
        return tuple(r for r in self.rules if r.enabled)

    def validate(self) -> list[tuple[KeyPath, str]]:
        """Names that others refer to must be unique; sink levels are escalation levels."""
        return (
            duplicate_names("sinks", [s.name for s in self.sinks])
            + duplicate_names("schedules", [s.name for s in self.schedules])
            + level_problems(self.sinks, self.hazards)
        )

    def section(self, path: str) -> Any:
        """The settings at a dotted config path (`collectors.auth`, `integrity`)."""
        value: Any = self
        for part in path.split("."):
            value = getattr(value, part)
        return value
