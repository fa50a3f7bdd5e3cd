"""Temperatures, fans and batteries/UPS where the hardware exposes them, from `sys_root`.

psutil's sensor functions read the same files but cannot be pointed at a fixture tree, so this
reads them directly:

- `class/hwmon/hwmonN`: `tempK_input` (millidegrees) with the chip's own `tempK_max` (high) and
  `tempK_crit` (critical) marks, `fanK_input` and `fanK_min` (RPM);
- `class/thermal/thermal_zoneN`: `temp`, with trip points: the lowest `passive`/`hot` trip is
  the high mark, the `critical` trip the critical mark;
- `class/power_supply/*`: mains/UPS `online`, battery `capacity` and `status`.

The marks are exported next to the readings so that rules can be relative to each sensor's own
limits (`relative_to` in a threshold rule) instead of one number for every chip. A machine
without sensors (a VM, a container) exports none of these series; that is not an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sentinel.core.model import MetricSpec, Sample
from sentinel.core.settings import Duration, field, positive
from sentinel.sources.base import Registration
from sentinel.sources.parsers.readers import READ_ERRORS_SPEC, FileReader

MAX_SENSORS = 128  # a bound on label values, whatever a driver lists
MILLI = 0.001
ABSOLUTE_ZERO = -273.15
_TEMP_INPUT = re.compile(r"temp(\d+)_input")
_FAN_INPUT = re.compile(r"fan(\d+)_input")
_TRIP_TYPE = re.compile(r"trip_point_(\d+)_type")
HIGH_TRIPS = ("passive", "hot")


@dataclass(frozen=True, slots=True)
class SensorsConfig:
    """`[collectors.sensors]`."""

    enabled: bool = True
    interval: Duration = field(Duration(15), check=positive)
    hwmon: bool = True
    thermal_zones: bool = True
    power_supplies: bool = True


METRICS = (
    MetricSpec("sentinel_temperature_celsius", "gauge", "Sensor temperature.", ("sensor",)),
    MetricSpec(
        "sentinel_temperature_high_celsius", "gauge", "The sensor's own high (throttling) mark.", ("sensor",)
    ),
    MetricSpec(
        "sentinel_temperature_critical_celsius", "gauge", "The sensor's own critical mark.", ("sensor",)
    ),
    MetricSpec("sentinel_fan_rpm", "gauge", "Fan speed.", ("sensor",)),
    MetricSpec("sentinel_fan_min_rpm", "gauge", "The fan's own minimum speed mark.", ("sensor",)),
    MetricSpec(
        "sentinel_power_supply_online", "gauge", "1 when a mains/UPS/USB supply provides power.", ("supply",)
    ),
    MetricSpec("sentinel_battery_capacity_ratio", "gauge", "Battery charge (0-1).", ("supply",)),
    MetricSpec("sentinel_battery_discharging", "gauge", "1 while the battery is discharging.", ("supply",)),
    READ_ERRORS_SPEC,
)


def _numbered(directory: Path, prefix: str) -> list[Path]:
    """Entries named prefix<N>, in numeric order (hwmon10 after hwmon9)."""
    try:
        entries = [p for p in directory.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return []
    return sorted(entries, key=lambda p: (len(p.name), p.name))


class _Names:
    """Unique, bounded sensor names: a repeated name gets its index appended."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def unique(self, name: str, index: str) -> str | None:
        if len(self.used) >= MAX_SENSORS:
            return None
        chosen = name if name not in self.used else f"{name}.{index}"
        self.used.add(chosen)
        return chosen


class SensorsCollector:
    """Polled collector of temperatures, fans and power supplies."""

    name = "sensors"
    metrics: Sequence[MetricSpec] = METRICS

    def __init__(self, config: SensorsConfig, *, sys_root: Path = Path("/sys")) -> None:
        self.config = config
        self.interval = float(config.interval)
        self._class = sys_root / "class"
        self._reader = FileReader(self.name)

    def collect(self) -> Iterable[Sample]:
        """One reading of every sensor the hardware exposes."""
        out: list[Sample] = []
        names = _Names()
        if self.config.hwmon:
            for chip_dir in _numbered(self._class / "hwmon", "hwmon"):
                out += self._hwmon(chip_dir, names)
        if self.config.thermal_zones:
            for zone in _numbered(self._class / "thermal", "thermal_zone"):
                out += self._thermal_zone(zone, names)
        if self.config.power_supplies:
            try:
                supplies = sorted((self._class / "power_supply").iterdir())
            except OSError:
                supplies = []
            for supply in supplies[:MAX_SENSORS]:
                out += self._power_supply(supply)
        out.append(self._reader.sample())
        return out

    # -- hwmon --------------------------------------------------------------------------------

    def _hwmon(self, chip_dir: Path, names: _Names) -> list[Sample]:
        # older drivers keep their files under device/ rather than in the hwmon directory
        base = chip_dir if (chip_dir / "name").exists() else chip_dir / "device"
        chip = self._reader.text(base / "name") or chip_dir.name
        try:
            files = sorted(p.name for p in base.iterdir())
        except OSError:
            return []
        index = chip_dir.name.removeprefix("hwmon")
        out: list[Sample] = []
        for file in files:
            if match := _TEMP_INPUT.fullmatch(file):
                out += self._hwmon_temperature(base, chip, match.group(1), index, names)
            elif match := _FAN_INPUT.fullmatch(file):
                out += self._hwmon_fan(base, chip, match.group(1), index, names)
        return out

    def _hwmon_temperature(self, base: Path, chip: str, n: str, index: str, names: _Names) -> list[Sample]:
        value = self._celsius(base / f"temp{n}_input")
        if value is None:
            return []
        label = self._reader.text(base / f"temp{n}_label") or f"temp{n}"
        sensor = names.unique(f"{chip}/{label}", index)
        if sensor is None:
            return []
        out = [Sample.of("sentinel_temperature_celsius", value, sensor=sensor)]
        out += self._mark("sentinel_temperature_high_celsius", self._celsius(base / f"temp{n}_max"), sensor)
        out += self._mark(
            "sentinel_temperature_critical_celsius", self._celsius(base / f"temp{n}_crit"), sensor
        )
        return out

    def _hwmon_fan(self, base: Path, chip: str, n: str, index: str, names: _Names) -> list[Sample]:
        rpm = self._reader.number(base / f"fan{n}_input")
        if rpm is None:
            return []
        label = self._reader.text(base / f"fan{n}_label") or f"fan{n}"
        sensor = names.unique(f"{chip}/{label}", index)
        if sensor is None:
            return []
        out = [Sample.of("sentinel_fan_rpm", rpm, sensor=sensor)]
        out += self._mark("sentinel_fan_min_rpm", self._reader.number(base / f"fan{n}_min"), sensor)
        return out

    # -- thermal zones ------------------------------------------------------------------------

    def _thermal_zone(self, zone: Path, names: _Names) -> list[Sample]:
        value = self._celsius(zone / "temp")
        if value is None:
            return []
        kind = self._reader.text(zone / "type") or zone.name
        sensor = names.unique(f"thermal/{kind}", zone.name.removeprefix("thermal_zone"))
        if sensor is None:
            return []
        high: list[float] = []
        critical: list[float] = []
        try:
            trips = sorted(p.name for p in zone.iterdir() if _TRIP_TYPE.fullmatch(p.name))
        except OSError:
            trips = []
        for trip in trips:
            trip_type = self._reader.text(zone / trip)
            temp = self._celsius(zone / trip.replace("_type", "_temp"))
            if temp is None:
                continue
            if trip_type in HIGH_TRIPS:
                high.append(temp)
            elif trip_type == "critical":
                critical.append(temp)
        out = [Sample.of("sentinel_temperature_celsius", value, sensor=sensor)]
        out += self._mark("sentinel_temperature_high_celsius", min(high, default=None), sensor)
        out += self._mark("sentinel_temperature_critical_celsius", min(critical, default=None), sensor)
        return out

    # -- power supplies -----------------------------------------------------------------------

    def _power_supply(self, supply: Path) -> list[Sample]:
        kind = self._reader.text(supply / "type")
        if kind is None:
            return []
        name = supply.name
        out: list[Sample] = []
        online = self._reader.number(supply / "online")
        if online is not None and kind != "Battery":
            out.append(Sample.of("sentinel_power_supply_online", 1 if online > 0 else 0, supply=name))
        capacity = self._reader.number(supply / "capacity")
        if capacity is not None and kind in ("Battery", "UPS"):
            out.append(
                Sample.of("sentinel_battery_capacity_ratio", min(max(capacity, 0), 100) / 100, supply=name)
            )
            status = self._reader.text(supply / "status") or ""
            out.append(
                Sample.of("sentinel_battery_discharging", 1 if status == "Discharging" else 0, supply=name)
            )
        return out

    # -- helpers ------------------------------------------------------------------------------

    def _celsius(self, path: Path) -> float | None:
        value = self._reader.number(path, MILLI)
        if value is not None and value <= ABSOLUTE_ZERO:
            self._reader.garbage(path, f"impossible temperature {value}")
            return None
        return value

    @staticmethod
    def _mark(metric: str, value: float | None, sensor: str) -> list[Sample]:
        # drivers write 0 for a mark the chip does not have; no real limit sits at 0 °C or 0 RPM
        if value is None or value <= 0:
            return []
        return [Sample.of(metric, value, sensor=sensor)]


COLLECTOR = Registration("sensors", SensorsConfig, build=lambda s, _ctx: SensorsCollector(s))
