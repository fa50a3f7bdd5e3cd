"""The agent's running collectors: polled ones on their runners, streaming ones on their threads,
each feeding the pipeline; started and stopped together (a reload replaces the whole set)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import structlog

from sentinel.agent.wiring import Built
from sentinel.core.clock import Clock
from sentinel.core.model import Labels, MetricSpec, Sample
from sentinel.core.status import AgentStatus, SightProbe
from sentinel.pipeline.runner import PolledRunner
from sentinel.pipeline.writer import Batch, Pipeline
from sentinel.sources.base import Collector, Item, Sighted, StreamingCollector

log = structlog.get_logger("sentinel.agent")


class RunningCollectors:
    """The collectors of one config, running; `specs` types what they report for /metrics."""

    def __init__(self, pipeline: Pipeline, status: AgentStatus, clock: Clock) -> None:
        self.pipeline = pipeline
        self.status = status
        self.clock = clock
        self.specs: dict[str, MetricSpec] = {}
        self._runners: list[PolledRunner] = []
        self._streaming: list[StreamingCollector] = []
        self._emit_stop = threading.Event()
        # counter totals of streaming collectors a reload replaced: added to their successors'
        # so that every *_total stays monotonic for the life of the process (Prometheus reads a
        # drop as a reset and `increase()` would lose what was counted before the reload)
        self._carried: dict[tuple[str, Labels], float] = {}
        self._carried_lock = threading.Lock()

    def start(self, built_all: Sequence[tuple[str, Built]]) -> None:
        """Start each built collector; one that failed to build is registered as disabled."""
        specs: dict[str, MetricSpec] = {}
        for name, built in built_all:
            if isinstance(built, Exception):
                self.status.register(name, "polled", enabled=False, error=str(built))
                log.error("collector_disabled", collector=name, error=str(built))
                continue
            for spec in built.metrics:
                specs[spec.name] = spec
            if isinstance(built, StreamingCollector):
                self._start_streaming(built)
            else:
                self.status.register(name, "polled", sight=_sight_probe(built))
                runner = PolledRunner(built, self.pipeline, self.status, clock=self.clock)
                runner.start()
                self._runners.append(runner)
        self.specs = specs

    def _start_streaming(self, collector: StreamingCollector) -> None:
        pipeline, declared = self.pipeline, frozenset(m.name for m in collector.metrics)
        lossless = bool(getattr(collector, "lossless", False))
        stopping = self._emit_stop

        def emit(items: Sequence[Item]) -> bool:
            batch = Batch(collector.name, tuple(items), declared, complete=False)
            if lossless:  # a log follower waits for room rather than skip lines it cannot re-read
                return pipeline.submit_waiting(batch, stopping)
            # the others drop (counted) and learn it from the answer: the integrity monitor rescans
            return pipeline.submit(batch)

        self.status.register(collector.name, "streaming", sight=_sight_probe(collector))
        try:
            resume = getattr(collector, "resume_from", None)
            if resume is not None:  # where it had read to when its last findings were stored:
                # after a reload, once what its predecessor handed over is stored too
                if not pipeline.drained(timeout=30.0):
                    log.warning("pipeline_not_drained", collector=collector.name)
                resume(pipeline.store.position)
            collector.start(emit)
        except Exception as exc:
            self.status.register(collector.name, "streaming", enabled=False, error=str(exc))
            log.exception("collector_disabled", collector=collector.name)
            return
        self._streaming.append(collector)

    def stop(self) -> None:
        """Stop and join every collector; forget them in the status."""
        self._emit_stop.set()  # a collector waiting for queue room gives up: it is stopping
        for runner in self._runners:
            runner.stop()
        for runner in self._runners:
            if not runner.join(timeout=1.0):
                log.warning("collector_still_running", collector=runner.collector.name)
        for streaming in self._streaming:
            try:
                streaming.stop()
            except Exception:
                log.exception("collector_stop_failed", collector=streaming.name)
            self._carry(streaming)
        for name in [r.collector.name for r in self._runners] + [s.name for s in self._streaming]:
            self.status.unregister(name)
        self._runners, self._streaming = [], []
        self._emit_stop = threading.Event()

    def _carry(self, collector: StreamingCollector) -> None:
        """Keep a stopped collector's counter values (its successor's start from zero)."""
        counters = _counter_names(collector)
        try:
            final = [s for s in collector.current() if s.name in counters]
        except Exception:
            log.exception("collector_current_failed", collector=collector.name)
            return
        with self._carried_lock:
            for sample in final:
                key = (sample.name, sample.labels)
                self._carried[key] = self._carried.get(key, 0.0) + sample.value

    def streaming_samples(self) -> Iterable[Sample]:
        """The streaming collectors' own gauges and counters, read now (at scrape time); counters
        include what the collectors a reload replaced had counted."""
        with self._carried_lock:
            carried = dict(self._carried)
        for collector in list(self._streaming):
            try:
                current = list(collector.current())
            except Exception:
                log.exception("collector_current_failed", collector=collector.name)
                continue
            counters = _counter_names(collector)
            for sample in current:
                extra = carried.pop((sample.name, sample.labels), 0.0) if sample.name in counters else 0.0
                yield Sample(sample.name, sample.value + extra, sample.labels) if extra else sample
        for (name, labels), value in carried.items():  # series the new collectors have not shown yet
            yield Sample(name, value, labels)

    def held_samples(self) -> list[Sample]:
        """The latest samples of every polled collector (what /metrics serves now)."""
        return [s for batch in self.status.latest_samples().values() for s in batch]


def _counter_names(collector: StreamingCollector) -> set[str]:
    """The sample names of a collector's counters (a spec may be named with or without _total)."""
    names = {m.name for m in collector.metrics if m.type == "counter"}
    return names | {f"{n}_total" for n in names if not n.endswith("_total")}


def _sight_probe(collector: Collector) -> SightProbe | None:
    """What the status board reads to know whether the collector can see (detectors, FIM)."""
    if not isinstance(collector, Sighted):
        return None

    def probe() -> tuple[bool, str, float | None]:
        sight = collector.sight()
        return sight.up, sight.reason, sight.last_run_at

    return probe
