"""Polled collectors on their intervals, each in its own thread, feeding the pipeline."""

from __future__ import annotations

import threading
import time

import structlog

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import Sample
from sentinel.core.status import AgentStatus
from sentinel.pipeline.writer import Batch, Pipeline
from sentinel.sources.base import PolledCollector

log = structlog.get_logger("sentinel.pipeline")


class PolledRunner:
    """Runs one polled collector on its interval in its own thread.

    A collector that raises is logged and counted and runs again next interval; one that hangs
    holds only its own thread (status shows it as down once it exceeds the hung threshold).
    """

    def __init__(
        self,
        collector: PolledCollector,
        pipeline: Pipeline,
        status: AgentStatus,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.collector = collector
        self.pipeline = pipeline
        self.status = status
        self.clock = clock
        self._stop = threading.Event()
        self._declared = frozenset(m.name for m in collector.metrics)
        self._thread = threading.Thread(target=self._run, name=f"collector:{collector.name}", daemon=True)

    def start(self) -> None:
        """Start the collector's thread (first run at once)."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop (it finishes its current run)."""
        self._stop.set()

    def join(self, timeout: float) -> bool:
        """Wait for the thread; False if it is still stuck in a run."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def run_once(self) -> None:
        """One run: collect, record status, queue the batch."""
        name = self.collector.name
        self.status.run_started(name)
        started = self.clock.monotonic()
        try:
            items = tuple(self.collector.collect())
        except Exception as exc:
            duration = self.clock.monotonic() - started
            self.status.run_finished(name, duration, None, error=f"{type(exc).__name__}: {exc}")
            log.exception("collector_failed", collector=name)
            return
        duration = self.clock.monotonic() - started
        samples = tuple(i for i in items if isinstance(i, Sample))
        self.status.run_finished(name, duration, samples)
        self.pipeline.submit(Batch(name, items, self._declared, complete=True))

    def _run(self) -> None:
        interval = self.collector.interval
        next_run = time.monotonic()
        while not self._stop.wait(max(0.0, next_run - time.monotonic())):
            self.run_once()
            next_run += interval
            if next_run < time.monotonic():  # a run overran: skip the missed slots, don't burst
                next_run = time.monotonic() + interval
