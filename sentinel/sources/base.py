"""The two shapes a collector can take, and the callback they emit through.

A *polled* collector is called on its interval by the scheduler and returns what it saw. A
*streaming* collector (inotify watcher, log follower) runs its own thread between `start` and
`stop` and pushes items through the `emit` callback. Both declare the metrics they export so
that /metrics can type and document every sample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

from sentinel.core.model import Event, MetricSpec, Sample

Item = Sample | Event
Emit = Callable[[Sequence[Item]], None]


@runtime_checkable
class PolledCollector(Protocol):
    """Called every `interval` seconds; returns the samples and events of one run."""

    name: str
    interval: float
    metrics: Sequence[MetricSpec]

    def collect(self) -> Iterable[Item]:
        """Observe once. May raise: the scheduler contains and counts the error."""
        ...


@runtime_checkable
class StreamingCollector(Protocol):
    """Runs its own thread; pushes items through `emit` as they happen."""

    name: str
    metrics: Sequence[MetricSpec]

    def start(self, emit: Emit) -> None:
        """Begin observing. Raising here disables the collector; the agent goes on."""
        ...

    def stop(self) -> None:
        """Stop observing and join every thread started by `start`."""
        ...

    def current(self) -> Iterable[Sample]:
        """Gauges describing the collector's own state right now (read at scrape time)."""
        ...


Collector = PolledCollector | StreamingCollector
