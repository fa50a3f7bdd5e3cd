"""Which collectors the config asks for, built with their dependencies.

A collector whose constructor fails is returned as the exception, so the agent can log it,
show it as disabled in /metrics and `sentinel status`, and keep running (DESIGN §4.1).
"""

from __future__ import annotations

from collections.abc import Callable

from sentinel.config.loader import Config
from sentinel.core.clock import Clock
from sentinel.sources.base import PolledCollector, StreamingCollector
from sentinel.sources.detectors.catalog import detector_factories
from sentinel.sources.host.disks import DisksCollector
from sentinel.sources.host.drill_probe import DrillProbeCollector
from sentinel.sources.host.filesystems import FilesystemsCollector
from sentinel.sources.host.health import HealthCollector
from sentinel.sources.host.network import NetworkCollector
from sentinel.sources.host.sensors import SensorsCollector
from sentinel.sources.host.services import ServicesCollector
from sentinel.sources.host.timesync import TimesyncCollector
from sentinel.sources.integrity.collector import IntegrityCollector

Built = PolledCollector | StreamingCollector | Exception


def _factories(
    config: Config, clock: Clock
) -> list[tuple[str, bool, Callable[[], PolledCollector | StreamingCollector]]]:
    c = config.collectors
    state_dir = config.agent.state_dir
    return [
        ("health", c.health.enabled, lambda: HealthCollector(c.health, state_dir=state_dir)),
        ("filesystems", c.filesystems.enabled, lambda: FilesystemsCollector(c.filesystems)),
        ("disks", c.disks.enabled, lambda: DisksCollector(c.disks)),
        ("network", c.network.enabled, lambda: NetworkCollector(c.network, clock=clock)),
        ("sensors", c.sensors.enabled, lambda: SensorsCollector(c.sensors)),
        ("services", c.services.enabled, lambda: ServicesCollector(c.services)),
        ("timesync", c.timesync.enabled, lambda: TimesyncCollector(c.timesync)),
        (
            "drill_probe",
            c.drill_probe.enabled,
            lambda: DrillProbeCollector(c.drill_probe, state_dir=state_dir, clock=clock),
        ),
        *detector_factories(c, state_dir=state_dir, clock=clock),
        (
            "integrity",
            config.integrity.enabled and bool(config.integrity.watch),
            lambda: IntegrityCollector(config.integrity, state_dir=state_dir, clock=clock),
        ),
    ]


def build_collectors(config: Config, *, clock: Clock) -> list[tuple[str, Built]]:
    """(name, collector or the error that prevented building it) for every enabled collector."""
    out: list[tuple[str, Built]] = []
    for name, enabled, factory in _factories(config, clock):
        if not enabled:
            continue
        try:
            out.append((name, factory()))
        except Exception as exc:  # contained: a broken collector must not stop the agent
            out.append((name, exc))
    return out
