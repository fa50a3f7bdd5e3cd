"""`[agent]` and `[integrity]`: what `sentinel baseline init|check|update|show` read, built by
sentinel.config.loader.load_part like the other views (sentinel.config.views), so the baseline
commands start without the collectors. A baseline that fails verification loads the whole config
then, to raise its hazard through the rules and sinks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sentinel.config.sections import DEFAULT_CONFIG, AgentConfig
from sentinel.core.settings import field
from sentinel.sources.integrity.config import IntegrityConfig


@dataclass(frozen=True, slots=True)
class BaselineView:
    """`[agent]` and `[integrity]`."""

    agent: AgentConfig
    integrity: IntegrityConfig = field(default_factory=IntegrityConfig)
    source: Path = field(default_factory=lambda: DEFAULT_CONFIG, internal=True)
