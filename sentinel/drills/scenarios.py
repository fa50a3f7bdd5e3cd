"""The drill scenarios. Each is harmless: it touches only drill-owned files and probes.

| scenario | stimulus | rule |
|---|---|---|
| `threshold` | raises the drill probe gauge for the drill's duration | `drill_threshold` |

Scenarios for the file integrity monitor and the auth detector register here too.
"""

from __future__ import annotations

from sentinel.clock import Clock
from sentinel.collectors.drill_probe import PROBE_METRIC, clear_probe, set_probe
from sentinel.config import Config
from sentinel.drills.runner import Scenario

PROBE_HOLD = 120.0  # the probe expires on its own if the drill dies half-way


def metric_value(text: str, name: str) -> float | None:
    """The value of an unlabelled sample in an exposition, or None."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            try:
                return float(line.rsplit(" ", 1)[1])
            except ValueError:
                return None
    return None


class ThresholdScenario:
    """Cross the drill threshold rule through the drill probe collector."""

    name = "threshold"
    description = "raise the drill probe gauge so the drill_threshold rule fires"
    rule = "drill_threshold"

    def unavailable(self, config: Config) -> str:
        """Needs the probe collector and the rule."""
        if not config.collectors.drill_probe.enabled:
            return "[collectors.drill_probe] is disabled"
        if not any(r.name == self.rule and r.metric == PROBE_METRIC for r in config.enabled_rules):
            return f"rule {self.rule} on {PROBE_METRIC} is not enabled"
        return ""

    def stimulate(self, config: Config, clock: Clock) -> None:
        """Probe up."""
        set_probe(config.agent.state_dir, 1.0, until=clock.time() + PROBE_HOLD)

    def detected(self, before: str, now: str) -> bool:
        """The agent reports the probe up."""
        del before
        value = metric_value(now, PROBE_METRIC)
        return value is not None and value >= 1

    def cleanup(self, config: Config) -> None:
        """Probe down."""
        clear_probe(config.agent.state_dir)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (ThresholdScenario(),)}
