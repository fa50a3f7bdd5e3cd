"""The drill probe: a gauge that `sentinel drill` raises for a moment to cross a drill rule.

The CLI writes `state_dir/drill/probe` (JSON: value and an expiry time); this collector reports it
as `sentinel_drill_probe_value` until it expires, then 0 — so a drill that dies half-way cannot
leave the probe up.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.files import Directory
from sentinel.core.model import MetricSpec, Sample
from sentinel.core.settings import Duration, field, positive
from sentinel.sources.base import Registration

PROBE_METRIC = "sentinel_drill_probe_value"


@dataclass(frozen=True, slots=True)
class DrillProbeConfig:
    """`[collectors.drill_probe]`."""

    enabled: bool = True
    interval: Duration = field(Duration(1), check=positive)


def probe_path(state_dir: Path) -> Path:
    """Where the probe value lives."""
    return state_dir / "drill" / "probe"


def set_probe(state_dir: Path, value: float, *, until: float) -> None:
    """Raise the probe to `value` until wall time `until` (used by the drill runner)."""
    path = probe_path(state_dir)
    with Directory.open(state_dir, strict=True) as state, state.sub(path.parent.name) as drill:
        drill.write_json(path.name, {"value": value, "until": until}, owner=state.owner, only_files=True)


def clear_probe(state_dir: Path) -> None:
    """Lower the probe."""
    path = probe_path(state_dir)
    try:
        with Directory.open(path.parent) as drill:
            drill.unlink(path.name)
    except FileNotFoundError:
        pass


class DrillProbeCollector:
    """Polled collector of the drill probe."""

    name = "drill_probe"
    metrics: Sequence[MetricSpec] = (
        MetricSpec(PROBE_METRIC, "gauge", "Raised by `sentinel drill` to cross the drill threshold rule."),
    )

    def __init__(self, config: DrillProbeConfig, *, state_dir: Path, clock: Clock = SYSTEM_CLOCK) -> None:
        self.interval = float(config.interval)
        self._path = probe_path(state_dir)
        self._clock = clock

    def collect(self) -> Iterable[Sample]:
        """The probe's value, 0 when absent, expired or unreadable."""
        value = 0.0
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            if float(data["until"]) > self._clock.time():
                value = float(data["value"])
        except (OSError, ValueError, KeyError, TypeError):
            value = 0.0
        return [Sample.of(PROBE_METRIC, value)]


COLLECTOR = Registration(
    "drill_probe",
    DrillProbeConfig,
    build=lambda s, ctx: DrillProbeCollector(s, state_dir=ctx.state_dir, clock=ctx.clock),
)
