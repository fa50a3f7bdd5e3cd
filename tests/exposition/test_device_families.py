"""Every device metric, as exported from the fixture terminal, passes `promtool check metrics`."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric

from sentinel.core.model import MetricSpec, Sample
from sentinel.exposition.families import family
from sentinel.testing import FakeClock
from tests.rules.test_health_rules import terminal_collectors


class _Families:
    def __init__(self, specs: dict[str, MetricSpec], samples: dict[str, list[Sample]]) -> None:
        self.specs, self.samples = specs, samples

    def collect(self) -> Iterator[Metric]:
        for name in sorted(self.samples):
            yield family(self.specs[name], self.samples[name])


def test_fixture_terminal_exposition_is_clean(tmp: Path, clock: FakeClock, promtool: str) -> None:
    """All device families (sensors, batteries, services included) with no promtool complaint."""
    specs: dict[str, MetricSpec] = {}
    samples: dict[str, list[Sample]] = defaultdict(list)
    for c in terminal_collectors(clock, tmp):
        specs.update({m.name: m for m in c.metrics})
        for item in c.collect():
            if isinstance(item, Sample):
                samples[item.name].append(item)
    assert set(samples) == set(specs) - {"sentinel_cpu_utilisation_ratio"}  # needs two runs
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(specs, samples))
    text = generate_latest(registry).decode()
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0 and (result.stdout + result.stderr).strip() == "", (
        result.stdout + result.stderr
    )


def test_every_device_metric_is_documented() -> None:
    """docs/metrics.md has a row for every device metric."""
    from sentinel.sources.host import disks, filesystems, health, network, sensors, services, timesync

    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    names = {
        m.name
        for mod in (health, filesystems, disks, network, sensors, services, timesync)
        for m in mod.METRICS
    }
    assert [n for n in sorted(names) if f"| `{n}` |" not in doc] == []
