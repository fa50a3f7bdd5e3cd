"""The one way Sentinel turns its readings into Prometheus families, and the scrape-time
collector built on it.

Every part of the agent describes what it exports as `MetricSpec`s and reports `Sample`s (our
own value types, sentinel.core.model); only this package imports prometheus_client. Each concern
is one `SpecCollector` registered on its own in the agent's CollectorRegistry: its `describe()`
names its families without reading anything, so the registry refuses a duplicate metric name
the moment a second collector claims it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from sentinel.core.model import MetricSpec, Sample

log = structlog.get_logger("sentinel.metrics")


def family(spec: MetricSpec, samples: Iterable[Sample]) -> Metric:
    """The family `spec` describes, holding `samples` (a repeated label set is kept once: a
    duplicate series would make the whole exposition invalid)."""
    built: Metric
    if spec.type == "info":
        built = InfoMetricFamily(spec.name, spec.help, labels=[])
    elif spec.type == "counter":
        built = CounterMetricFamily(spec.name, spec.help, labels=list(spec.labels))
    else:
        built = GaugeMetricFamily(spec.name, spec.help, labels=list(spec.labels))
    seen: set[tuple[str, ...]] = set()
    for sample in samples:
        values = tuple(sample.label(k) for k in spec.labels)
        if values in seen:
            continue
        seen.add(values)
        if isinstance(built, InfoMetricFamily):
            built.add_metric([], dict(zip(spec.labels, values, strict=True)))
        else:
            built.add_metric(list(values), sample.value)
    return built


class SpecCollector:
    """A prometheus_client collector for one concern: its specs, and samples read when scraped.

    `every_family`: also export families that have no sample now (their HELP and TYPE), as the
    agent's own families do; the device collectors' families appear only with samples.
    """

    def __init__(
        self,
        name: str,
        specs: Callable[[], Iterable[MetricSpec]],
        samples: Callable[[], Iterable[Sample]],
        *,
        every_family: bool = True,
    ) -> None:
        self.name = name
        self._specs = specs
        self._samples = samples
        self._every_family = every_family

    @classmethod
    def fixed(
        cls, name: str, specs: Sequence[MetricSpec], samples: Callable[[], Iterable[Sample]]
    ) -> SpecCollector:
        """A collector whose specs never change."""
        return cls(name, lambda: specs, samples)

    def describe(self) -> Iterator[Metric]:
        """The families, empty: what the registry checks for duplicate names."""
        for spec in self._specs():
            yield family(spec, ())

    def collect(self) -> Iterator[Metric]:
        """Build the families now; a failing source loses its families, never the scrape."""
        try:
            grouped: dict[str, list[Sample]] = defaultdict(list)
            for sample in self._samples():
                grouped[sample.name].append(sample)
            specs = {spec.name: spec for spec in self._specs()}
        except Exception:  # one broken concern must not break the scrape
            log.exception("metric_family_failed", source=self.name)
            return
        for name in sorted(set(grouped) - set(specs)):
            log.warning("sample_without_spec", metric=name)
        names = list(specs) if self._every_family else sorted(n for n in grouped if n in specs)
        for name in names:
            yield family(specs[name], grouped.get(name, ()))
