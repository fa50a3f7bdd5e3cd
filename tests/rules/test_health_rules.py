"""The shipped config/rules.d/health.toml against the fixture terminal, through the rule engine."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sentinel.config.loader import load
from sentinel.config.schema import Config
from sentinel.core.model import Event, Finding, Sample, Severity
from sentinel.rules.engine import RuleEngine
from sentinel.sources.base import PolledCollector
from sentinel.sources.host.disks import DisksCollector, DisksConfig
from sentinel.sources.host.filesystems import FilesystemsCollector, FilesystemsConfig
from sentinel.sources.host.health import HealthCollector, HealthConfig
from sentinel.sources.host.network import NetworkCollector, NetworkConfig
from sentinel.sources.host.sensors import SensorsCollector, SensorsConfig
from sentinel.sources.host.services import ProcessCheck, ServicesCollector, ServicesConfig
from sentinel.sources.host.timesync import (
    STA_UNSYNC,
    TIME_ERROR,
    ClockState,
    TimesyncCollector,
    TimesyncConfig,
)
from sentinel.testing import FakeClock
from tests.support.agent import write_config

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = ROOT / "tests" / "fixtures" / "health" / "terminal"
SHIPPED = {
    "filesystem_space_low",
    "filesystem_fill_predicted",
    "filesystem_inodes_low",
    "filesystem_readonly",
    "filesystem_stalled",
    "memory_high",
    "swap_high",
    "cpu_sustained_high",
    "load_per_core_high",
    "zombie_processes",
    "file_handles_high",
    "temperature_high",
    "fan_stopped",
    "power_on_battery",
    "battery_low",
    "network_link_down",
    "required_service_down",
    "clock_not_synchronised",
    "reboot_detected",
}


@pytest.fixture
def config(tmp: Path) -> Config:
    """The test config with the shipped rules.d (through a conf.d drop-in)."""
    path = write_config(tmp)
    (tmp / "conf.d").mkdir()
    (tmp / "conf.d" / "rules.toml").write_text(f'[agent]\nrules_dir = "{ROOT / "config" / "rules.d"}"\n')
    return load(path)


def statvfs(path: str) -> Any:
    """95 % used, 75 % of inodes used."""
    return SimpleNamespace(
        f_frsize=4096, f_blocks=1000, f_bfree=50, f_bavail=50, f_files=100, f_ffree=25, f_flag=0
    )


def terminal_collectors(clock: FakeClock, tmp: Path) -> list[PolledCollector]:
    unsynced = ClockState(TIME_ERROR, STA_UNSYNC, 0, 16_000_000, 16_000_000)
    return [
        HealthCollector(HealthConfig(), proc_root=TERMINAL / "proc", state_dir=tmp / "state"),
        FilesystemsCollector(FilesystemsConfig(), proc_root=TERMINAL / "proc", statvfs=statvfs),
        DisksCollector(DisksConfig(), proc_root=TERMINAL / "proc"),
        NetworkCollector(NetworkConfig(), sys_root=TERMINAL / "sys", clock=clock),
        SensorsCollector(SensorsConfig(), sys_root=TERMINAL / "sys"),
        ServicesCollector(
            ServicesConfig(
                processes=(
                    ProcessCheck(name="teller", comm="teller-app"),
                    ProcessCheck(name="ups", comm="apcupsd"),
                )
            ),
            proc_root=TERMINAL / "proc",
        ),
        TimesyncCollector(TimesyncConfig(), adjtimex=lambda: unsynced),
    ]


def run(
    engine: RuleEngine, collectors: list[PolledCollector], clock: FakeClock, minutes: int
) -> list[Finding]:
    findings: list[Finding] = []
    for _ in range(minutes):
        for c in collectors:
            items = list(c.collect())
            findings += engine.on_batch(
                {m.name for m in c.metrics}, [i for i in items if isinstance(i, Sample)]
            )
            for event in (i for i in items if isinstance(i, Event)):
                findings += engine.on_event(event)
        clock.advance(60)
    return findings


def test_every_shipped_rule_loads_with_rectification(config: Config) -> None:
    """Every rule the issue names is shipped, enabled, and says how to fix what it finds."""
    health = {r.name: r for r in config.rules if r.name in SHIPPED}
    assert set(health) == SHIPPED
    assert all(r.enabled and r.rectification for r in health.values())
    assert all(r.resolves_automatically for r in health.values() if r.metric)


def test_the_fixture_terminal_raises_exactly_the_expected_hazards(
    config: Config, clock: FakeClock, tmp: Path
) -> None:
    """After 40 minutes on the fixture terminal: these rules fire on these subjects, once each."""
    engine = RuleEngine(config.enabled_rules, clock=clock, terminal="t")
    findings = run(engine, terminal_collectors(clock, tmp), clock, minutes=40)
    fired = {(f.rule, f.subject, f.severity) for f in findings if f.state == "firing"}
    assert fired == {
        ("temperature_high", "coretemp/Package id 0", Severity.MAJOR),
        ("fan_stopped", "nct6775/fan1", Severity.MAJOR),
        ("power_on_battery", "BAT0", Severity.MAJOR),
        ("battery_low", "BAT0", Severity.MAJOR),
        ("load_per_core_high", "t", Severity.MINOR),
        ("file_handles_high", "t", Severity.MAJOR),
        ("filesystem_space_low", "/", Severity.MAJOR),
        ("filesystem_space_low", "/var", Severity.MAJOR),
        ("filesystem_space_low", "/boot/efi", Severity.MAJOR),
        ("filesystem_space_low", "/media/backup disk", Severity.MAJOR),
        ("filesystem_readonly", "/var", Severity.CRITICAL),
        ("network_link_down", "wlan0", Severity.MAJOR),
        ("required_service_down", "ups", Severity.CRITICAL),
        ("clock_not_synchronised", "t", Severity.MAJOR),
    }
    assert len(findings) == len(fired)  # no flapping: one finding per hazard
    temperature = next(f for f in findings if f.rule == "temperature_high")
    assert temperature.title == "coretemp/Package id 0 at 95 °C (mark 90 °C)"


def test_reboot_event_raises_the_reboot_hazard(config: Config, clock: FakeClock) -> None:
    """health.reboot -> reboot_detected (minor), which waits for a person to confirm it."""
    engine = RuleEngine(config.enabled_rules, clock=clock, terminal="t")
    (finding,) = engine.on_event(Event("health", "reboot", "host", clock.time()))
    assert (finding.rule, finding.severity, finding.auto_resolve) == (
        "reboot_detected",
        Severity.MINOR,
        False,
    )
