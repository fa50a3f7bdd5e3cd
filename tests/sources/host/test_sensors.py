"""The sensors collector: a machine with hwmon marks, one without any sensors, and this one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sentinel.core.model import Sample
from sentinel.sources.host.sensors import SensorsCollector, SensorsConfig
from tests.sources.conftest import value, values


def collect(root: Path) -> list[Sample]:
    return list(SensorsCollector(SensorsConfig(), sys_root=root / "sys").collect())


def test_hwmon_temperatures_with_their_marks(machine: Callable[[str], Path]) -> None:
    """coretemp's package: 95 °C with its own 90 °C high and 100 °C critical marks."""
    items = collect(machine("terminal"))
    sensor = "coretemp/Package id 0"
    assert value(items, "sentinel_temperature_celsius", sensor=sensor) == 95.0
    assert value(items, "sentinel_temperature_high_celsius", sensor=sensor) == 90.0
    assert value(items, "sentinel_temperature_critical_celsius", sensor=sensor) == 100.0


def test_sensor_names_are_unique_and_readable(machine: Callable[[str], Path]) -> None:
    """Labels name chip and sensor; a repeated chip gets its index; old device/ layout is read."""
    names = {dict(k)["sensor"] for k in values(collect(machine("terminal")), "sentinel_temperature_celsius")}
    assert names == {
        "coretemp/Package id 0",
        "coretemp/Core 0",
        "nct6775/temp1",
        "acpitz/temp1",
        "coretemp/Package id 0.3",
        "thermal/x86_pkg_temp",
    }


def test_a_mark_of_zero_means_none(machine: Callable[[str], Path]) -> None:
    """acpitz writes 0 for its critical mark: no mark series, the reading stays."""
    items = collect(machine("terminal"))
    assert value(items, "sentinel_temperature_critical_celsius", sensor="acpitz/temp1") is None
    assert value(items, "sentinel_temperature_celsius", sensor="acpitz/temp1") == 50.0


def test_thermal_zone_trip_points_are_the_marks(machine: Callable[[str], Path]) -> None:
    """passive trip = high mark, critical trip = critical mark."""
    items = collect(machine("terminal"))
    sensor = "thermal/x86_pkg_temp"
    assert value(items, "sentinel_temperature_high_celsius", sensor=sensor) == 85.0
    assert value(items, "sentinel_temperature_critical_celsius", sensor=sensor) == 105.0


def test_fans(machine: Callable[[str], Path]) -> None:
    """A stopped fan reads 0 with its minimum mark; a labelled fan keeps its label."""
    items = collect(machine("terminal"))
    assert value(items, "sentinel_fan_rpm", sensor="nct6775/fan1") == 0
    assert value(items, "sentinel_fan_min_rpm", sensor="nct6775/fan1") == 300
    assert value(items, "sentinel_fan_rpm", sensor="nct6775/CPU fan") == 1200


def test_power_supplies(machine: Callable[[str], Path]) -> None:
    """Mains offline, battery at 15 % and discharging."""
    items = collect(machine("terminal"))
    assert value(items, "sentinel_power_supply_online", supply="AC") == 0
    assert value(items, "sentinel_battery_capacity_ratio", supply="BAT0") == 0.15
    assert value(items, "sentinel_battery_discharging", supply="BAT0") == 1


def test_garbage_sensor_file_is_counted_once_per_run(machine: Callable[[str], Path]) -> None:
    """nct6775's temp7_input holds garbage: counted, the other sensors still reported."""
    items = collect(machine("terminal"))
    assert value(items, "sentinel_device_read_errors_total", collector="sensors") == 1


def test_machine_without_sensors(machine: Callable[[str], Path]) -> None:
    """No hwmon, thermal or power_supply directories: only the error counter, at 0."""
    items = collect(machine("no_sensors"))
    assert [(i.name, i.value) for i in items] == [("sentinel_device_read_errors_total", 0.0)]


def test_live_machine() -> None:
    """On this machine: every temperature is physically plausible, marks above readings' floor."""
    items = list(SensorsCollector(SensorsConfig()).collect())
    temps = values(items, "sentinel_temperature_celsius")
    assert all(-60 < t < 150 for t in temps.values())
    for labels, mark in values(items, "sentinel_temperature_critical_celsius").items():
        assert labels in temps and mark > 0
    assert value(items, "sentinel_device_read_errors_total", collector="sensors") is not None
