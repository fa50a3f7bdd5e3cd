"""Which collectors the config asks for, built with their dependencies.

A collector whose constructor fails is returned as the exception, so the agent can log it,
show it as disabled in /metrics and `sentinel status`, and keep running (DESIGN §4.1).
"""

from __future__ import annotations

from collections.abc import Callable

from sentinel.clock import Clock
from sentinel.collectors.base import PolledCollector, StreamingCollector
from sentinel.collectors.detectors import detector_factories
from sentinel.collectors.disks import DisksCollector
from sentinel.collectors.drill_probe import DrillProbeCollector
from sentinel.collectors.filesystems import FilesystemsCollector
from sentinel.collectors.health import HealthCollector
from sentinel.collectors.network import NetworkCollector
from sentinel.collectors.sensors import SensorsCollector
from sentinel.collectors.services import ServicesCollector
from sentinel.collectors.timesync import TimesyncCollector
from sentinel.config import Config
from sentinel.integrity.collector import IntegrityCollector

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
