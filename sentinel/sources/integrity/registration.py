"""The file integrity monitor's entry in the collector registry (`[integrity]`)."""

from __future__ import annotations

from sentinel.sources.base import Collector, Context, Registration
from sentinel.sources.integrity.config import IntegrityConfig


def _build(settings: IntegrityConfig, context: Context) -> Collector:
    # start-up time: watchdog and the monitor load when the agent builds it, not with the config
    from sentinel.sources.integrity.monitor import IntegrityCollector

    return IntegrityCollector(
        settings, state_dir=context.state_dir, clock=context.clock, packages=context.packages
    )


def _enabled(settings: IntegrityConfig) -> bool:
    return settings.enabled and bool(settings.watch)


COLLECTOR = Registration("integrity", IntegrityConfig, build=_build, enabled=_enabled, section="integrity")
